"""Pictures, frames and results shared by the sink tests (96x64 pictures, a dozen frames, so each
file runs in a few seconds on CPU)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from video_helpers import pattern as _pattern

from streamdet.types import Detections, Frame, FrameResult

W, H = 96, 64


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    return _pattern(i, width, height)


def frame(i: int, image: np.ndarray | None = None, pts: float | None = None) -> Frame:
    """Frame ``i`` holding ``image`` (default: ``pattern(i)``) at ``pts`` seconds."""
    return Frame(pattern(i) if image is None else image, i, pts, 0.0)


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """All frames (BGR) and their presentation times in seconds."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


def make_result(n: int) -> FrameResult:
    """A result with the first ``n`` (0-2) of two fixed boxes."""
    xyxy = np.array([[1, 2, 30, 40], [10.25, 5, 90, 60]], np.float32)[:n]
    return FrameResult(
        detections=Detections(
            xyxy=xyxy,
            confidence=np.array([0.9, 0.31234567], np.float32)[:n],
            class_id=np.array([0, 1], np.int64)[:n],
        ),
        heatmaps=np.zeros((2, 2, 3), np.float32),
        prompts=("a cat", "a dog"),
        frame_shape=(H, W),
        patch=32,
    )
