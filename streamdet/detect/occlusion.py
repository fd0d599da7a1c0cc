"""Occlusion localisation: where does hiding part of the frame hurt the match most?

The whole frame is letterboxed into a square (padded with the model's mean colour) and resized to
the model input once. For every window of the same grid the sliding-window method uses, a copy of
that image has the window's area filled with the mean colour; all copies plus the untouched image
go through the image tower as ONE batch. A window's score per prompt is the drop of the logit when
it is hidden; cells average the drops of the windows covering them, as the window method does.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.detect.windows import WindowGrid, pad_to


def letterbox_square(
    frame: np.ndarray, size: int, fill: tuple[float, float, float]
) -> tuple[np.ndarray, float]:
    """Pad a BGR frame to a square (bottom/right) and resize it to ``size``: float32, and scale."""
    h, w = frame.shape[:2]
    side = max(h, w)
    square = pad_to(frame, side, side, fill).astype(np.float32)
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp), size / side


def occluded_batch(
    frame: np.ndarray, grid: WindowGrid, size: int, fill: tuple[float, float, float]
) -> np.ndarray:
    """(1 + N, size, size, 3) float32: the whole frame, then one copy per window hidden."""
    base, scale = letterbox_square(frame, size, fill)
    r0, c0, cells = grid.windows.T
    p = grid.patch * scale
    edges = np.arange(size) + 0.5  # output pixel centres
    # A pixel is hidden when its centre lies inside the window, in resized coordinates.
    rows = (edges[None, :] >= (r0 * p)[:, None]) & (edges[None, :] < ((r0 + cells) * p)[:, None])
    cols = (edges[None, :] >= (c0 * p)[:, None]) & (edges[None, :] < ((c0 + cells) * p)[:, None])
    hidden = rows[:, :, None] & cols[:, None, :]  # (N, size, size)
    out = np.empty((len(grid) + 1, size, size, 3), np.float32)
    out[0] = base
    out[1:] = np.where(hidden[..., None], np.asarray(fill, np.float32), base[None])
    return out


def occlusion_drops(logits: np.ndarray) -> np.ndarray:
    """(1 + N, K) logits of [whole frame, occluded copies] -> (N, K) logit drop per window."""
    return logits[:1] - logits[1:]
