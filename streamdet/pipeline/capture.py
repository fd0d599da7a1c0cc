"""The capture stage: a thread that reads a source into a bounded queue.

The queue has two policies, chosen by the source:

* **files** (``live=False``): a full queue makes the reader wait, so no frame is ever lost and
  decoding runs at most ``maxsize`` frames ahead of inference;
* **live sources** (cameras, network streams): a full queue drops its *oldest* frame to make room
  for the new one and counts the drop, so the frame handed to inference is always the newest one
  and the output never falls behind real time, however slow inference is. (The opposite policy,
  blocking the reader, is how RTSP latency creeps up to tens of seconds in other tools: the
  network buffers fill while the reader waits.)

``--max-fps`` samples a live source before the queue: frames arriving sooner than 1/max_fps
after the last kept one are skipped (counted apart from drops).

Every wait is bounded: ``put`` and ``get`` poll the stop event, so a stop (Ctrl-C, an error in
another stage) is seen within ``POLL_S``. An error in the reader is kept and re-raised by the
consumer (``FrameQueue.get`` raises it after the frames already queued), never lost in the thread.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamdet.sources import Source
from streamdet.types import Frame

#: How often blocked queue operations look at the stop event, in seconds.
POLL_S = 0.05


class EndOfStream(Exception):
    """Raised by ``FrameQueue.get`` once the reader finished and the queue is empty."""


@dataclass(frozen=True)
class CaptureStats:
    """What the capture stage saw: frames read, dropped (live, queue full) and sampled out."""

    read: int
    dropped: int
    skipped: int


class FrameQueue:
    """A bounded frame queue that either waits (files) or drops the oldest frame (live)."""

    def __init__(self, maxsize: int, *, drop_oldest: bool) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, but got {maxsize}")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        self.dropped = 0
        self.failed = False  # the reader's error was raised by get()

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Queue ``frame``; False if ``stop`` was set first (the frame is then not queued)."""
        with self._cond:
            if self.drop_oldest:
                if len(self._items) >= self.maxsize:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.maxsize:
                    if stop.is_set():
                        return False
                    self._cond.wait(POLL_S)
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def close(self, error: BaseException | None = None) -> None:
        """No more frames; ``error`` (if any) is raised by ``get`` after the queued frames."""
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    def get(self, stop: threading.Event, timeout: float | None = None) -> Frame | None:
        """The next frame, or None if ``stop`` was set or ``timeout`` passed while waiting.

        Raises ``EndOfStream`` after the last frame, or the reader's error.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    if self._error is not None:
                        self.failed = True
                        raise self._error
                    raise EndOfStream
                if stop.is_set():
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self._cond.wait(POLL_S)
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class Capture:
    """Reads ``source`` on its own thread into a ``FrameQueue`` until the end or ``stop``.

    queue_size: frames buffered between capture and inference. For live sources keep it small
    (1-2): every queued frame is latency. For files a few frames let decoding run ahead.
    max_fps: keep at most this many frames per second of a live source (by arrival time).
    clock: time source for sampling (tests pass a fake one).
    """

    def __init__(
        self,
        source: Source,
        stop: threading.Event,
        *,
        queue_size: int | None = None,
        max_fps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_fps is not None and not max_fps > 0:
            raise ValueError(f"max_fps must be positive, but got {max_fps}")
        self.source = source
        self.stop = stop
        size = queue_size if queue_size is not None else (1 if source.live else 8)
        self.queue = FrameQueue(size, drop_oldest=source.live)
        self.max_fps = max_fps
        self._clock = clock
        self._read = 0
        self._skipped = 0
        self._thread = threading.Thread(target=self._run, name="streamdet-capture", daemon=True)

    def start(self) -> Capture:
        self._thread.start()
        return self

    def _run(self) -> None:
        min_gap = 1.0 / self.max_fps if self.max_fps else 0.0
        last_kept: float | None = None
        error: BaseException | None = None
        try:
            for frame in self.source.frames(self.stop):
                self._read += 1
                if min_gap:
                    now = self._clock()
                    # A little slack so that a 30 FPS camera sampled at 15 keeps every other frame.
                    if last_kept is not None and now - last_kept < min_gap * 0.95:
                        self._skipped += 1
                        continue
                    last_kept = now
                if not self.queue.put(frame, self.stop):
                    break
                if self.stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there with its traceback
            error = exc
        finally:
            self.queue.close(error)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if it ended."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stats(self) -> CaptureStats:
        return CaptureStats(read=self._read, dropped=self.queue.dropped, skipped=self._skipped)
