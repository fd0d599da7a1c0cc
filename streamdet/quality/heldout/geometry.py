"""Primitive regions of the held-out generator, tested point by point in unit coordinates.

Each primitive answers ``contains(x, y)`` for arrays of points (x right, y down) and its
``bounds``; :mod:`streamdet.quality.heldout.raster` samples them several times per pixel. This is
our own geometry (a crossing-number polygon test, ellipses, round-capped segments, annuli), not a
drawing library: the training generator fills polygons and circles with OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Bounds = tuple[float, float, float, float]  # x1, y1, x2, y2


class Primitive(Protocol):
    """A region of the plane in unit coordinates."""

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def bounds(self) -> Bounds: ...

    def moved(self, dx: float, dy: float, scale: float) -> Primitive: ...


@dataclass(frozen=True)
class Polygon:
    """A simple polygon given by its corners, in order (either direction)."""

    points: tuple[tuple[float, float], ...]

    @classmethod
    def of(cls, points: np.ndarray | list) -> Polygon:
        return cls(tuple((float(x), float(y)) for x, y in np.asarray(points, np.float64)))

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        inside = np.zeros(np.shape(x), bool)
        pts = self.points
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
            if y1 == y2:
                continue
            crosses = (y1 > y) != (y2 > y)
            at = x1 + (y - y1) * ((x2 - x1) / (y2 - y1))
            inside ^= crosses & (x < at)
        return inside

    def bounds(self) -> Bounds:
        xs, ys = zip(*self.points, strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    def moved(self, dx: float, dy: float, scale: float) -> Polygon:
        return Polygon(tuple(((x + dx) * scale, (y + dy) * scale) for x, y in self.points))


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned ellipse (a disc when ``rx == ry``)."""

    cx: float
    cy: float
    rx: float
    ry: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ((x - self.cx) / self.rx) ** 2 + ((y - self.cy) / self.ry) ** 2 <= 1.0

    def bounds(self) -> Bounds:
        return self.cx - self.rx, self.cy - self.ry, self.cx + self.rx, self.cy + self.ry

    def moved(self, dx: float, dy: float, scale: float) -> Ellipse:
        s = scale
        return Ellipse((self.cx + dx) * s, (self.cy + dy) * s, self.rx * s, self.ry * s)


@dataclass(frozen=True)
class Annulus:
    """The region between two concentric circles."""

    cx: float
    cy: float
    outer: float
    inner: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d2 = (x - self.cx) ** 2 + (y - self.cy) ** 2
        return (d2 <= self.outer**2) & (d2 >= self.inner**2)

    def bounds(self) -> Bounds:
        r = self.outer
        return self.cx - r, self.cy - r, self.cx + r, self.cy + r

    def moved(self, dx: float, dy: float, scale: float) -> Annulus:
        s = scale
        return Annulus((self.cx + dx) * s, (self.cy + dy) * s, self.outer * s, self.inner * s)


@dataclass(frozen=True)
class Capsule:
    """A segment from (ax, ay) to (bx, by) thickened by ``radius``, with round ends (limbs)."""

    ax: float
    ay: float
    bx: float
    by: float
    radius: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = self.bx - self.ax, self.by - self.ay
        length2 = dx * dx + dy * dy
        t = ((x - self.ax) * dx + (y - self.ay) * dy) / length2 if length2 > 0 else 0.0
        t = np.clip(t, 0.0, 1.0)
        px, py = self.ax + t * dx, self.ay + t * dy
        return (x - px) ** 2 + (y - py) ** 2 <= self.radius**2

    def bounds(self) -> Bounds:
        r = self.radius
        return (
            min(self.ax, self.bx) - r,
            min(self.ay, self.by) - r,
            max(self.ax, self.bx) + r,
            max(self.ay, self.by) + r,
        )

    def moved(self, dx: float, dy: float, scale: float) -> Capsule:
        s = scale
        return Capsule(
            (self.ax + dx) * s,
            (self.ay + dy) * s,
            (self.bx + dx) * s,
            (self.by + dy) * s,
            self.radius * s,
        )


def regular_star(points: int, inner_ratio: float) -> np.ndarray:
    """Corners of a star with ``points`` tips on the unit circle, pointing up."""
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner_ratio)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def rounded_rect(x1: float, y1: float, x2: float, y2: float, radius: float) -> np.ndarray:
    """Corners of a rectangle whose corners are quarter circles of ``radius`` (0: sharp)."""
    if radius <= 0:
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64)
    out = []
    corners = ((x2 - radius, y1 + radius, -90), (x2 - radius, y2 - radius, 0))
    corners += ((x1 + radius, y2 - radius, 90), (x1 + radius, y1 + radius, 180))
    for cx, cy, start in corners:
        for a in np.radians(np.linspace(start, start + 90, 6)):
            out.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return np.asarray(out, np.float64)
