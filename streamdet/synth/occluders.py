"""Varied occluders for domain-randomised scenes: poles, railings, branches with leaves, rocks.

The first randomised recipe (:func:`streamdet.synth.randomise.varied_scene`) covers objects with
flat, muted bars 0.12-0.4 of the object's size thick, or ellipses. Real occluders are thinner and
thicker than that, bent, leafy, shaded and textured, and a detector that has only seen flat bars
rejects a disc crossed by a twig (issue 18: on one seed of the held-out generator 8 of the 22
true boxes that verification dropped were crossed by a pole or a branch). :func:`occlude` draws
one of several kinds, anti-aliased, shaded across and textured along, in a muted colour; the
pixels it covers (coverage at least one half) are background in the owner map, as before.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: The kinds of occluder and how often each is drawn.
KINDS: tuple[tuple[str, float], ...] = (
    ("bar", 0.35),
    ("railing", 0.1),
    ("branch", 0.3),
    ("rock", 0.25),
)


def muted(rng: np.random.Generator) -> np.ndarray:
    """A muted colour (BGR, float): greys, browns, dark greens, dull blues."""
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(0, 110), rng.uniform(35, 200)]]], dtype=np.float32
    )
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _bar(rng: np.random.Generator, mask: np.ndarray, cx: float, cy: float, extent: float) -> None:
    """A straight pole or bar of any thickness (2-40% of the object), far longer than it."""
    angle = rng.uniform(0, math.pi)
    length = extent * rng.uniform(1.0, 3.0)
    dx, dy = math.cos(angle) * length, math.sin(angle) * length
    thick = max(1, round(extent * math.exp(rng.uniform(math.log(0.03), math.log(0.4)))))
    p1, p2 = (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy))
    cv2.line(mask, p1, p2, 255, thick, cv2.LINE_AA)


def _railing(
    rng: np.random.Generator, mask: np.ndarray, cx: float, cy: float, extent: float
) -> None:
    """Two to four thin parallel bars (a railing, a fence, wires)."""
    angle = rng.uniform(0, math.pi)
    dx, dy = math.cos(angle) * extent * 2, math.sin(angle) * extent * 2
    nx, ny = -math.sin(angle), math.cos(angle)
    gap = extent * rng.uniform(0.15, 0.4)
    thick = max(1, round(extent * rng.uniform(0.02, 0.08)))
    for k in range(int(rng.integers(2, 5))):
        ox, oy = cx + nx * gap * k, cy + ny * gap * k
        p1, p2 = (round(ox - dx), round(oy - dy)), (round(ox + dx), round(oy + dy))
        cv2.line(mask, p1, p2, 255, thick, cv2.LINE_AA)


def _branch(
    rng: np.random.Generator, mask: np.ndarray, cx: float, cy: float, extent: float
) -> None:
    """A bent stick of two to four segments with twigs and, mostly, leaves along it."""
    angle = rng.uniform(0, 2 * math.pi)
    step = extent * rng.uniform(0.4, 0.9)
    thick = max(1, round(extent * rng.uniform(0.02, 0.08)))
    x, y = cx - math.cos(angle) * step * 1.5, cy - math.sin(angle) * step * 1.5
    points = [(x, y)]
    for _ in range(int(rng.integers(2, 5))):
        angle += rng.uniform(-0.6, 0.6)
        x, y = x + math.cos(angle) * step, y + math.sin(angle) * step
        points.append((x, y))
    pts = np.round(np.array(points)).astype(np.int32)
    cv2.polylines(mask, [pts], False, 255, thick, cv2.LINE_AA)
    leafy = rng.random() < 0.7
    for _ in range(int(rng.integers(2, 9))):
        i = int(rng.integers(len(points) - 1))
        t = rng.uniform(0, 1)
        px = points[i][0] + t * (points[i + 1][0] - points[i][0])
        py = points[i][1] + t * (points[i + 1][1] - points[i][1])
        if leafy:
            axes = (
                max(1, round(extent * rng.uniform(0.04, 0.14))),
                max(1, round(extent * rng.uniform(0.03, 0.08))),
            )
            jx = rng.normal(0, extent * 0.06)
            jy = rng.normal(0, extent * 0.06)
            centre = (round(px + jx), round(py + jy))
            cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
        else:
            twig = angle + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)
            reach = extent * rng.uniform(0.1, 0.3)
            end = (round(px + math.cos(twig) * reach), round(py + math.sin(twig) * reach))
            cv2.line(mask, (round(px), round(py)), end, 255, max(1, thick // 2), cv2.LINE_AA)


def _rock(rng: np.random.Generator, mask: np.ndarray, cx: float, cy: float, extent: float) -> None:
    """An irregular lump (a rock, a bush, a sign's back) over a side of the object."""
    n = int(rng.integers(6, 12))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    size = extent * rng.uniform(0.2, 0.55)
    radii = size * rng.uniform(0.6, 1.0, n)
    squash = rng.uniform(0.5, 1.0)
    pts = np.stack([cx + radii * np.cos(angles), cy + squash * radii * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)


_DRAW = {"bar": _bar, "railing": _railing, "branch": _branch, "rock": _rock}


def occlude(
    rng: np.random.Generator,
    image: np.ndarray,
    owner: np.ndarray,
    box: tuple[float, ...],
    kind: str | None = None,
) -> None:
    """Draw one varied occluder (of ``kind``, else one drawn from :data:`KINDS`) over part of
    ``box`` (x1, y1, x2, y2) into ``image`` (uint8 BGR, in place); pixels it covers at least
    half become background (-1) in ``owner``."""
    h, w = image.shape[:2]
    extent = max(box[2] - box[0], box[3] - box[1], 4.0)
    if kind is None:
        names = [k for k, _ in KINDS]
        kind = names[int(rng.choice(len(KINDS), p=np.array([p for _, p in KINDS])))]
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
    _DRAW[kind](rng, mask, float(cx), float(cy), float(extent))
    alpha = mask.astype(np.float32) / 255.0
    if not alpha.any():
        return
    colour = muted(rng)
    # Shading: a brightness gradient in a random direction, and a grain along the occluder.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    ramp = ((xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)) / extent
    light = 1.0 + rng.uniform(0.0, 0.35) * np.clip(ramp, -1.0, 1.0)
    grain = rng.normal(0.0, rng.uniform(0.0, 0.12), (h, w)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), max(0.5, extent * 0.02))
    paint = colour[None, None, :] * (light * (1.0 + grain))[..., None]
    a = alpha[..., None]
    out = image.astype(np.float32) * (1.0 - a) + paint * a
    image[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    owner[alpha >= 0.5] = -1


__all__ = ["KINDS", "occlude"]
