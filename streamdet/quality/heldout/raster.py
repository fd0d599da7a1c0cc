"""Rasterising held-out objects: several samples per pixel, coverage per part, alpha blending.

An object (its parts, :mod:`streamdet.quality.heldout.shapes`) is placed by a centre, an extent
(the longer side in pixels), a turn, a stretch and a mirror. Each pixel of its window is sampled
on an ``SUPERSAMPLE`` x ``SUPERSAMPLE`` grid; a sample belongs to the last part that contains it,
so a pixel's coverage per part is the share of its samples, and the object is blended over the
frame by that coverage (anti-aliasing of our own; the training generator uses OpenCV's ``LINE_AA``).
The window may reach past the frame: the object's whole mask is known, so an object crossing the
edge has a true full box and the share of it inside the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamdet.quality.heldout.shapes import Part, bounds_of

SUPERSAMPLE = 3
#: A pixel belongs to an object's mask when this share of its samples is inside the object.
MASK_COVERAGE = 0.5


@dataclass(frozen=True)
class Pose:
    """Where an object goes: centre (pixels), extent (its longer side, pixels), turn (degrees,
    counter-clockwise), ``stretch`` (x, y factors before turning) and ``flip`` (mirror)."""

    center: tuple[float, float]
    extent: float
    angle: float = 0.0
    stretch: tuple[float, float] = (1.0, 1.0)
    flip: bool = False

    def matrix(self) -> np.ndarray:
        """2x2 map from unit coordinates to pixel offsets from the centre."""
        theta = math.radians(self.angle)
        rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
        sx = self.extent * self.stretch[0] * (-1.0 if self.flip else 1.0)
        return rot @ np.diag([sx, self.extent * self.stretch[1]])


@dataclass(frozen=True)
class Raster:
    """An object's coverage per role over a window whose top-left pixel is (x0, y0).

    ``coverage`` is (roles, h, w) float32 in 0..1, summing to at most 1 per pixel. The window may
    lie partly outside the frame.
    """

    x0: int
    y0: int
    roles: tuple[str, ...]
    coverage: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.coverage.sum(axis=0)

    @property
    def mask(self) -> np.ndarray:
        """The object's pixels (coverage >= MASK_COVERAGE) over the window."""
        return self.total >= MASK_COVERAGE

    def mask_box(self) -> tuple[float, float, float, float] | None:
        """Box of the mask in frame pixels (x1, y1, x2, y2; pixel edges), or None if empty."""
        return mask_box(self.mask, self.x0, self.y0)


def mask_box(
    mask: np.ndarray, x0: int = 0, y0: int = 0
) -> tuple[float, float, float, float] | None:
    """The tight box (pixel edges) of the True pixels of ``mask`` placed at (x0, y0)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return (
        float(x0 + cols[0]),
        float(y0 + rows[0]),
        float(x0 + cols[-1] + 1),
        float(y0 + rows[-1] + 1),
    )


def rasterise(parts: tuple[Part, ...], pose: Pose) -> Raster:
    """Sample ``parts`` placed by ``pose``; see :class:`Raster`."""
    m = pose.matrix()
    x1, y1, x2, y2 = bounds_of(parts)
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) @ m.T + pose.center
    c0, r0 = np.floor(corners.min(axis=0)).astype(int) - 1
    c1, r1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    h, w = int(r1 - r0), int(c1 - c0)
    n = SUPERSAMPLE
    offsets = (np.arange(n) + 0.5) / n
    ys = (r0 + np.arange(h)[:, None] + offsets[None, :]).reshape(-1)
    xs = (c0 + np.arange(w)[:, None] + offsets[None, :]).reshape(-1)
    px, py = np.meshgrid(xs, ys)  # (h*n, w*n)
    inv = np.linalg.inv(m)
    dx, dy = px - pose.center[0], py - pose.center[1]
    u = inv[0, 0] * dx + inv[0, 1] * dy
    v = inv[1, 0] * dx + inv[1, 1] * dy
    roles = tuple(dict.fromkeys(p.role for p in parts))
    owner = np.full(u.shape, -1, np.int8)
    for p in parts:
        owner[p.shape.contains(u, v)] = roles.index(p.role)
    blocks = owner.reshape(h, n, w, n)
    coverage = np.stack([(blocks == k).mean(axis=(1, 3)) for k in range(len(roles))])
    return Raster(int(c0), int(r0), roles, coverage.astype(np.float32))


def blend(image: np.ndarray, raster: Raster, colours: dict[str, np.ndarray]) -> None:
    """Blend ``raster`` over ``image`` (H x W x 3 float32 RGB, in place) with a colour per role:
    an RGB triple or an (h, w, 3) field over the raster's window (shading, texture)."""
    H, W = image.shape[:2]
    h, w = raster.coverage.shape[1:]
    fx0, fy0 = max(raster.x0, 0), max(raster.y0, 0)
    fx1, fy1 = min(raster.x0 + w, W), min(raster.y0 + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    win = (slice(fy0 - raster.y0, fy1 - raster.y0), slice(fx0 - raster.x0, fx1 - raster.x0))
    cov = raster.coverage[:, win[0], win[1]]
    region = image[fy0:fy1, fx0:fx1]
    out = region * (1.0 - cov.sum(axis=0))[..., None]
    for k, role in enumerate(raster.roles):
        colour = np.asarray(colours[role], np.float32)
        if colour.ndim == 3:
            colour = colour[win[0], win[1]]
        out += cov[k][..., None] * colour
    image[fy0:fy1, fx0:fx1] = out


def frame_mask(raster: Raster, height: int, width: int) -> np.ndarray:
    """The raster's mask as a full-frame bool array (the part inside the frame)."""
    out = np.zeros((height, width), bool)
    mask = raster.mask
    h, w = mask.shape
    fx0, fy0 = max(raster.x0, 0), max(raster.y0, 0)
    fx1, fy1 = min(raster.x0 + w, width), min(raster.y0 + h, height)
    if fx1 > fx0 and fy1 > fy0:
        out[fy0:fy1, fx0:fx1] = mask[
            fy0 - raster.y0 : fy1 - raster.y0, fx0 - raster.x0 : fx1 - raster.x0
        ]
    return out
