"""Fine heatmaps from the patch tokens of every window: where in a window the prompt is.

A window's embedding says whether the prompt is in the window; it cannot say where. With cells of
32 pixels and windows of 4 cells, a box made of cells is off by up to a cell on each side, and an
object much smaller than the window lights up every cell of every window that holds it. The image
graph also returns one embedding per patch token (``streamdet.clip.towers``: the last layer re-run
with key-key attention), so each window gives a g x g map of how well each of its patches matches
the prompt.

The fine heatmap combines the two: a fine cell's score is the largest, over the windows that cover
it, of (the window's probability) x (the probability of the window's patch over that cell). The
window probability keeps the detector's calibration (a frame without the object stays near zero,
whatever single patches think), and the patch probability puts the score on the object's own
pixels. Taking the largest rather than the mean means that a window cut through the object (and so
unsure) does not pull the object's cells down, while cells beside the object stay low in every
window because their own patches show background.

With several window sizes, a small window sees little context: a house's roof alone is "a
triangle". So a window's probability is multiplied by the highest probability among the windows of
the next larger size that contain it (``context_gate``): a small window counts only as far as a
larger view around it agrees. On the tuning frames this cut false boxes at a small cost in AP50
(docs/benchmarks.md).

Fine cells are ``patch / factor`` pixels, ``factor`` (a divisor of ``patch``) chosen so that one
patch of the smallest window is about one fine cell; a window's g x g map is resampled onto its
fine cells by area overlap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from streamdet.detect.windows import WindowGrid


def fine_factor(token_side: int, window_sizes: tuple[int, ...], patch: int) -> int:
    """Fine cells per grid cell: about one fine cell per patch token of the smallest window, and
    a divisor of ``patch`` so that fine cells are whole pixels."""
    wanted = max(1, round(token_side / min(window_sizes)))
    return max(d for d in range(1, wanted + 1) if patch % d == 0)


def area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) weights that resample ``src`` equal bins onto ``dst`` equal bins of one span by
    area overlap (each row sums to 1): repetition when ``dst`` is a multiple of ``src``."""
    edges_src = np.linspace(0.0, 1.0, src + 1)
    edges_dst = np.linspace(0.0, 1.0, dst + 1)
    lo = np.maximum(edges_dst[:-1, None], edges_src[None, :-1])
    hi = np.minimum(edges_dst[1:, None], edges_src[None, 1:])
    overlap = np.clip(hi - lo, 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class DenseGrid:
    """The fine cells of a window grid for a model with ``token_side`` x ``token_side`` patches."""

    grid: WindowGrid
    token_side: int
    factor: int

    @classmethod
    def build(cls, grid: WindowGrid, token_side: int) -> DenseGrid:
        sizes = tuple(int(s) for s in np.unique(grid.windows[:, 2]))
        return cls(grid, token_side, fine_factor(token_side, sizes, grid.patch))

    @property
    def patch(self) -> int:
        """Fine cell size in pixels."""
        return self.grid.patch // self.factor

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of fine cells covering the frame."""
        return self.grid.rows * self.factor, self.grid.cols * self.factor

    @cached_property
    def _parents(self) -> tuple[np.ndarray, np.ndarray]:
        """For every window with a larger size in the grid: its index and the indices of the
        windows of the next larger size that contain it, padded with -1: ((m,), (m, p))."""
        windows = self.grid.windows
        sizes = sorted(int(s) for s in np.unique(windows[:, 2]))
        children, parents = [], []
        for small, large in itertools.pairwise(sizes):
            kids = np.flatnonzero(windows[:, 2] == small)
            bigs = np.flatnonzero(windows[:, 2] == large)
            r, c = windows[kids, 0][:, None], windows[kids, 1][:, None]
            rb, cb = windows[bigs, 0][None, :], windows[bigs, 1][None, :]
            inside = (rb <= r) & (rb + large >= r + small) & (cb <= c) & (cb + large >= c + small)
            for i, kid in enumerate(kids.tolist()):
                children.append(kid)
                parents.append(bigs[inside[i]])
        width = max((len(p) for p in parents), default=0)
        table = np.full((len(parents), width), -1, np.int64)
        for i, p in enumerate(parents):
            table[i, : len(p)] = p
        return np.asarray(children, np.int64), table

    def context_gate(self, window_probs: np.ndarray) -> np.ndarray:
        """(N, K) window probabilities with each smaller window's multiplied by the largest of
        the next larger windows containing it (unchanged where none does, or one size only)."""
        children, table = self._parents
        if len(children) == 0 or table.shape[1] == 0:
            return window_probs
        padded = np.concatenate([window_probs, np.zeros((1, window_probs.shape[1]))], axis=0)
        gate = padded[table].max(axis=1)  # (m, K); -1 picks the zero row
        has_parent = (table >= 0).any(axis=1)
        out = window_probs.copy()
        out[children[has_parent]] *= gate[has_parent].astype(out.dtype)
        return out

    @cached_property
    def _weights(self) -> dict[int, np.ndarray]:
        sizes = np.unique(self.grid.windows[:, 2])
        return {int(s): area_weights(self.token_side, int(s) * self.factor) for s in sizes}

    def heatmaps(
        self, windows: np.ndarray, window_probs: np.ndarray, token_probs: np.ndarray, prompts: int
    ) -> np.ndarray:
        """Fine heatmaps (prompts, rows, cols) from some of the grid's windows.

        windows: (n,) indices into ``grid.windows``; window_probs: (n, K) their probabilities;
        token_probs: (n, g, g, K) their patches' probabilities. Each fine cell takes the max over
        the given windows that cover it of window x patch probability (0 where none does): the
        caller leaves out windows too unlikely to matter, which is most of the speed.
        """
        f = self.factor
        rows, cols = self.shape
        pad = int(self.grid.windows[:, 2].max()) * f  # windows may hang over the frame edge
        out = np.zeros((prompts, rows + 2 * pad, cols + 2 * pad), np.float32)
        for i, n in enumerate(windows.tolist()):
            r0, c0, size = (int(v) for v in self.grid.windows[n])
            w = self._weights[size]  # (size * f, g)
            local = np.moveaxis(token_probs[i], -1, 0) * window_probs[i, :, None, None]  # (K, g, g)
            fine = w @ local @ w.T  # (K, size * f, size * f)
            y, x = r0 * f + pad, c0 * f + pad
            view = out[:, y : y + size * f, x : x + size * f]
            np.maximum(view, fine, out=view)
        return out[:, pad : pad + rows, pad : pad + cols]
