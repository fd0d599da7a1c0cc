"""Frames made by a function rather than read from a file: the demo's street clip, test clips.

A generated source behaves like a video file to the pipeline (not live: no frame is dropped), so
``streamdet demo`` runs through the same capture thread, runner and sinks as ``streamdet run``.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from streamdet.detect.frames import as_bgr
from streamdet.errors import ConfigError
from streamdet.sources.base import Source
from streamdet.types import Frame


class GeneratedSource(Source):
    """A non-live source over the pictures ``make()`` returns (HxWx3 BGR; gray and BGRA are
    converted), at ``fps`` frames per second: frame i has ``pts`` i / fps.

    ``make`` is called once per ``frames()`` call, so reading again starts over. ``frame_count``
    is how many pictures to take (the read ends there, or earlier if ``make()`` runs out);
    ``None`` takes all it gives. ``size`` ((width, height)) is only shown, when known.
    """

    def __init__(
        self,
        make: Callable[[], Iterable[np.ndarray]],
        *,
        fps: float,
        frame_count: int | None = None,
        name: str = "generated",
        size: tuple[int, int] | None = None,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)):
            raise ConfigError(f"fps must be a number, but got {type(fps).__name__}")
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be a positive finite number, but got {fps}")
        if frame_count is not None and (
            isinstance(frame_count, bool) or not isinstance(frame_count, int) or frame_count < 0
        ):
            raise ConfigError(f"frame_count must be an int of 0 or more, but got {frame_count!r}")
        super().__init__(name, live=False, fps=float(fps), frame_count=frame_count, size=size)
        self._make = make

    def _release_unused(self) -> None:
        pass  # nothing is opened before frames()

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self._check_open()
        assert self.fps is not None
        pictures = iter(self._make())
        if self.frame_count is not None:
            pictures = itertools.islice(pictures, self.frame_count)
        index = 0
        while not self._should_stop(stop):  # checked before making the next picture
            image = next(pictures, None)
            if image is None:
                return
            bgr = np.ascontiguousarray(as_bgr(image))
            yield Frame(bgr, index, index / self.fps, time.monotonic())
            index += 1
