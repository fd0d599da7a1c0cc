"""A constant-velocity Kalman filter over one box, as in SORT and ByteTrack (numpy only).

The state is the box centre, width and height and their velocities per frame:
``[cx, cy, w, h, vcx, vcy, vw, vh]``; a measurement is ``[cx, cy, w, h]``. Like ByteTrack (and
BoT-SORT, which tracks width rather than aspect ratio), every noise is proportional to the box's
size, so one filter suits a 20-pixel box and a 400-pixel one alike: the position is trusted to
about 1/20 of the box size and the velocity to about 1/160 of it per frame.
"""

from __future__ import annotations

import numpy as np

#: Standard deviations as fractions of the box size (ByteTrack's values).
POSITION_NOISE = 1.0 / 20
VELOCITY_NOISE = 1.0 / 160

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)  # x' = x + v (one frame)
_H = np.eye(4, 8)


def to_cxcywh(box: np.ndarray) -> np.ndarray:
    """xyxy -> centre x, centre y, width, height (float64)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def to_xyxy(box: np.ndarray) -> np.ndarray:
    """centre x, centre y, width, height -> xyxy (float64)."""
    cx, cy, w, h = (float(v) for v in box[:4])
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _size_scales(w: float, h: float) -> np.ndarray:
    return np.array([w, h, w, h], np.float64)


class BoxKalman:
    """One box's constant-velocity filter: ``predict`` once per frame, ``update`` when a box of
    it was found. ``box`` is the current estimate (xyxy), ``velocity`` its change per frame
    (centre and size, cxcywh order)."""

    def __init__(self, box: np.ndarray) -> None:
        z = to_cxcywh(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        s = _size_scales(max(z[2], 1.0), max(z[3], 1.0))
        std = np.concatenate([2 * POSITION_NOISE * s, 10 * VELOCITY_NOISE * s])
        self.covariance = np.diag(std**2)

    @property
    def box(self) -> np.ndarray:
        return to_xyxy(self.mean)

    @property
    def velocity(self) -> np.ndarray:
        return self.mean[4:].copy()

    def predict(self) -> None:
        """Move the estimate one frame ahead (and grow its uncertainty)."""
        s = _size_scales(max(self.mean[2], 1.0), max(self.mean[3], 1.0))
        q = np.diag(np.concatenate([POSITION_NOISE * s, VELOCITY_NOISE * s]) ** 2)
        self.mean = _F @ self.mean
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)  # a box never shrinks to nothing
        self.covariance = _F @ self.covariance @ _F.T + q

    def update(self, box: np.ndarray) -> None:
        """Correct the estimate with a box found in this frame."""
        z = to_cxcywh(box)
        r = np.diag((POSITION_NOISE * _size_scales(max(z[2], 1.0), max(z[3], 1.0))) ** 2)
        s = _H @ self.covariance @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.covariance).T  # covariance @ H.T @ inv(s)
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.covariance = (np.eye(8) - gain @ _H) @ self.covariance

    def keep_size(self) -> None:
        """Stop the size from changing (for a track that was not found: its box was often
        shrinking as the object left the frame or went behind another, and would otherwise keep
        shrinking to nothing while nobody sees it; ByteTrack does the same for the height)."""
        self.mean[6:8] = 0.0

    def hold_inside(self, width: int, height: int, size: np.ndarray | None = None) -> None:
        """Keep the centre inside a width x height frame, and stop there once it reached the
        edge: an object that walked out is looked for where it left (where it comes back in,
        if it does), not somewhere along a path nobody can see. ``size`` (w, h): the object's
        size when last seen whole, which the box takes back there (its boxes shrank as the
        frame edge cut them, and the first boxes of its return are cut the same way)."""
        centre = self.mean[:2]
        inside = np.clip(centre, 0.0, [float(width), float(height)])
        if not np.array_equal(centre, inside):
            self.mean[:2] = inside
            self.mean[4:] = 0.0
            if size is not None:
                self.mean[2:4] = size
