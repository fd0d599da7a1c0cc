"""A folder (or glob) of files through one detector per worker: ``streamdet run FOLDER --ray``.

Each worker builds one ``Detector`` from the run's settings (the model name, the preset and the
caller's settings: what ``streamdet run`` builds its detector from, never a pickled session) and
runs whole files through ``streamdet.pipeline.job.run_input``, the per-file pipeline of the
single-process run, so an input's outputs are the same whichever ran it.

The run is resumable (``streamdet.pipeline.resume``): finished inputs are skipped, missing outputs
written, partial files of a killed run removed. A file that fails is reported in one line and the
others go on. Ctrl-C kills the workers at once: a file being written leaves only its hidden
partial file (removed here, or by the next run), never a file at an output path; so every file at
an output path is a finished one and the next run picks up where this one stopped.
``ray=False`` runs the same way in this process, one file after another.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamdet.distributed.cluster import WorkerShape, import_ray, ray_cluster, worker_shape
from streamdet.distributed.pool import Done, map_on_actors, one_line
from streamdet.errors import ConfigError
from streamdet.pipeline.job import PlannedJob, RunJob, plan_job, run_input, stop_on_signals
from streamdet.pipeline.plan import InputPlan
from streamdet.pipeline.progress import FilesTerminal
from streamdet.pipeline.resume import (
    output_paths,
    remove_files,
    remove_partials_when_gone,
    resume_plan,
    stale_partials,
)
from streamdet.pipeline.runner import Progress
from streamdet.pipeline.stats import RunReport
from streamdet.sinks import STDOUT
from streamdet.sources import is_url


@dataclass(frozen=True)
class DetectorSpec:
    """What a worker builds its detector from: the settings, resolved by ``Detector`` the same
    way in every worker (and in ``streamdet run``)."""

    model: str
    preset: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, model: str, preset: str | None, overrides: Mapping[str, Any]) -> DetectorSpec:
        return cls(str(model), preset, tuple(sorted(overrides.items())))

    def setting(self, name: str) -> Any:
        return dict(self.overrides).get(name)

    def check(self) -> None:
        """The checks that need no model (one-line errors before any worker starts)."""
        from streamdet.config.resolve import resolve_config

        resolve_config(dict(self.overrides), preset=self.preset)

    def build(self, prompts: Iterable[str]) -> Any:
        from streamdet.detect.detector import Detector

        return Detector(self.model, tuple(prompts), preset=self.preset, **dict(self.overrides))


class FileWorker:
    """One worker's detector (built once) and the per-file run; ``progress()``: frames done in
    the file being run (read from another thread)."""

    def __init__(self, spec: DetectorSpec, planned: PlannedJob) -> None:
        self.planned = planned
        self.detector = spec.build(planned.initial_prompts)
        self.stop = threading.Event()
        self.frames = 0

    def _progress(self, p: Progress) -> None:
        self.frames = p.processed

    def progress(self) -> int:
        return self.frames

    def __call__(self, plan: InputPlan) -> RunReport:
        self.frames = 0
        return run_input(plan, self.detector, self.planned, self.stop, self._progress)


@dataclass(frozen=True)
class FolderResult:
    """How a folder run went. reports: the inputs run to the end; skipped: inputs whose outputs
    all existed; failed: (input, one-line reason); not_run: inputs left for the next run (it was
    stopped); removed_partials: partial files of an earlier killed run that were removed."""

    reports: tuple[RunReport, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    not_run: tuple[str, ...]
    workers: int
    seconds: float
    interrupted: bool
    removed_partials: int = 0
    on_ray: bool = True
    outputs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return sum(r.frames_processed for r in self.reports)

    @property
    def total(self) -> int:
        return len(self.reports) + len(self.skipped) + len(self.failed) + len(self.not_run)

    def summary(self) -> str:
        """One line: what was done, skipped, failed, and how fast."""
        parts = [f"{len(self.reports)} done"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (outputs exist)")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.not_run:
            parts.append(f"{len(self.not_run)} not run (stopped; run again to finish)")
        if not self.workers:
            return f"{self.total} inputs: {', '.join(parts)}; nothing left to run"
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        where = f"{self.workers} Ray worker{'s' if self.workers != 1 else ''}"
        return (
            f"{self.total} inputs: {', '.join(parts)}; {self.frames} frames in "
            f"{self.seconds:.1f} s ({rate:.1f} FPS) on {where if self.on_ray else 'this process'}"
        )


def check_ray_job(job: RunJob) -> None:
    """What a folder run on Ray cannot do; one-line errors before Ray starts."""
    if job.show:
        raise ConfigError("--show opens a window here; --ray runs files on workers: drop one")
    if job.jsonl_out == STDOUT:
        raise ConfigError("--jsonl - writes to this terminal; with --ray give a folder")
    if job.stats:
        raise ConfigError("--stats prints one run's live stats; with --ray use --report")
    if job.prompts_file:
        raise ConfigError("--prompts-file is re-read while a run goes; with --ray give -p")
    if job.serve:
        raise ConfigError("--serve shows one run's frames here; --ray runs files on workers")
    if job.together:
        raise ConfigError(
            "--ray takes one folder or glob; several sources at once run without --ray"
        )
    if is_url(job.source) or job.source.strip().isdigit():
        raise ConfigError(
            f"--ray runs files; '{job.source}' is a camera or stream: run it without --ray"
        )


def _drop_outputs(plan: InputPlan) -> None:
    """An input stopped part-way: its outputs (written for this run) are not finished ones."""
    remove_files(output_paths(plan))
    for target in output_paths(plan):
        remove_files(stale_partials(target))


def _run_here(
    todo: tuple[InputPlan, ...],
    spec: DetectorSpec,
    planned: PlannedJob,
    stop: threading.Event,
    on_done: Callable[[Done[InputPlan, RunReport]], None],
) -> tuple[list[InputPlan], int]:
    """The same work in this process, one file after another; (inputs not run, workers)."""
    worker = FileWorker(spec, planned)
    worker.stop = stop
    for index, plan in enumerate(todo):
        if stop.is_set():
            return list(todo[index:]), 1
        try:
            report = worker(plan)
        except KeyboardInterrupt:
            _drop_outputs(plan)
            raise
        except Exception as exc:
            on_done(Done(plan, None, one_line(exc)))
            continue
        if report.interrupted:
            _drop_outputs(plan)
            return list(todo[index:]), 1
        on_done(Done(plan, report, None))
    return [], 1


def run_planned(
    planned: PlannedJob,
    spec: DetectorSpec,
    *,
    ray: bool | str = True,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    stop: threading.Event | None = None,
    terminal: FilesTerminal | None = None,
) -> FolderResult:
    """Run a planned job (planned with ``resume=True``) resumably; see the module docstring.

    ray: True (a local Ray, or the one already initialised), an address, or False (this
    process). The caller's ``stop`` event ends the run early (Ctrl-C).
    """
    check_ray_job(planned.job)
    spec.check()
    if ray is not False:
        import_ray()  # the missing-extra error before anything else is done
    start = time.monotonic()
    stop = stop or threading.Event()
    terminal = terminal or FilesTerminal(quiet=True)
    resume = resume_plan(planned.plans, overwrite=planned.job.overwrite)
    removed = remove_files(resume.stale)
    reports: list[RunReport] = []
    failed: list[tuple[str, str]] = []
    outputs: dict[str, tuple[str, ...]] = {}
    total = len(planned.plans)
    terminal.begin(total, len(resume.finished), removed)

    def on_done(end: Done[InputPlan, RunReport]) -> None:
        if end.result is not None:
            reports.append(end.result)
            outputs[end.item.source] = tuple(end.result.outputs)
            terminal.file_done(end.result.lines()[0], end.result.frames_processed)
        else:
            failed.append((end.item.source, end.error or "failed"))
            terminal.file_failed(f"{end.item.source}: {end.error}")

    planned = replace(planned, prompt_file=None)
    if not resume.todo:
        not_run, count = [], 0
    elif ray is False:
        not_run, count = _run_here(resume.todo, spec, planned, stop, on_done)
    else:
        address = None if ray is True else str(ray)
        with ray_cluster(address) as ray_module:
            shape = _shape(ray_module.cluster_resources(), spec, workers, gpus_per_worker)
            worker_spec = replace(spec, overrides=_with_threads(spec, shape))
            result = map_on_actors(
                ray_module,
                resume.todo,
                functools.partial(FileWorker, worker_spec, planned),
                replace(shape, workers=min(shape.workers, max(1, len(resume.todo)))),
                stop=stop,
                on_done=on_done,
                on_tick=lambda frames: terminal.tick(sum(f or 0 for f in frames)),
            )
        not_run, count = list(result.not_run), min(shape.workers, max(1, len(resume.todo)))
        # killed workers' partial files: not finished, not kept
        remove_partials_when_gone([t for plan in not_run for t in output_paths(plan)])
    terminal.end()
    return FolderResult(
        reports=tuple(reports),
        skipped=tuple(p.source for p in resume.finished),
        failed=tuple(failed),
        not_run=tuple(p.source for p in not_run),
        workers=count,
        seconds=time.monotonic() - start,
        interrupted=stop.is_set(),
        removed_partials=removed,
        on_ray=ray is not False,
        outputs=outputs,
    )


def _shape(
    resources: Mapping[str, float],
    spec: DetectorSpec,
    workers: int | None,
    gpus: float | None,
) -> WorkerShape:
    return worker_shape(
        resources,
        workers=workers,
        threads=spec.setting("threads"),
        gpus=gpus,
        device=spec.setting("device"),
    )


def _with_threads(spec: DetectorSpec, shape: WorkerShape) -> tuple[tuple[str, Any], ...]:
    """Each worker's detector uses the CPUs its actor reserved."""
    settings = dict(spec.overrides)
    settings["threads"] = int(shape.cpus)
    return tuple(sorted(settings.items()))


def run_folder(
    source: str | Path,
    prompts: str | Iterable[str],
    *,
    video_out: str | Path | None = None,
    jsonl_out: str | Path | None = None,
    ray: bool | str = True,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    model: str | Path | None = None,
    preset: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    **settings: Any,
) -> FolderResult:
    """Run every video/image of a folder or glob through the detector, resumably, on Ray.

    The outputs are ``streamdet run``'s: with ``video_out``/``jsonl_out`` folders, one MP4 and
    one JSONL per input, named after it. ``ray``: True for a local Ray (or the one this process
    already initialised), an address (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``) to join a
    cluster, False to run in this process. ``settings``: detector settings (``threads`` per
    worker, ``device``...). Inputs that fail are in ``result.failed``; nothing is raised for
    them. Ctrl-C stops the run; what finished stays, and a second call finishes the rest.
    """
    from streamdet.config import DEFAULT_MODEL

    job = RunJob(
        source=str(source),
        prompts=(prompts,) if isinstance(prompts, str) else tuple(prompts),
        video_out=None if video_out is None else str(video_out),
        jsonl_out=None if jsonl_out is None else str(jsonl_out),
        overwrite=overwrite,
    )
    check_ray_job(job)
    planned = plan_job(job, resume=True)
    spec = DetectorSpec.of(str(model or DEFAULT_MODEL), preset, settings)
    stop = threading.Event()
    with stop_on_signals(stop):
        return run_planned(
            planned,
            spec,
            ray=ray,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            stop=stop,
            terminal=FilesTerminal(quiet=not progress),
        )
