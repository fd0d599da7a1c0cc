"""Stand-ins for a source, a detector and a sink, so the pipeline's behaviour (ordering,
dropping, stopping, errors) is tested in milliseconds without a model or a codec."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from streamdet.types import Detections, Frame, FrameResult, Timings


class FakeSource:
    """``n`` frames (None: endless) of 32x48 pixels; pixel [0, 0, 0] holds the index mod 256.

    fps: frames per second produced (live sources pace themselves like a camera; 0 = as fast as
    possible). fail_at: raise ``error`` instead of producing this frame.
    """

    def __init__(
        self,
        n: int | None,
        *,
        live: bool = False,
        fps: float = 0.0,
        fail_at: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.name = "fake"
        self.live = live
        self.fps = fps or None
        self.frame_count = None if live else n
        self.size = (48, 32)
        self.n = n
        self.pace = fps
        self.fail_at = fail_at
        self.error = error or RuntimeError("camera unplugged")
        self.produced: list[float] = []  # captured_at of every frame produced
        self.closed = False

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        i = 0
        start = time.monotonic()
        while (self.n is None or i < self.n) and not stop.is_set():
            if self.fail_at is not None and i == self.fail_at:
                raise self.error
            if self.pace:
                delay = start + i / self.pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            image = np.zeros((32, 48, 3), np.uint8)
            image[0, 0, 0] = i % 256
            now = time.monotonic()
            self.produced.append(now)
            yield Frame(image=image, index=i, pts=i / (self.pace or 25.0), captured_at=now)
            i += 1

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeDetector:
    """Sleeps ``delay`` seconds per frame and reports no boxes; records what it saw."""

    provider = "FakeProvider"

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay = delay
        self.fail_at = fail_at
        self.prompts: tuple[str, ...] = ("a thing",)
        self.seen: list[int] = []  # frame markers, in order
        self.prompt_changes: list[tuple[str, ...]] = []
        self.thresholds: dict[str, float] = {}

    def set_prompts(self, prompts, thresholds=None) -> None:
        self.prompts = tuple(prompts)
        self.prompt_changes.append(self.prompts)
        self.thresholds.update(thresholds or {})

    def detect(self, frame: np.ndarray) -> FrameResult:
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise ZeroDivisionError("boom")
        self.seen.append(int(frame[0, 0, 0]))
        if self.delay:
            time.sleep(self.delay)
        heat = np.zeros((len(self.prompts), 1, 2), np.float32)
        return FrameResult(
            Detections.empty(), heat, self.prompts, frame.shape[:2], 32, Timings(encode_ms=1.0)
        )


class ListSink:
    """Keeps (frame index, prompts, picture shape) of every frame written."""

    needs_picture = True

    def __init__(self, fail_at: int | None = None, on_write=None) -> None:
        self.items: list[tuple[int, tuple[str, ...]]] = []
        self.closed = False
        self.fail_at = fail_at
        self.on_write = on_write

    def write(self, frame, result, picture) -> None:
        if self.fail_at is not None and len(self.items) == self.fail_at:
            raise OSError(28, "No space left on device")
        assert picture is not None and picture.shape == frame.image.shape
        self.items.append((frame.index, result.prompts))
        if self.on_write is not None:
            self.on_write(len(self.items))

    def close(self):
        self.closed = True
        return ("list", len(self.items)) if self.items else None
