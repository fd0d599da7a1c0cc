"""Embedding sampled frames for the index: the whole frame, and a coarse grid of windows.

The whole frame (letterboxed into the model's square with its mean colour, so nothing at the
edges is cut) finds what fills a frame; the windows find what is small in it. The window grid is
the detector's own (``streamdet.detect.windows``) with cells sized to the frame: the shorter side
is ``IndexConfig.cells`` cells, windows are ``IndexConfig.window`` cells and step one cell. With
the defaults (4 cells, windows of 2) a window is half the shorter side and neighbours overlap by
half, so every object up to about half the shorter side lies mostly inside some window: 21
windows on a 640x360 frame, 22 rows with the whole frame. The detector's grid for the built-in
model would be about 200 windows per frame, ten times the embedding work and index size, for
finding *when* something appears rather than outlining it (docs/benchmarks.md measures the
recall of this grid against a finer one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from streamdet.config import GridConfig, IndexConfig
from streamdet.detect.model import LoadedModel
from streamdet.detect.occlusion import letterbox_square
from streamdet.detect.windows import WindowGrid, crop_windows


@lru_cache(maxsize=16)
def index_grid(height: int, width: int, cells: int, window: int) -> WindowGrid:
    """The index's window grid for frames of this size (cached: a video's frames share it)."""
    patch = max(1, math.ceil(min(height, width) / cells))
    return WindowGrid.build(height, width, GridConfig(patch=patch, window=window, stride=1))


class FrameEmbedder:
    """Rows of sampled frames: boxes and L2-normalised embeddings, whole frame first."""

    def __init__(self, model: LoadedModel, config: IndexConfig) -> None:
        self.model = model
        self.config = config

    def boxes(self, height: int, width: int) -> np.ndarray:
        """(1 + N, 4) float32 boxes of a frame's rows: the whole frame, then every window."""
        grid = index_grid(height, width, self.config.cells, self.config.window)
        whole = np.array([[0, 0, width, height]], np.float32)
        return np.concatenate([whole, grid.window_boxes()])

    def pixels(self, frame: np.ndarray) -> np.ndarray:
        """(1 + N, S, S, 3) float32 model inputs of one HxWx3 uint8 BGR frame's rows."""
        h, w = frame.shape[:2]
        size, fill = self.model.image_size, self.model.fill
        grid = index_grid(h, w, self.config.cells, self.config.window)
        whole = letterbox_square(frame, size, fill)[0]
        return np.concatenate([whole[None], crop_windows(frame, grid, size, fill)])

    def embed(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per frame, its rows' (1 + N, D) embeddings; all frames go through the tower as one
        batch (split by the backend's ``max_batch``)."""
        if not frames:
            return []
        batches = [self.pixels(f) for f in frames]
        emb = self.model.embed_images(np.concatenate(batches))
        ends = np.cumsum([len(b) for b in batches])[:-1]
        return np.split(emb, ends)
