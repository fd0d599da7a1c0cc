"""A ``streamdet run`` job: one or many inputs through one detector into MP4/JSONL/window sinks.

The command line turns its flags into a ``RunJob``; ``plan_job`` checks everything that can be
checked before the model loads (prompts, outputs, timeouts, the hardware decoder) and plans one
output set per input; the caller builds the detector from the planned prompts; ``run_job`` runs
every input and returns the exit code. Ctrl-C (and SIGTERM) set a stop event instead of raising in
the middle of a write, so the run ends after the frame being written, every sink is finalised,
and the summary says what was written; a second Ctrl-C interrupts at once (sinks are still
finalised by their crash rule). With several inputs, one that cannot be read is reported and
skipped, and the exit code says that some failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from streamdet.errors import ConfigError, PromptError, SourceError, StreamdetError
from streamdet.pipeline.plan import STDOUT, InputPlan, plan_outputs
from streamdet.pipeline.progress import Terminal
from streamdet.pipeline.prompt_file import PromptFile
from streamdet.pipeline.runner import FrameDetector, Progress, RunOptions, run
from streamdet.pipeline.stats import RunReport
from streamdet.render import Renderer
from streamdet.sinks import (
    ImageSink,
    JsonlSink,
    Mp4Sink,
    Sink,
    WindowSink,
    check_display,
    ensure_folder,
)
from streamdet.sources import (
    ReconnectPolicy,
    expand_inputs,
    hardware_decoder,
    mask_url,
    open_source,
)

_log = logging.getLogger("streamdet.run")

#: Exit code of a run stopped by Ctrl-C / SIGTERM (128 + SIGINT, as shells do).
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RunJob:
    """What a run asks for, before anything is opened (the ``run`` command's flags).

    source: a file, folder, glob, camera index or stream URL. prompts or prompts_file: what to
    find (the file is re-read when it changes). video_out / jsonl_out: where the annotated video
    and the per-frame JSON lines go ("-" for stdout). max_fps samples a live source; timeout is
    the stream connect/read timeout and reconnect_timeout how long a dropped stream may stay
    away (0: forever). live_outputs writes a file source's MP4 and JSONL at their paths as the
    run goes, as a live source's always are (``streamdet.sinks.publish``: the live rule).
    """

    source: str
    prompts: tuple[str, ...] = ()
    prompts_file: str | None = None
    video_out: str | None = None
    jsonl_out: str | None = None
    show: bool = False
    heatmap: str = "none"
    overlay: bool = False
    stats: bool = False
    report: str | None = None
    overwrite: bool = False
    codec: str = "libx264"
    hwaccel: str | None = None
    max_fps: float | None = None
    timeout: float = 10.0
    reconnect_timeout: float = 60.0
    live_outputs: bool = False


@dataclass(frozen=True)
class PlannedJob:
    """A checked job: its inputs with their outputs, and the prompts to start with."""

    job: RunJob
    plans: tuple[InputPlan, ...]
    many: bool
    prompt_file: PromptFile | None
    initial_prompts: tuple[str, ...]


def _positive(name: str, value: float | None, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if not (value > 0 or (zero_ok and value == 0)) or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds/frames, but got {value}")


def plan_job(job: RunJob, *, resume: bool = False) -> PlannedJob:
    """Everything that can be checked before the model loads; one-line errors.

    ``resume``: outputs that exist already are not an error (a resumable run skips them; see
    ``streamdet.pipeline.resume``); every other check is the same.
    """
    from streamdet.detect.prompts import normalise_prompts

    if job.prompts and job.prompts_file:
        raise ConfigError("give prompts with -p or with --prompts-file, not both")
    prompt_file = None
    if job.prompts_file:
        prompt_file = PromptFile(Path(job.prompts_file))
        prompts = prompt_file.prompts
    elif job.prompts:
        prompts = normalise_prompts(job.prompts)
        if not prompts:
            raise PromptError("the prompts are empty; give one with -p, e.g. -p 'a red car'")
    else:
        raise PromptError("give at least one prompt with -p, e.g. -p 'a red car'")
    _positive("--max-fps", job.max_fps)
    _positive("--timeout", job.timeout)
    _positive("--reconnect-timeout", job.reconnect_timeout, zero_ok=True)
    if not (job.video_out or job.jsonl_out or job.show):
        raise ConfigError(
            "nothing to write: give -o out.mp4, --jsonl out.jsonl (or '-' for stdout) or --show"
        )
    if job.show:
        check_display()
    inputs = expand_inputs(job.source)
    many = len(inputs) > 1 or Path(str(job.source)).is_dir()
    plans = plan_outputs(
        inputs,
        video_out=job.video_out,
        jsonl_out=job.jsonl_out,
        many=many,
        overwrite=job.overwrite or resume,
    )
    hardware_decoder(job.hwaccel)  # an unknown decoder fails before the model loads
    return PlannedJob(job, tuple(plans), many, prompt_file, prompts)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """First Ctrl-C / SIGTERM: set ``stop`` (clean end). Second Ctrl-C: KeyboardInterrupt.

    Yields the list of signals received (empty: the run was not interrupted by a signal).
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()
        print("\nstreamdet: stopping (Ctrl-C again to stop at once)", file=sys.stderr)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _sinks_for(
    plan: InputPlan, fps: float | None, job: RunJob, stop: threading.Event, *, live: bool
) -> list[Sink]:
    """The run's sinks; ``live``: the MP4 and JSONL are written at their paths as it goes."""
    sinks: list[Sink] = []
    try:
        if plan.video is not None:
            ensure_folder(plan.video.parent)
            if plan.video.suffix.lower() in (".mp4", ".m4v", ".mov"):
                sinks.append(
                    Mp4Sink(
                        plan.video, fps=fps, overwrite=job.overwrite, codec=job.codec, live=live
                    )
                )
            else:
                sinks.append(ImageSink(plan.video, overwrite=job.overwrite))
        if plan.jsonl is not None:
            if plan.jsonl != STDOUT:
                ensure_folder(Path(plan.jsonl).parent)
            sinks.append(JsonlSink(plan.jsonl, overwrite=job.overwrite, live=live))
        if job.show:
            sinks.append(WindowSink("streamdet", stop.set))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def run_input(
    plan: InputPlan,
    detector: FrameDetector,
    planned: PlannedJob,
    stop: threading.Event,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunReport:
    """One input through ``detector`` into its planned outputs: the per-file pipeline that every
    run uses (one process, or a Ray worker), so an input's outputs do not depend on which ran it.

    ``on_progress`` is also given every progress snapshot (the terminal's bar gets them too).
    """
    job = planned.job
    reconnect = ReconnectPolicy(give_up_after=job.reconnect_timeout or None)
    with open_source(
        plan.source,
        open_timeout=job.timeout,
        read_timeout=job.timeout,
        reconnect=reconnect,
        hwaccel=job.hwaccel,
    ) as source:
        live = source.live or job.live_outputs
        sinks = _sinks_for(plan, source.fps, job, stop, live=live)
        terminal = Terminal(source.name, source.live)

        def progress(p: Progress) -> None:
            terminal.progress(p)
            if on_progress is not None:
                on_progress(p)

        if job.max_fps and not source.live:
            _log.warning(
                "--max-fps applies to live sources; every frame of %s is used", source.name
            )
        options = RunOptions(
            max_fps=job.max_fps if source.live else None,
            stats_interval=1.0 if job.stats else None,
        )
        try:
            return run(
                source,
                detector,
                sinks,
                renderer=Renderer(heatmap=job.heatmap, overlay=job.overlay),
                options=options,
                stop=stop,
                prompts=planned.prompt_file,
                on_progress=progress,
                on_stats=terminal.live_stats,
            )
        finally:
            terminal.end()


def run_job(planned: PlannedJob, detector: FrameDetector) -> int:
    """Run every planned input through ``detector``; print each summary; the exit code."""
    stop = threading.Event()
    reports: list[RunReport] = []
    failed: list[str] = []
    with stop_on_signals(stop) as signalled:
        for plan in planned.plans:
            if stop.is_set():
                break
            try:
                report = run_input(plan, detector, planned, stop)
            except SourceError as err:
                if not planned.many:
                    raise
                print(f"streamdet: skipped: {err}", file=sys.stderr)
                failed.append(mask_url(plan.source))
                continue
            reports.append(report)
            for line in report.lines():
                print(line, file=sys.stderr)
    if planned.job.report:
        Path(planned.job.report).write_text(
            json.dumps([r.to_dict() for r in reports], indent=2) + "\n", encoding="utf-8"
        )
    if signalled:
        return EXIT_INTERRUPTED
    if failed:
        raise StreamdetError(
            f"{len(failed)} of {len(planned.plans)} inputs could not be read: {', '.join(failed)}"
        )
    return 0
