"""Synthetic frame results for the tracking tests: boxes we choose, no model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamdet.types import Detections, FrameResult

SHAPE = (360, 640)


def result(
    boxes: Sequence[Sequence[float]],
    prompts: Sequence[str] = ("a car",),
    classes: Sequence[int] | None = None,
    scores: Sequence[float] | None = None,
) -> FrameResult:
    """A FrameResult with these xyxy boxes (class 0 and score 0.9 unless given)."""
    n = len(boxes)
    detections = Detections(
        xyxy=np.array(boxes, np.float32).reshape(-1, 4),
        confidence=np.array([0.9] * n if scores is None else scores, np.float32),
        class_id=np.array([0] * n if classes is None else classes, np.int64),
    )
    heat = np.zeros((len(prompts), 1, 1), np.float32)
    return FrameResult(detections, heat, tuple(prompts), SHAPE, 32)


def box_at(cx: float, cy: float, w: float = 40.0, h: float = 40.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def crossing(frames: int = 40, speed: float = 12.0) -> list[list[list[float]]]:
    """Two boxes of one prompt crossing head on (overlapping as they pass), given in a different
    order every other frame; object 0 starts left, object 1 right."""
    out = []
    for t in range(frames):
        a = box_at(100 + speed * t, 160)
        b = box_at(100 + speed * (frames - 1) - speed * t, 180)
        out.append([a, b] if t % 2 else [b, a])
    return out


def id_of(tracked: FrameResult, box: Sequence[float]) -> int | None:
    """The track id of the output box nearest ``box`` (centre distance < 20 px), or None."""
    d = tracked.detections
    if not len(d):
        return None
    centres = (d.xyxy[:, :2] + d.xyxy[:, 2:]) / 2
    want = (np.asarray(box[:2]) + np.asarray(box[2:])) / 2
    dist = np.linalg.norm(centres - want, axis=1)
    best = int(np.argmin(dist))
    return int(d.track_id[best]) if dist[best] < 20 else None
