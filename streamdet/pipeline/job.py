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
from typing import TYPE_CHECKING

from streamdet.errors import ConfigError, PromptError, SourceError, StreamdetError
from streamdet.pipeline.plan import STDOUT, InputPlan, plan_outputs
from streamdet.pipeline.progress import Terminal
from streamdet.pipeline.prompt_control import PromptSources
from streamdet.pipeline.prompt_file import PromptFile
from streamdet.pipeline.runner import FrameDetector, Progress, RunOptions, run
from streamdet.pipeline.stats import RunReport
from streamdet.pipeline.streams import StreamSpec, run_streams
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

if TYPE_CHECKING:  # the live view loads only when --serve is given
    from streamdet.serve import LiveView, ServeAddress

_log = logging.getLogger("streamdet.run")

#: Exit code of a run stopped by Ctrl-C / SIGTERM (128 + SIGINT, as shells do).
EXIT_INTERRUPTED = 130
#: Most sources one run takes at the same time (``streamdet run SRC1 SRC2 ...``).
MAX_TOGETHER = 32


@dataclass(frozen=True)
class RunJob:
    """What a run asks for, before anything is opened (the ``run`` command's flags).

    source: a file, folder, glob, camera index or stream URL. prompts or prompts_file: what to
    find (the file is re-read when it changes). video_out / jsonl_out: where the annotated video
    and the per-frame JSON lines go ("-" for stdout). max_fps samples a live source; timeout is
    the stream connect/read timeout and reconnect_timeout how long a dropped stream may stay
    away (0: forever). live_outputs writes a file source's MP4 and JSONL at their paths as the
    run goes, as a live source's always are (``streamdet.sinks.publish``: the live rule).
    serve: ``[HOST:]PORT`` of the live web view (``streamdet.serve``), with
    serve_token its token. together: more sources (files, cameras, stream URLs) run at the same
    time as ``source``, through one detector (``streamdet.pipeline.streams``); a folder or glob
    instead runs its files one after another.
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
    serve: str | None = None
    serve_token: str | None = None
    together: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedJob:
    """A checked job: its inputs with their outputs, the prompts to start with, and where the
    live view listens (None: no view)."""

    job: RunJob
    plans: tuple[InputPlan, ...]
    many: bool
    prompt_file: PromptFile | None
    initial_prompts: tuple[str, ...]
    serve: ServeAddress | None = None
    together: bool = False  # the inputs run at the same time (``RunJob.together``)


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
    serve = _plan_serve(job)
    if not (job.video_out or job.jsonl_out or job.show or serve):
        raise ConfigError(
            "nothing to write: give -o out.mp4, --jsonl out.jsonl (or '-' for stdout), --show "
            "or --serve PORT"
        )
    if job.show:
        check_display()
    together = bool(job.together)
    if together:
        inputs = _together_inputs((job.source, *job.together))
        many = True
    else:
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
    return PlannedJob(job, tuple(plans), many, prompt_file, prompts, serve, together)


def _together_inputs(specs: tuple[str, ...]) -> list[str]:
    """Sources that run at the same time: each one file, camera or stream; at most
    ``MAX_TOGETHER`` of them (a shell-expanded glob of a thousand files is not meant)."""
    if len(specs) > MAX_TOGETHER:
        raise ConfigError(
            f"{len(specs)} sources at once is more than {MAX_TOGETHER}; to run many files one "
            "after another give their folder or a quoted glob as the one source"
        )
    inputs: list[str] = []
    for spec in specs:
        found = expand_inputs(spec)
        if len(found) != 1 or Path(str(spec)).is_dir():
            raise ConfigError(
                f"'{mask_url(spec)}' is a folder or pattern; sources that run together are "
                "single files, cameras or streams (a folder runs on its own, one file at a time)"
            )
        inputs.append(found[0])
    if len(set(inputs)) != len(inputs):
        raise ConfigError("a source is given twice; give each camera or file once")
    return inputs


def _plan_serve(job: RunJob) -> ServeAddress | None:
    """The live view's checked address (the web server installed, the port free), or None."""
    if job.serve is None:
        if job.serve_token is not None:
            raise ConfigError("--serve-token needs --serve [HOST:]PORT")
        return None
    from streamdet.serve import check_port_free, parse_serve, require_aiohttp

    address = parse_serve(job.serve, job.serve_token)
    require_aiohttp()
    check_port_free(address)
    return address


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


@contextlib.contextmanager
def _serving(planned: PlannedJob, detector: FrameDetector) -> Iterator[LiveView | None]:
    """The live view for the whole job (every input), its URL printed once; closed (every
    connection) when the job ends, however it ends."""
    if planned.serve is None:
        yield None
        return
    from streamdet.serve import LiveView, ViewServer

    view = LiveView(detector)
    server = ViewServer(view, planned.serve)
    url = server.start()
    note = " (the token is in the link: share it only with viewers)" if planned.serve.token else ""
    print(f"streamdet: live view at {url}{note}", file=sys.stderr, flush=True)
    try:
        yield view
    finally:
        server.stop()


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
    view: LiveView | None = None,
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
        prompts: PromptSources | PromptFile | None = planned.prompt_file
        if view is not None:
            sinks.append(view.start_run(source.name, source.live))
            prompts = PromptSources([planned.prompt_file, view.prompts])

            def progress(p: Progress) -> None:
                terminal.progress(p)
                view.progress(p)
                if on_progress is not None:
                    on_progress(p)

        try:
            return run(
                source,
                detector,
                sinks,
                renderer=Renderer(heatmap=job.heatmap, overlay=job.overlay),
                options=options,
                stop=stop,
                prompts=prompts,
                on_progress=progress,
                on_stats=terminal.live_stats,
                clock=view.clock if view is not None else None,
            )
        finally:
            terminal.end()
            if view is not None:
                view.end_run()


def run_together(
    planned: PlannedJob,
    detector: FrameDetector,
    stop: threading.Event,
    view: LiveView | None = None,
) -> list[RunReport]:
    """Every planned input at the same time through one detector (``run_streams``): a source
    that cannot be opened is reported and the others run; the live view shows every source
    that opened, in order (``?source=K``)."""
    job = planned.job
    reconnect = ReconnectPolicy(give_up_after=job.reconnect_timeout or None)
    specs: list[StreamSpec] = []
    failed: list[RunReport] = []
    with contextlib.ExitStack() as opened:
        for plan in planned.plans:
            try:
                source = opened.enter_context(
                    open_source(
                        plan.source,
                        open_timeout=job.timeout,
                        read_timeout=job.timeout,
                        reconnect=reconnect,
                        hwaccel=job.hwaccel,
                    )
                )
            except SourceError as err:
                print(f"streamdet: skipped: {err}", file=sys.stderr)
                failed.append(_unopened(plan.source, detector, str(err)))
                continue
            live = source.live or job.live_outputs
            sinks = _sinks_for(plan, source.fps, job, stop, live=live)
            opened.callback(lambda sinks=sinks: [sink.close() for sink in sinks])
            if view is None:
                specs.append(StreamSpec(source, tuple(sinks)))
                continue
            shown = view.start_run(source.name, source.live)  # source K: ?source=K
            opened.callback(view.end_run, shown)
            sinks.append(shown)
            specs.append(StreamSpec(source, tuple(sinks), shown.clock, shown.progress))
        if not specs:
            return failed
        prompts: PromptSources | PromptFile | None = planned.prompt_file
        if view is not None:
            prompts = PromptSources([planned.prompt_file, view.prompts])
        live = any(s.source.live for s in specs)
        print(
            f"streamdet: {len(specs)} sources at once through one model",
            file=sys.stderr,
            flush=True,
        )
        reports = run_streams(
            specs,
            detector,
            renderer=Renderer(heatmap=job.heatmap, overlay=job.overlay),
            options=RunOptions(max_fps=job.max_fps if live else None),
            stop=stop,
            prompts=prompts,
        )
    return reports + failed


def _unopened(spec: str, detector: FrameDetector, why: str) -> RunReport:
    """The report of a source that could not be opened."""
    return RunReport(
        source=mask_url(spec),
        live=False,
        frames_read=0,
        frames_processed=0,
        frames_dropped=0,
        frames_skipped=0,
        seconds=0.0,
        stages={},
        outputs={},
        interrupted=False,
        provider=detector.provider,
        error=why,
    )


def run_job(planned: PlannedJob, detector: FrameDetector) -> int:
    """Run every planned input through ``detector``; print each summary; the exit code."""
    stop = threading.Event()
    reports: list[RunReport] = []
    failed: list[str] = []
    with stop_on_signals(stop) as signalled, _serving(planned, detector) as view:
        if planned.together:
            reports = run_together(planned, detector, stop, view)
            for report in reports:
                for line in report.lines():
                    print(line, file=sys.stderr)
                if report.error is not None:
                    failed.append(report.source)
        for plan in () if planned.together else planned.plans:
            if stop.is_set():
                break
            try:
                report = run_input(plan, detector, planned, stop, view=view)
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
