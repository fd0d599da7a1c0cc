"""The streaming pipeline: capture thread -> frame queue -> inference thread -> result queue ->
render and sinks (on the calling thread).

Why this shape:

* Capture runs on its own thread so that decoding (or a network read) overlaps inference; the
  frame queue between them waits for files and drops the oldest frame for live sources (see
  ``capture``).
* Inference runs on a worker thread, so that the calling thread stays free for rendering,
  encoding and the live window (OpenCV's GUI wants one thread, and it should be the main one),
  and for noticing Ctrl-C at once. ONNX Runtime, OpenCV and PyAV release the GIL, so the stages
  really overlap on a multi-core machine.
* Rendering and writing happen in order on the calling thread, one frame at a time, so every
  sink holds the same frames: after a stop the MP4's frame count equals the JSONL's line count.

One ``halt`` event stops every stage. It is set by the caller's ``stop`` event (Ctrl-C, ``q`` in
the window), by the end of the input, or by an error in any stage; every queue operation waits at
most ``POLL_S`` before looking at it, so nothing hangs. An error in a thread is caught there,
kept with its traceback, and raised on the calling thread after the sinks were finalised:
``StreamdetError``s as they are (one-line messages), anything else as ``PipelineError`` naming the
stage, chained to the original.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamdet.errors import PipelineError, StreamdetError
from streamdet.pipeline.capture import POLL_S, Capture, EndOfStream
from streamdet.pipeline.prompt_control import PromptSource, apply_update
from streamdet.pipeline.stats import RunReport, StageClock
from streamdet.render import Renderer
from streamdet.sinks import Sink
from streamdet.sources import Source
from streamdet.track import Tracker, tracker_for
from streamdet.types import Frame, FrameResult, Workload

_log = logging.getLogger("streamdet.pipeline")

_END = object()


class FrameDetector(Protocol):
    """What the pipeline needs of a detector (``streamdet.Detector`` has it)."""

    @property
    def provider(self) -> str: ...

    def detect(self, frame: np.ndarray) -> FrameResult: ...

    def set_prompts(self, prompts: Sequence[str]) -> None: ...  # may take thresholds=


@dataclass(frozen=True)
class RunOptions:
    """Knobs of one run.

    queue_size: frames between capture and inference (default: 1 for live sources, 8 for files).
    max_fps: sample a live source down to this rate before the queue.
    result_queue: detected frames waiting for render/sinks (back-pressure on inference).
    stats_interval: seconds between live stats lines (None: no live stats).
    join_timeout: how long to wait for a stage to finish its current step after a stop.
    """

    queue_size: int | None = None
    max_fps: float | None = None
    result_queue: int = 4
    stats_interval: float | None = None
    join_timeout: float = 15.0


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress bars and live stats."""

    processed: int
    expected: int | None
    elapsed: float
    fps: float
    dropped: int
    latency_ms: float | None


class _Failure:
    """The first error of any stage, with the stage's name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stage: str | None = None
        self.error: BaseException | None = None

    def set(self, stage: str, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.stage, self.error = stage, error

    def raise_if_any(self) -> None:
        if self.error is None:
            return
        if isinstance(self.error, StreamdetError):
            raise self.error
        _log.info("%s stage failed", self.stage, exc_info=self.error)
        raise PipelineError(
            f"the {self.stage} stage failed: {type(self.error).__name__}: {self.error}"
        ) from self.error


class _Inference:
    """The inference worker: frames from the capture queue, results to the result queue."""

    def __init__(
        self,
        capture: Capture,
        detector: FrameDetector,
        results: queue.Queue,
        halt: threading.Event,
        failure: _Failure,
        clock: StageClock,
        prompts: PromptSource | None,
        tracker: Tracker | None = None,
    ) -> None:
        self.capture = capture
        self.detector = detector
        self.results = results
        self.halt = halt
        self.failure = failure
        self.clock = clock
        self.prompts = prompts
        self.tracker = tracker  # None: the frames' boxes go out as the detector found them
        self.work = Workload()  # summed over the run (written by this worker's thread only)
        self.thread = threading.Thread(target=self._run, name="streamdet-inference", daemon=True)

    def _put(self, item: object) -> bool:
        while not self.halt.is_set():
            try:
                self.results.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _track(self, result: FrameResult) -> FrameResult:
        """The tracking hook: ids and steadier boxes (``streamdet.track``), timed as "track"."""
        if self.tracker is None:
            return result
        t0 = time.perf_counter()
        result = self.tracker.update(result)
        self.clock.add("track", (time.perf_counter() - t0) * 1e3)
        return result

    def _run(self) -> None:
        try:
            while not self.halt.is_set():
                t0 = time.perf_counter()
                try:
                    frame = self.capture.queue.get(self.halt)
                except EndOfStream:
                    self._put(_END)
                    return
                if frame is None:  # halted while waiting
                    return
                self.clock.add("capture_wait", (time.perf_counter() - t0) * 1e3)
                if self.prompts is not None:
                    changed = self.prompts.poll()
                    if changed is not None:
                        apply_update(self.detector, changed)
                result = self.detector.detect(frame.image)
                t = result.timings
                self.clock.add("preprocess", t.preprocess_ms)
                self.clock.add("encode", t.encode_ms)
                self.clock.add("score", t.score_ms + t.boxes_ms + t.verify_ms)
                self.work = self.work + getattr(result, "work", Workload())
                result = self._track(result)
                if not self._put((frame, result)):
                    return
        except BaseException as exc:  # kept, raised on the calling thread
            stage = "capture" if self.capture.queue.failed else "inference"
            self.failure.set(stage, exc)
            self.halt.set()


def run(
    source: Source,
    detector: FrameDetector,
    sinks: Sequence[Sink],
    *,
    renderer: Renderer | None = None,
    options: RunOptions | None = None,
    stop: threading.Event | None = None,
    prompts: PromptSource | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_stats: Callable[[Progress, StageClock], None] | None = None,
    clock: StageClock | None = None,
) -> RunReport:
    """Run ``source`` through ``detector`` into ``sinks`` until the end, a stop or an error.

    Sinks are always closed (finalised) before this returns or raises. ``stop`` (set it from a
    signal handler or another thread) ends the run after the frame being written; the report
    then says ``interrupted``. A ``KeyboardInterrupt`` on the calling thread does the same and is
    re-raised after the sinks are closed.

    prompts: polled between frames for prompt changes (a ``PromptFile``, the live view's
    mailbox, ``PromptSources`` of both). clock: a ``StageClock`` to record the stage times in,
    for a caller that shows them while the run goes on (the live view); default: a new one.
    When the detector's ``track`` setting is on and the source is a video or a stream, each
    frame's result goes through a ``streamdet.track.Tracker`` after the detector (``track_id``
    on every box; the ``_Inference._track`` hook).
    """
    renderer = renderer or Renderer()
    options = options or RunOptions()
    stop = stop or threading.Event()
    halt = threading.Event()
    failure = _Failure()
    clock = clock if clock is not None else StageClock()
    reset = getattr(detector, "reset", None)
    if callable(reset):
        reset()  # a new stream: nothing kept from another one is reused (temporal reuse)
    capture = Capture(source, halt, queue_size=options.queue_size, max_fps=options.max_fps)
    results: queue.Queue = queue.Queue(maxsize=max(1, options.result_queue))
    tracker = tracker_for(detector, source)  # per run: ids start at 1 for every stream
    worker = _Inference(capture, detector, results, halt, failure, clock, prompts, tracker)
    needs_picture = any(s.needs_picture for s in sinks)
    expected = None if source.live else source.frame_count
    processed = 0
    interrupted = False
    keyboard: KeyboardInterrupt | None = None
    written: dict[str, int] = {}
    start = time.monotonic()
    last_stats = start
    last_progress = 0.0

    def snapshot() -> Progress:
        elapsed = time.monotonic() - start
        return Progress(
            processed=processed,
            expected=expected,
            elapsed=elapsed,
            fps=processed / elapsed if elapsed > 0 else 0.0,
            dropped=capture.stats.dropped,
            latency_ms=clock.recent_mean("latency"),
        )

    capture.start()
    worker.thread.start()
    try:
        while True:
            if stop.is_set():
                interrupted = True
                break
            try:
                item = results.get(timeout=POLL_S)
            except queue.Empty:
                if halt.is_set() and failure.error is not None:
                    break
                continue
            if item is _END:
                break
            frame, result = item
            try:
                write_frame(frame, result, sinks, renderer, needs_picture, clock, snapshot)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failure.set("output", exc)
                break
            processed += 1
            now = time.monotonic()
            if on_progress is not None and (now - last_progress >= 0.25 or processed == 1):
                on_progress(snapshot())
                last_progress = now
            if (
                on_stats is not None
                and options.stats_interval
                and (now - last_stats >= options.stats_interval)
            ):
                on_stats(snapshot(), clock)
                last_stats = now
    except KeyboardInterrupt as exc:
        interrupted, keyboard = True, exc
    finally:
        halt.set()
        for name, ok in (
            ("inference", _join(worker.thread, options.join_timeout)),
            ("capture", capture.join(options.join_timeout)),
        ):
            if not ok:
                _log.warning("the %s stage did not stop within %.0f s", name, options.join_timeout)
        for sink in sinks:
            try:
                done = sink.close()
            except BaseException as exc:  # the first error wins; the others still close
                failure.set("output", exc)
                continue
            if done is not None:
                written[done[0]] = done[1]
        if on_progress is not None:
            on_progress(snapshot())
    if keyboard is not None:
        raise keyboard
    failure.raise_if_any()
    stats = capture.stats
    return RunReport(
        source=source.name,
        live=source.live,
        frames_read=stats.read,
        frames_processed=processed,
        frames_dropped=stats.dropped,
        frames_skipped=stats.skipped,
        seconds=time.monotonic() - start,
        stages=clock.summary(),
        outputs=written,
        interrupted=interrupted,
        provider=detector.provider,
        config=config_record(detector),
        work=worker.work.to_dict(),
    )


def config_record(detector: FrameDetector) -> dict | None:
    """The detector's resolved configuration for the report (test doubles may have none)."""
    config = getattr(detector, "config", None)
    return config.to_dict() if config is not None else None


def _join(thread: threading.Thread, timeout: float) -> bool:
    if thread.is_alive():
        thread.join(timeout)
    return not thread.is_alive()


def _overlay_lines(progress: Progress) -> list[str]:
    lines = [f"{progress.fps:.1f} FPS"]
    if progress.latency_ms is not None:
        lines.append(f"latency {progress.latency_ms:.0f} ms")
    if progress.dropped:
        lines.append(f"dropped {progress.dropped}")
    return lines


def write_frame(
    frame: Frame,
    result: FrameResult,
    sinks: Sequence[Sink],
    renderer: Renderer,
    needs_picture: bool,
    clock: StageClock,
    snapshot: Callable[[], Progress],
) -> None:
    """Render once, hand the frame to every sink, and record render/write/latency times."""
    t0 = time.perf_counter()
    picture = None
    if needs_picture:
        overlay = _overlay_lines(snapshot()) if renderer.overlay else ()
        picture = renderer.render(frame.image, result, overlay)
    t1 = time.perf_counter()
    for sink in sinks:
        sink.write(frame, result, picture)
    t2 = time.perf_counter()
    clock.add("render", (t1 - t0) * 1e3)
    clock.add("write", (t2 - t1) * 1e3)
    clock.add("latency", (time.monotonic() - frame.captured_at) * 1e3)
