"""The sliding-window grid over a frame, and cutting all its windows out in one vectorised step.

The frame is divided into square cells of ``patch`` pixels. A window is ``w x w`` cells and slides
over the cell grid by ``stride`` cells; several window sizes ("scales") may be combined. Unlike the
original write-up, the grid covers the WHOLE frame: the last row/column of cells may stick out of
the frame, and the frame is padded with the model's mean colour (zero after normalisation) so that
every window is a full square. A frame smaller than one window is padded the same way.

Cropping: instead of resizing each window separately (one resize call per window, slow for the
hundred-odd windows of a frame), the padded frame is resized ONCE by ``S / (w * patch)`` and the
windows are sliced out of it. When the window is downscaled and ``S`` is divisible by ``w``, every
window boundary falls on an output pixel boundary, so area resampling of the whole frame gives
exactly the pixels that area resampling of each window would give (tested). Otherwise window
origins are rounded to the nearest output pixel (at most half a pixel off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from streamdet.config import GridConfig
from streamdet.errors import ConfigError

#: Refuse settings that would make more windows than this per frame (a typo like --patch 1).
MAX_WINDOWS_PER_FRAME = 20_000


def _starts(cells: int, size: int, stride: int, overhang: bool = False) -> list[int]:
    """Window start cells along one axis, always including one that reaches the last cell.

    With ``overhang`` windows also hang over both frame edges by up to ``size - 1`` cells, so every
    cell is seen by as many windows as any other, and a cell at the edge has windows that show it
    without its inward neighbours (otherwise an object near the edge lights up every cell between
    it and the edge).
    """
    if overhang:
        first, last = -(size - 1), cells - 1
    else:
        first, last = 0, max(0, cells - size)
    starts = list(range(first, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


@dataclass(frozen=True)
class WindowGrid:
    """All windows of one frame size.

    windows: (N, 3) int64 rows of (first cell row, first cell column, size in cells).
    rows, cols: cells covering the frame (the last ones may be cut by the frame edge).
    """

    frame_h: int
    frame_w: int
    patch: int
    rows: int
    cols: int
    windows: np.ndarray

    @classmethod
    def build(cls, frame_h: int, frame_w: int, spec: GridConfig) -> WindowGrid:
        rows = math.ceil(frame_h / spec.patch)
        cols = math.ceil(frame_w / spec.patch)
        parts = []
        for size in spec.sizes:
            r0 = _starts(rows, size, spec.stride, spec.overhang)
            c0 = _starts(cols, size, spec.stride, spec.overhang)
            rr, cc = np.meshgrid(r0, c0, indexing="ij")
            parts.append(np.stack([rr.ravel(), cc.ravel(), np.full(rr.size, size)], axis=1))
        windows = np.concatenate(parts).astype(np.int64)
        if len(windows) > MAX_WINDOWS_PER_FRAME:
            raise ConfigError(
                f"patch {spec.patch}, window {spec.window}, stride {spec.stride} make "
                f"{len(windows)} windows on a {frame_w}x{frame_h} frame (limit "
                f"{MAX_WINDOWS_PER_FRAME}); use a larger patch or stride"
            )
        return cls(frame_h, frame_w, spec.patch, rows, cols, windows)

    def __len__(self) -> int:
        return len(self.windows)

    @cached_property
    def coverage(self) -> np.ndarray:
        """(N, rows*cols) float32: 1 where window n covers cell (r, c) inside the grid."""
        n = len(self.windows)
        cov = np.zeros((n, self.rows, self.cols), np.float32)
        r = np.arange(self.rows)
        c = np.arange(self.cols)
        r0, c0, size = self.windows.T
        in_r = (r[None, :] >= r0[:, None]) & (r[None, :] < (r0 + size)[:, None])  # (N, rows)
        in_c = (c[None, :] >= c0[:, None]) & (c[None, :] < (c0 + size)[:, None])  # (N, cols)
        cov[:] = in_r[:, :, None] & in_c[:, None, :]
        return cov.reshape(n, -1)

    @cached_property
    def visits(self) -> np.ndarray:
        """(rows*cols,) float32 number of windows covering each cell (>= 1 everywhere)."""
        return self.coverage.sum(axis=0)

    def cell_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean over the covering windows, per cell: (N, K) window values -> (K, rows, cols)."""
        sums = values.T.astype(np.float32) @ self.coverage  # (K, rows*cols)
        return (sums / self.visits).reshape(-1, self.rows, self.cols)

    @cached_property
    def _corners(self) -> np.ndarray:
        r0, c0, size = self.windows.T.astype(np.float32)
        p = float(self.patch)
        corners = np.stack([c0 * p, r0 * p, (c0 + size) * p, (r0 + size) * p], axis=1)
        corners.flags.writeable = False  # shared by every frame of this size
        return corners

    def corners(self) -> np.ndarray:
        """(N, 4) float32 pixel corners (x1, y1, x2, y2) of every window, not clipped: windows
        may hang over the frame edges (what the device cropper cuts). Computed once per grid
        (the device path asks for them every frame) and read-only."""
        return self._corners

    def window_boxes(self) -> np.ndarray:
        """(N, 4) float32 pixel boxes (x1, y1, x2, y2) of every window, clipped to the frame."""
        boxes = self.corners().copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, self.frame_w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, self.frame_h)
        return boxes


def pad_to(
    frame: np.ndarray,
    height: int,
    width: int,
    fill: tuple[float, float, float],
    *,
    top: int = 0,
    left: int = 0,
) -> np.ndarray:
    """Place a frame at (top, left) of a (height, width) canvas of a constant BGR colour."""
    h, w = frame.shape[:2]
    if h == height and w == width:
        return frame
    value = tuple(float(v) for v in fill)
    return cv2.copyMakeBorder(
        frame, top, height - h - top, left, width - w - left, cv2.BORDER_CONSTANT, value=value
    )


def _copy_squares(
    image: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int, out: np.ndarray, rows: np.ndarray
) -> None:
    """Copy the (size x size) squares with top-left corners (ys[i], xs[i]) of an HxWx3 image into
    ``out[rows[i]]``.

    One slice copy per window, straight into the output: a fancy-index gather of a strided view
    of all squares builds a temporary as large as the output and then copies it again, which was
    slower.
    """
    for row, y, x in zip(rows.tolist(), ys.tolist(), xs.tolist(), strict=True):
        out[row] = image[y : y + size, x : x + size]


def crop_windows(
    frame: np.ndarray,
    grid: WindowGrid,
    size: int,
    fill: tuple[float, float, float],
    only: np.ndarray | None = None,
) -> np.ndarray:
    """Cut every window of ``grid`` (or the windows ``only`` lists) out of a BGR frame, resized
    to ``size`` x ``size``.

    only: ascending indices into ``grid.windows`` (temporal reuse computes a few); their pixels
    are exactly those cutting every window gives (the resize is laid out for the whole grid).
    Returns (N or len(only), size, size, 3) float32 BGR in 0..255, the model's input layout, in
    the order of ``grid.windows``.
    """
    chosen = np.arange(len(grid)) if only is None else np.asarray(only, np.int64)
    out = np.empty((len(chosen), size, size, 3), np.float32)
    if len(chosen) == 0:
        return out
    p = grid.patch
    for cells in np.unique(grid.windows[chosen, 2]):  # one pass per window scale, not per window
        idx = np.flatnonzero(grid.windows[:, 2] == cells)
        r0, c0 = grid.windows[idx, 0], grid.windows[idx, 1]
        top, left = max(0, -int(r0.min())), max(0, -int(c0.min()))  # cells of padding
        r0, c0 = r0 + top, c0 + left
        need_r = int((r0 + cells).max())
        need_c = int((c0 + cells).max())
        padded = pad_to(frame, need_r * p, need_c * p, fill, top=top * p, left=left * p)
        padded = padded.astype(np.float32)
        win_px = int(cells) * p
        interp = cv2.INTER_AREA if win_px >= size else cv2.INTER_LINEAR
        if size % cells == 0:
            cell_out = size // int(cells)  # each cell maps to a whole number of output pixels
            resized = cv2.resize(
                padded, (need_c * cell_out, need_r * cell_out), interpolation=interp
            )
            ys, xs = r0 * cell_out, c0 * cell_out
        else:
            scale = size / win_px
            out_h = max(size, round(need_r * p * scale))
            out_w = max(size, round(need_c * p * scale))
            resized = cv2.resize(padded, (out_w, out_h), interpolation=interp)
            ys = np.minimum(np.rint(r0 * p * scale).astype(np.int64), out_h - size)
            xs = np.minimum(np.rint(c0 * p * scale).astype(np.int64), out_w - size)
        # the windows of this scale that were asked for, and their rows in ``out``
        rows = np.flatnonzero(grid.windows[chosen, 2] == cells)
        pick = np.searchsorted(idx, chosen[rows])
        _copy_squares(resized, ys[pick], xs[pick], size, out, rows)
    return out
