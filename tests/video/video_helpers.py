"""Test pictures shared by the video tests."""

from __future__ import annotations

import numpy as np


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """A smooth BGR pattern that moves with i (smooth, so H.264 keeps it within a few levels)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    b = 128 + 60 * np.sin(2 * np.pi * (x + 4 * i) / max(width, 2))
    g = 128 + 60 * np.cos(2 * np.pi * (y + 2 * i) / max(height, 2))
    r = 60 + 120 * (x + y) / max(width + height, 1)
    return np.stack([b, g, r], axis=-1).round().astype(np.uint8)
