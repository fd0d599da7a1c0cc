"""``streamdet run``: one or many inputs through one detector into MP4/JSONL/window outputs.

Everything the user got wrong is found before the model loads where possible (outputs, prompts,
window settings), and before the first input is processed in any case. Ctrl-C (and SIGTERM) set a
stop event instead of raising in the middle of a write, so the run ends after the frame being
written, every output is finalised, and the summary says what was written; a second Ctrl-C
interrupts at once (outputs are still finalised by the writers' crash rule). With several inputs,
one that cannot be read is reported and skipped, and the exit code says that some failed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamdet.cli.flags import Settings
from streamdet.errors import ConfigError, PromptError, SourceError, StreamdetError
from streamdet.pipeline.plan import STDOUT, InputPlan, plan_outputs
from streamdet.pipeline.progress import progress_line, stats_line
from streamdet.pipeline.prompt_file import PromptFile
from streamdet.pipeline.runner import Progress, RunOptions, run
from streamdet.pipeline.stats import RunReport, StageClock
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
class _Checked:
    prompts: tuple[str, ...] | None
    prompt_file: Path | None
    plans: list[InputPlan]
    many: bool


def _positive(name: str, value: float | None, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if not (value > 0 or (zero_ok and value == 0)) or value != value or value == float("inf"):
        raise ConfigError(f"{name} must be a positive number of seconds/frames, but got {value}")


def _check_args(args: argparse.Namespace) -> _Checked:
    """Everything that can be checked before the model loads."""
    from streamdet.detect.prompts import normalise_prompts

    if args.prompt and args.prompts_file:
        raise ConfigError("give prompts with -p or with --prompts-file, not both")
    prompts = None
    prompt_file = None
    if args.prompts_file:
        prompt_file = Path(args.prompts_file)
    elif args.prompt:
        prompts = normalise_prompts(args.prompt)
        if not prompts:
            raise PromptError("the prompts are empty; give one with -p, e.g. -p 'a red car'")
    else:
        raise PromptError("give at least one prompt with -p, e.g. -p 'a red car'")
    _positive("--max-fps", args.max_fps)
    _positive("--timeout", args.timeout)
    _positive("--reconnect-timeout", args.reconnect_timeout, zero_ok=True)
    if not (args.output or args.jsonl or args.show):
        raise ConfigError(
            "nothing to write: give -o out.mp4, --jsonl out.jsonl (or '-' for stdout) or --show"
        )
    if args.show:
        check_display()
    inputs = expand_inputs(args.source)
    many = len(inputs) > 1 or Path(str(args.source)).is_dir()
    plans = plan_outputs(
        inputs,
        video_out=args.output,
        jsonl_out=args.jsonl,
        many=many,
        overwrite=args.overwrite,
    )
    return _Checked(prompts, prompt_file, plans, many)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
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


class _Terminal:
    """Progress bar (files, on a terminal) and live stats lines on stderr."""

    def __init__(self, name: str, live: bool, stats: bool) -> None:
        self.name = name
        self.bar = sys.stderr.isatty() and not live
        self.stats = stats
        self._drawn = False

    def progress(self, p: Progress) -> None:
        if self.bar:
            sys.stderr.write("\r" + progress_line(p, self.name) + "\x1b[K")
            sys.stderr.flush()
            self._drawn = True

    def live_stats(self, p: Progress, clock: StageClock) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            self._drawn = False
        print(stats_line(p, clock), file=sys.stderr, flush=True)

    def end(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False


def _sinks_for(plan: InputPlan, fps: float | None, args, stop: threading.Event) -> list[Sink]:
    sinks: list[Sink] = []
    try:
        if plan.video is not None:
            ensure_folder(plan.video.parent)
            if plan.video.suffix.lower() in (".mp4", ".m4v", ".mov"):
                sinks.append(
                    Mp4Sink(plan.video, fps=fps, overwrite=args.overwrite, codec=args.codec)
                )
            else:
                sinks.append(ImageSink(plan.video, overwrite=args.overwrite))
        if plan.jsonl is not None:
            if plan.jsonl != STDOUT:
                ensure_folder(Path(plan.jsonl).parent)
            sinks.append(JsonlSink(plan.jsonl, overwrite=args.overwrite))
        if args.show:
            sinks.append(WindowSink("streamdet", stop.set))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _run_one(plan: InputPlan, detector, args, stop: threading.Event, prompts) -> RunReport:
    reconnect = ReconnectPolicy(give_up_after=args.reconnect_timeout or None)
    with open_source(
        plan.source,
        open_timeout=args.timeout,
        read_timeout=args.timeout,
        reconnect=reconnect,
        hwaccel=getattr(args, "hwaccel", None),
    ) as source:
        sinks = _sinks_for(plan, source.fps, args, stop)
        terminal = _Terminal(source.name, source.live, args.stats)
        if args.max_fps and not source.live:
            _log.warning(
                "--max-fps applies to live sources; every frame of %s is used", source.name
            )
        options = RunOptions(
            max_fps=args.max_fps if source.live else None,
            stats_interval=1.0 if args.stats else None,
        )
        try:
            return run(
                source,
                detector,
                sinks,
                renderer=Renderer(heatmap=args.heatmap, overlay=args.overlay),
                options=options,
                stop=stop,
                prompts=prompts,
                on_progress=terminal.progress,
                on_stats=terminal.live_stats,
            )
        finally:
            terminal.end()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The ``run`` command; returns the exit code."""
    import json

    from streamdet.detect.detector import Detector

    checked = _check_args(args)
    prompt_watch = PromptFile(checked.prompt_file) if checked.prompt_file else None
    prompts = checked.prompts if prompt_watch is None else prompt_watch.prompts
    hardware_decoder(getattr(args, "hwaccel", None))  # unknown types fail before the model loads
    detector = Detector(args.model, prompts, preset=settings.preset, **settings.overrides)
    stop = threading.Event()
    reports: list[RunReport] = []
    failed: list[str] = []
    with _stop_on_signals(stop) as signalled:
        for plan in checked.plans:
            if stop.is_set():
                break
            try:
                report = _run_one(plan, detector, args, stop, prompt_watch)
            except SourceError as err:
                if not checked.many:
                    raise
                print(f"streamdet: skipped: {err}", file=sys.stderr)
                failed.append(mask_url(plan.source))
                continue
            reports.append(report)
            for line in report.lines():
                print(line, file=sys.stderr)
    if args.report:
        Path(args.report).write_text(
            json.dumps([r.to_dict() for r in reports], indent=2) + "\n", encoding="utf-8"
        )
    if signalled:
        return EXIT_INTERRUPTED
    if failed:
        raise StreamdetError(
            f"{len(failed)} of {len(checked.plans)} inputs could not be read: {', '.join(failed)}"
        )
    return 0
