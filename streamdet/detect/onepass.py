"""The one-pass ``dense`` method's geometry: how a frame becomes the frame tower's input.

The frame is cut into square cells of ``token_px`` frame pixels, one per patch token (padded at
the right and bottom with the model's mean colour, which is zero after normalisation, as windows
hanging over the edge are); the padded frame is resized so that each cell becomes one model patch
(``patch`` pixels), and goes through the frame tower once (``streamdet.clip.frame_tower``). The
tokens' heatmaps then have cells of ``token_px`` pixels, like the windows method's cell heatmaps,
so boxes, verification and drawing work on them unchanged.

``token_px`` is what one token covers inside a main window (``patch * window`` frame pixels
seen as ``image_size`` model pixels), so that the tokens see objects at the scale the windows show
them to the model, times the ``token_scale`` setting (coarser tokens: fewer of them, faster).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from streamdet.config import GridConfig


def token_px(grid: GridConfig, image_size: int, model_patch: int, longer: int = 0) -> int:
    """Frame pixels per token: what a token covers in the windows method's main window
    (``patch * window`` frame pixels seen as ``image_size`` model pixels), times
    ``grid.token_scale``, times ``longer / grid.max_side`` for a frame whose longer side
    (``longer``) is over ``max_side`` (0: no limit).

    Coarser tokens over a larger frame are that frame resized to ``max_side`` and seen at the
    token size: the tower's input is the same size (``FrameGrid.pixels`` resizes each token's
    pixels to one model patch), but every box and heatmap cell stays in the frame's own pixels.
    Why: the one pass's cost grows with the frame's area (attention with it squared), and with
    the built-in model frames past 640x360 at 16-pixel tokens, whose objects span more tokens
    than any it was trained or tuned on, did no better: the training generator's lost AP50 and
    drew more false boxes, the held-out one's tied at 1280x720 and lost at 1920x1080
    (docs/benchmarks.md, "Other frame sizes")."""
    scale = grid.token_scale
    if grid.max_side and longer > grid.max_side:
        scale *= longer / grid.max_side
    return max(1, round(scale * grid.patch * grid.window * model_patch / image_size))


@dataclass(frozen=True)
class FrameGrid:
    """A frame of ``frame_h`` x ``frame_w`` pixels as ``rows`` x ``cols`` tokens of
    ``token_px`` frame pixels, fed to the tower as ``model_patch`` pixels each."""

    frame_h: int
    frame_w: int
    token_px: int
    model_patch: int

    @property
    def rows(self) -> int:
        return math.ceil(self.frame_h / self.token_px)

    @property
    def cols(self) -> int:
        return math.ceil(self.frame_w / self.token_px)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(height, width) of the tower's input in pixels."""
        return self.rows * self.model_patch, self.cols * self.model_patch

    def pixels(self, frame: np.ndarray, fill: tuple[float, float, float]) -> np.ndarray:
        """The tower's input: ``frame`` (H, W, 3) uint8 BGR padded to whole cells with ``fill``
        and resized to ``input_shape``, float32 0..255."""
        pad_h = self.rows * self.token_px - self.frame_h
        pad_w = self.cols * self.token_px - self.frame_w
        if pad_h or pad_w:
            colour = tuple(round(c) for c in fill)
            frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=colour)
        height, width = self.input_shape
        if (height, width) != frame.shape[:2]:
            shrink = height < frame.shape[0]
            frame = cv2.resize(
                frame,
                (width, height),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
            )
        return frame.astype(np.float32)
