"""The ``Sink`` protocol: one destination of a run's frames, and the checks sinks share."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from streamdet.errors import FrameError, FrameTypeError
from streamdet.types import Frame, FrameResult


class Sink(Protocol):
    """Where a run's frames go (MP4, JSONL, an image, a window).

    The runner renders each frame once, and only when some sink has ``needs_picture``, then
    hands the same frame, result and picture to every sink in order, so all sinks hold the same
    frames. ``close`` finalises (always called, also after an error or Ctrl-C) and says what was
    written: (path or name, frames or lines), or None when nothing was.
    """

    needs_picture: bool  # False: the renderer can be skipped for this sink

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None) -> None: ...

    def close(self) -> tuple[str, int] | None: ...


def check_frame(frame: object) -> None:
    """A one-line ``FrameTypeError`` unless ``frame`` is a :class:`Frame`."""
    if not isinstance(frame, Frame):
        raise FrameTypeError(
            f"a sink writes streamdet.types.Frame objects, but got {type(frame).__name__}"
        )


def check_pts(pts: float | None) -> float | None:
    """``pts`` as a float (None stays None); a one-line ``FrameError`` if it is not finite."""
    if pts is None:
        return None
    value = float(pts)
    if not math.isfinite(value):
        raise FrameError(f"pts must be a finite number of seconds or None, but got {pts!r}")
    return value
