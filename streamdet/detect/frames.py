"""Checking frames at the API boundary: bad input fails with a clear message, not deep in numpy."""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.errors import FrameError, FrameTypeError


def as_bgr(frame: object) -> np.ndarray:
    """Return ``frame`` as an HxWx3 uint8 BGR array.

    Accepted: HxWx3 uint8 BGR (what OpenCV and PyAV's ``to_ndarray(format="bgr24")`` give), HxW or
    HxWx1 grayscale (expanded to three channels) and HxWx4 BGRA (alpha dropped). Anything else
    raises ``FrameTypeError`` (not an array) or ``FrameError`` (wrong dtype, shape, or empty).
    """
    if not isinstance(frame, np.ndarray):
        raise FrameTypeError(
            f"a frame must be a numpy array (HxWx3 uint8 BGR), but got {type(frame).__name__}"
        )
    if frame.dtype != np.uint8:
        raise FrameError(
            f"a frame must have dtype uint8 (0..255), but got {frame.dtype}; "
            "convert it, e.g. (x * 255).clip(0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        raise FrameError(
            f"a frame must have shape (H, W, 3) (or (H, W) gray, (H, W, 4) BGRA), "
            f"but got {frame.shape}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"the frame is empty: shape {frame.shape}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame
