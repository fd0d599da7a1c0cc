"""Many sources, one model: every stream's newest frame goes through one detector call.

``run`` (``streamdet.pipeline.runner``) is one source, one detector. A site with a dozen cameras
would run a dozen of those, each with its own copy of the model and its own thread pool fighting
for the same cores. ``run_streams`` runs them all in one process around one detector:

* one capture thread per source (``Capture``: a live source's queue keeps only its newest
  frame and counts the ones it drops; a file's waits, so files lose no frame);
* one inference thread that takes whatever frames are ready, one per stream, and gives them
  to ``Detector.detect_many`` in one call (one tower batch for the passes, one for every
  stream's verification crops; temporal reuse and tracking are per stream). It never waits for
  a stream that has nothing: a source that stalls, reconnects or dies holds up no other;
* one output thread per stream (render and that stream's sinks), so a slow disk behind one
  camera delays only that camera's files: a live stream's results do not queue behind a slow
  output, the oldest waiting result is dropped (and counted) instead. A file's results wait for
  room (a file loses no frame), which can slow the batch down to that file's output.

A source that fails ends its own stream (its sinks are finalised, its report says why); the
others go on. The run ends when every stream has ended, or at ``stop`` (Ctrl-C), after which
every sink is finalised as in a single run. Each stream gets its own ``RunReport``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from streamdet.errors import StreamdetError
from streamdet.pipeline.capture import POLL_S, Capture, EndOfStream
from streamdet.pipeline.prompt_control import PromptSource, apply_update
from streamdet.pipeline.runner import (
    FrameDetector,
    Progress,
    RunOptions,
    config_record,
    write_frame,
)
from streamdet.pipeline.stats import RunReport, StageClock
from streamdet.render import Renderer
from streamdet.sinks import Sink
from streamdet.sources import Source
from streamdet.track import Tracker, tracker_for
from streamdet.types import Frame, FrameResult, Workload

_log = logging.getLogger("streamdet.pipeline")

#: Results waiting for one stream's output thread.
OUTPUT_QUEUE = 4


@dataclass(frozen=True)
class StreamSpec:
    """One source of a many-stream run and where its results go.

    clock: where the stream records its stage times (None: a clock of its own), and
    on_progress: called on the stream's output thread with its ``Progress`` (at most four times
    a second while frames come, once more when they pause, and at its end); both what a live
    view of the stream reads.
    """

    source: Source
    sinks: Sequence[Sink] = ()
    clock: StageClock | None = None
    on_progress: Callable[[Progress], None] | None = None


@dataclass
class _Stream:
    """One stream's moving parts and counts (touched by its own threads, read at the end)."""

    key: int
    spec: StreamSpec
    capture: Capture
    tracker: Tracker | None
    clock: StageClock = field(default_factory=StageClock)
    results: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=OUTPUT_QUEUE))
    processed: int = 0
    output_dropped: int = 0
    work: Workload = field(default_factory=Workload)
    error: BaseException | None = None
    ended: bool = False  # no more frames will come from capture
    output_failed: bool = False  # its output thread is gone: nothing reads ``results`` any more
    writer: threading.Thread | None = None
    written: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.source.name


_DONE = object()


def run_streams(
    streams: Sequence[StreamSpec],
    detector: FrameDetector,
    *,
    renderer: Renderer | None = None,
    options: RunOptions | None = None,
    stop: threading.Event | None = None,
    prompts: PromptSource | None = None,
    on_frame: Callable[[int, Frame, FrameResult], None] | None = None,
) -> list[RunReport]:
    """Run every stream through ``detector`` (which must have ``detect_many``) until each ends,
    or until ``stop``; returns one report per stream, in order.

    on_frame: called on a stream's output thread after each of its frames was written, with
    the stream's index (progress displays, tests).
    """
    if not streams:
        raise ValueError("run_streams needs at least one stream")
    renderer = renderer or Renderer()
    options = options or RunOptions()
    stop = stop or threading.Event()
    halt = threading.Event()
    reset = getattr(detector, "reset", None)
    if callable(reset):
        reset()
    state = [
        _Stream(
            i,
            spec,
            Capture(spec.source, halt, queue_size=options.queue_size, max_fps=options.max_fps),
            tracker_for(detector, spec.source),
            clock=spec.clock or StageClock(),
        )
        for i, spec in enumerate(streams)
    ]
    start = time.monotonic()
    inference_error: list[BaseException] = []
    worker = threading.Thread(
        target=_infer,
        args=(state, detector, halt, prompts, inference_error),
        name="streamdet-inference",
        daemon=True,
    )
    for s in state:
        s.writer = threading.Thread(
            target=_output,
            args=(s, renderer, halt, on_frame, start),
            name=f"streamdet-output-{s.key}",
            daemon=True,
        )
        s.capture.start()
        s.writer.start()
    worker.start()
    interrupted = False
    keyboard: KeyboardInterrupt | None = None
    try:
        while worker.is_alive() or any(s.writer.is_alive() for s in state if s.writer):
            if stop.is_set():
                interrupted = True
                break
            worker.join(POLL_S)
            if not worker.is_alive():
                for s in state:
                    if s.writer is not None:
                        s.writer.join(POLL_S)
    except KeyboardInterrupt as exc:
        interrupted, keyboard = True, exc
    finally:
        halt.set()
        worker.join(options.join_timeout)
        for s in state:
            s.capture.join(options.join_timeout)
            if s.writer is not None:
                s.writer.join(options.join_timeout)
            for sink in s.spec.sinks:
                try:
                    done = sink.close()
                except BaseException as exc:  # the first error of the stream wins
                    s.error = s.error or exc
                    continue
                if done is not None:
                    s.written[done[0]] = done[1]
    if keyboard is not None:
        raise keyboard
    if inference_error:
        error = inference_error[0]
        if isinstance(error, StreamdetError):
            raise error
        raise StreamdetError(f"the inference stage failed: {type(error).__name__}: {error}")
    seconds = time.monotonic() - start
    return [_report(s, detector, seconds, interrupted) for s in state]


def _infer(
    state: list[_Stream],
    detector: FrameDetector,
    halt: threading.Event,
    prompts: PromptSource | None,
    errors: list[BaseException],
) -> None:
    """The one inference thread: the newest ready frame of every stream, one detector call."""
    detect_many = getattr(detector, "detect_many", None)
    try:
        while not halt.is_set():
            batch: list[tuple[_Stream, Frame]] = []
            for s in state:
                if s.ended:
                    continue
                try:
                    frame = s.capture.queue.get(halt, timeout=0)
                except EndOfStream:
                    _end(s, None, halt)
                    continue
                except BaseException as exc:  # this source failed; the others go on
                    _log.warning("%s: %s", s.name, exc)
                    _end(s, exc, halt)
                    continue
                if frame is not None:
                    batch.append((s, frame))
            if all(s.ended for s in state):
                return
            if not batch:
                time.sleep(0.002)
                continue
            if prompts is not None:
                changed = prompts.poll()
                if changed is not None:
                    apply_update(detector, changed)
            if callable(detect_many):
                results = detect_many(
                    [f.image for _, f in batch], streams=[s.key for s, _ in batch]
                )
            else:  # a detector without batching (test doubles): one frame at a time
                results = [detector.detect(f.image) for _, f in batch]
            for (s, frame), result in zip(batch, results, strict=True):
                t = result.timings
                s.clock.add("preprocess", t.preprocess_ms)
                s.clock.add("encode", t.encode_ms)
                s.clock.add("score", t.score_ms + t.boxes_ms + t.verify_ms)
                s.work = s.work + result.work
                if s.tracker is not None:
                    t0 = time.perf_counter()
                    result = s.tracker.update(result)
                    s.clock.add("track", (time.perf_counter() - t0) * 1e3)
                _hand_over(s, (frame, result), halt)
    except BaseException as exc:
        errors.append(exc)
        halt.set()


def _end(s: _Stream, error: BaseException | None, halt: threading.Event) -> None:
    """No more frames from this stream: its output thread ends after the ones queued."""
    s.ended, s.error = True, error
    _hand_over(s, _DONE, halt)


def _hand_over(s: _Stream, item: object, halt: threading.Event) -> None:
    """Queue a result for the stream's output thread: a file's waits for room (no frame of a
    file is lost), a live stream's pushes out its oldest waiting result (counted). A stream whose
    output failed takes nothing: no thread would ever make room, and waiting for one would hang
    every other stream behind the one inference thread."""
    if s.output_failed:
        return
    if s.spec.source.live:
        while True:
            try:
                s.results.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    if s.results.get_nowait() is not _DONE:
                        s.output_dropped += 1
    while not halt.is_set() and not s.output_failed:
        try:
            s.results.put(item, timeout=POLL_S)
            return
        except queue.Full:
            continue


def _output(
    s: _Stream,
    renderer: Renderer,
    halt: threading.Event,
    on_frame: Callable[[int, Frame, FrameResult], None] | None,
    start: float,
) -> None:
    """One stream's output thread: render and write its frames in order."""
    sinks = list(s.spec.sinks)
    needs_picture = any(k.needs_picture for k in sinks)
    expected = None if s.spec.source.live else s.spec.source.frame_count

    def snapshot() -> Progress:
        elapsed = time.monotonic() - start
        return Progress(
            processed=s.processed,
            expected=expected,
            elapsed=elapsed,
            fps=s.processed / elapsed if elapsed > 0 else 0.0,
            dropped=s.capture.stats.dropped + s.output_dropped,
            latency_ms=s.clock.recent_mean("latency"),
        )

    on_progress = s.spec.on_progress
    last_progress, reported = 0.0, 0
    try:
        while True:
            try:
                item = s.results.get(timeout=POLL_S)
            except queue.Empty:
                if halt.is_set():
                    return
                if on_progress is not None and reported != s.processed:  # a pause: be exact
                    on_progress(snapshot())
                    last_progress, reported = time.monotonic(), s.processed
                continue
            if item is _DONE:
                return
            frame, result = item
            write_frame(frame, result, sinks, renderer, needs_picture, s.clock, snapshot)
            s.processed += 1
            if on_frame is not None:
                on_frame(s.key, frame, result)
            now = time.monotonic()
            if on_progress is not None and (now - last_progress >= 0.25 or s.processed == 1):
                on_progress(snapshot())
                last_progress, reported = now, s.processed
    except BaseException as exc:  # this stream's output failed; the others go on
        _log.warning("%s: output failed: %s", s.name, exc)
        s.error = s.error or exc
        s.ended = s.output_failed = True
    finally:
        if on_progress is not None:
            with contextlib.suppress(Exception):
                on_progress(snapshot())


def _report(s: _Stream, detector: FrameDetector, seconds: float, interrupted: bool) -> RunReport:
    stats = s.capture.stats
    return RunReport(
        source=s.name,
        live=s.spec.source.live,
        frames_read=stats.read,
        frames_processed=s.processed,
        frames_dropped=stats.dropped + s.output_dropped,
        frames_skipped=stats.skipped,
        seconds=seconds,
        stages=s.clock.summary(),
        outputs=s.written,
        interrupted=interrupted,
        provider=detector.provider,
        config=config_record(detector),
        work=s.work.to_dict(),
        error=None if s.error is None else _one_line(s.error),
    )


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
