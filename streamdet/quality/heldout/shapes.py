"""The held-out generator's geometry of every kind: our own proportions, varied per object.

Each kind is built by a function of the random generator, so two stars of one scene differ. The
proportions deliberately avoid the training generator's (``synth.drawing``): its star has five
points with an inner radius of 0.42 of the outer, here five or six points at 0.28-0.36 or
0.50-0.56; its triangle is equilateral (height 0.87 of the base), here isosceles or scalene with a
height of 0.58-0.76 or 0.98-1.12 of the base; its cross arms are 0.34 of the length wide, here
0.20-0.27 or 0.42-0.48, some with a long foot (a Latin cross); its ring's hole is 0.68 of the
outside, here 0.42-0.58 or 0.77-0.83; squares get rounded corners; cars, people, bicycles, trees
and houses have other silhouettes (hatchbacks and vans, walking people, step-through frames,
conifers, chimneys). Every one of them is still what its name says, which is what keeps the
comparison fair.

A kind is a tuple of :class:`Part` (a role and a primitive), back to front, centred on 0 with the
longer side of its bounding box 1 (``extent`` in pixels scales it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamdet.quality.heldout.geometry import (
    Annulus,
    Bounds,
    Capsule,
    Ellipse,
    Polygon,
    Primitive,
    regular_star,
    rounded_rect,
)
from streamdet.synth.vocabulary import KINDS

#: Roles that take the object's colour; every other role is a part of fixed kind (tyre, glass...).
COLOURED_ROLES: frozenset[str] = frozenset({"main", "shade"})


@dataclass(frozen=True)
class Part:
    """One region of an object and what paints it: ``main`` (the object's colour), ``shade`` (a
    darker version of it), or a part colour (``tyre``, ``glass``, ``skin``, ``trunk``, ``door``,
    ``roof``, ``legs``)."""

    role: str
    shape: Primitive


def _either(rng: np.random.Generator, a: tuple[float, float], b: tuple[float, float]) -> float:
    """A value from one of two ranges (the training value lies between them)."""
    lo, hi = a if rng.random() < 0.5 else b
    return float(rng.uniform(lo, hi))


def _circle(rng: np.random.Generator) -> list[Part]:
    return [Part("main", Ellipse(0.0, 0.0, 0.5, 0.5))]


def _ring(rng: np.random.Generator) -> list[Part]:
    return [Part("main", Annulus(0.0, 0.0, 0.5, 0.5 * _either(rng, (0.42, 0.58), (0.77, 0.83))))]


def _square(rng: np.random.Generator) -> list[Part]:
    radius = float(rng.uniform(0.0, 0.12))
    return [Part("main", Polygon.of(rounded_rect(-0.5, -0.5, 0.5, 0.5, radius)))]


def _triangle(rng: np.random.Generator) -> list[Part]:
    height = _either(rng, (0.58, 0.76), (0.98, 1.12))
    apex = float(rng.uniform(-0.3, 0.3))  # isosceles at 0, scalene otherwise
    return [Part("main", Polygon.of([[apex, -height / 2], [0.5, height / 2], [-0.5, height / 2]]))]


def _star(rng: np.random.Generator) -> list[Part]:
    points = 6 if rng.random() < 0.3 else 5
    inner = _either(rng, (0.28, 0.36), (0.50, 0.56))
    return [Part("main", Polygon.of(regular_star(points, inner) * 0.5))]


def _cross(rng: np.random.Generator) -> list[Part]:
    t = _either(rng, (0.10, 0.135), (0.21, 0.24))  # half the arm width
    bar = float(rng.uniform(-0.22, -0.1)) if rng.random() < 0.3 else 0.0  # Latin: bar up high
    pts = [[-t, -0.5], [t, -0.5], [t, bar - t], [0.5, bar - t], [0.5, bar + t], [t, bar + t]]
    pts += [[t, 0.5], [-t, 0.5], [-t, bar + t], [-0.5, bar + t], [-0.5, bar - t], [-t, bar - t]]
    return [Part("main", Polygon.of(pts))]


def _car(rng: np.random.Generator) -> list[Part]:
    """Facing right: a hatchback, a saloon or a van, body 1.0 long."""
    style = rng.integers(3)
    sill, roof = 0.14, -float(rng.uniform(0.16, 0.2) if style < 2 else rng.uniform(0.24, 0.3))
    belt = float(rng.uniform(-0.02, 0.03))
    rear = -0.5 if style == 2 else float(rng.uniform(-0.42, -0.3))
    cab0, cab1 = (-0.46, 0.2) if style == 2 else (float(rng.uniform(-0.3, -0.18)), 0.12)
    body = [[-0.5, sill], [-0.5, belt], [rear, belt - 0.01], [cab0, roof], [cab1, roof]]
    body += [[cab1 + 0.14, belt - 0.02], [0.47, belt + 0.02], [0.5, 0.07], [0.5, sill]]
    parts = [Part("main", Polygon.of(body))]
    top, low = roof + 0.035, belt - 0.035
    mid = (cab0 + cab1) / 2 + 0.03
    parts.append(
        Part(
            "glass",
            Polygon.of(
                [[cab0 + 0.05, top], [mid - 0.02, top], [mid - 0.02, low], [cab0 + 0.02, low]]
            ),
        )
    )
    parts.append(
        Part(
            "glass",
            Polygon.of([[mid + 0.02, top], [cab1, top], [cab1 + 0.1, low], [mid + 0.02, low]]),
        )
    )
    wheel = float(rng.uniform(0.085, 0.11))
    for x in (-0.31, 0.31):
        parts.append(Part("tyre", Ellipse(x, sill, wheel, wheel)))
        parts.append(Part("hub", Ellipse(x, sill, wheel * 0.45, wheel * 0.45)))
    return parts


def _person(rng: np.random.Generator) -> list[Part]:
    """Walking, seen from the side: legs apart, arms swinging, 1.0 tall."""
    stride = float(rng.uniform(0.06, 0.16))
    legs = "main" if rng.random() < 0.5 else "legs"
    hip, foot = 0.08, 0.47
    parts = [
        Part(legs, Capsule(0.0, hip, -stride, foot, 0.045)),
        Part(legs, Capsule(0.0, hip, stride, foot, 0.045)),
        Part("main", Polygon.of([[-0.08, -0.27], [0.08, -0.27], [0.07, 0.12], [-0.07, 0.12]])),
        Part("main", Capsule(0.0, -0.22, -0.1, 0.03, 0.035)),
        Part("main", Capsule(0.0, -0.22, 0.11, 0.02, 0.035)),
        Part("skin", Ellipse(0.01, -0.38, 0.075, 0.09)),
    ]
    return parts


def _bicycle(rng: np.random.Generator) -> list[Part]:
    """Facing right: thin rims, a diamond or a step-through frame in the object's colour."""
    r = float(rng.uniform(0.2, 0.24))
    back, front = (-0.32, 0.1), (0.32, 0.1)
    crank, seat, head = (-0.03, 0.12), (-0.12, -0.18), (0.2, -0.15)
    rim = float(rng.uniform(0.018, 0.03))
    parts = [Part("tyre", Annulus(*c, r, r - rim)) for c in (back, front)]
    tube = float(rng.uniform(0.018, 0.026))
    step = rng.random() < 0.4
    top = ((crank, head),) if step else ((seat, head), (head, crank))
    for a, b in (*top, (crank, seat), (seat, back), (back, crank), (head, front)):
        parts.append(Part("main", Capsule(*a, *b, tube)))
    parts.append(Part("tyre", Capsule(-0.18, -0.2, -0.07, -0.2, 0.022)))  # saddle
    parts.append(Part("tyre", Capsule(head[0], head[1], 0.14, -0.22, 0.018)))  # handlebar
    return parts


def _tree(rng: np.random.Generator) -> list[Part]:
    """A conifer (stacked triangles) or a broad tree (overlapping crowns), 1.0 tall."""
    parts = [Part("trunk", Polygon.of([[-0.05, 0.5], [-0.035, 0.2], [0.035, 0.2], [0.05, 0.5]]))]
    if rng.random() < 0.5:
        for i, w in enumerate((0.32, 0.26, 0.19)):
            y = 0.28 - i * 0.22
            parts.append(Part("main", Polygon.of([[-w, y], [w, y], [0.0, y - 0.34]])))
        return parts
    for cx, cy, rx, ry in ((0.0, -0.2, 0.28, 0.3), (-0.16, 0.02, 0.2, 0.18), (0.17, 0.0, 0.2, 0.2)):
        parts.append(Part("main", Ellipse(cx, cy, rx, ry)))
    parts.append(Part("shade", Ellipse(0.06, 0.06, 0.18, 0.12)))
    return parts


def _house(rng: np.random.Generator) -> list[Part]:
    """Walls in the object's colour, a pitched or hipped roof, a chimney, door and windows."""
    wall = float(rng.uniform(0.34, 0.42))
    eave = float(rng.uniform(-0.08, 0.0))
    ridge = eave - float(rng.uniform(0.3, 0.4))
    parts = [
        Part(
            "roof",
            Polygon.of(
                [
                    [0.28, ridge + 0.02],
                    [0.36, ridge + 0.02],
                    [0.36, eave - 0.05],
                    [0.28, eave - 0.05],
                ]
            ),
        )
    ]
    parts.append(
        Part("main", Polygon.of([[-wall, eave], [wall, eave], [wall, 0.42], [-wall, 0.42]]))
    )
    if rng.random() < 0.5:
        roof = [[-wall - 0.08, eave + 0.02], [0.0, ridge], [wall + 0.08, eave + 0.02]]
    else:
        top = wall * 0.45
        roof = [
            [-wall - 0.08, eave + 0.02],
            [-top, ridge],
            [top, ridge],
            [wall + 0.08, eave + 0.02],
        ]
    parts.append(Part("roof", Polygon.of(roof)))
    door = float(rng.uniform(-0.2, 0.2))
    parts.append(Part("door", Polygon.of(rounded_rect(door - 0.06, 0.2, door + 0.06, 0.42, 0.0))))
    for x in (-wall + 0.06, wall - 0.17):
        if abs(x + 0.055 - door) > 0.14:
            parts.append(Part("glass", Polygon.of(rounded_rect(x, 0.06, x + 0.11, 0.17, 0.0))))
    return parts


_BUILDERS: dict[str, Callable[[np.random.Generator], list[Part]]] = {
    "circle": _circle,
    "ring": _ring,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "car": _car,
    "person": _person,
    "bicycle": _bicycle,
    "tree": _tree,
    "house": _house,
}
assert set(_BUILDERS) == set(KINDS), "every vocabulary kind needs a held-out geometry"


def bounds_of(parts: tuple[Part, ...] | list[Part]) -> Bounds:
    """The bounding box of all parts."""
    boxes = np.asarray([p.shape.bounds() for p in parts], np.float64)
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )


def make_kind(rng: np.random.Generator, kind: str) -> tuple[Part, ...]:
    """One instance of ``kind``: parts centred on 0, the longer side of their box 1."""
    parts = _BUILDERS[kind](rng)
    x1, y1, x2, y2 = bounds_of(parts)
    scale = 1.0 / max(x2 - x1, y2 - y1)
    dx, dy = -(x1 + x2) / 2, -(y1 + y2) / 2
    return tuple(Part(p.role, p.shape.moved(dx, dy, scale)) for p in parts)


def aspect(parts: tuple[Part, ...]) -> tuple[float, float]:
    """(width, height) of the parts' box (the longer one is 1 after :func:`make_kind`)."""
    x1, y1, x2, y2 = bounds_of(parts)
    return x2 - x1, y2 - y1


def star_inner_ratio(parts: tuple[Part, ...]) -> float:
    """For a star: the inner corners' radius over the tips' (tests: the geometry differs)."""
    (part,) = parts
    pts = np.asarray(part.shape.points)  # type: ignore[attr-defined]
    radii = np.hypot(*(pts - pts.mean(axis=0)).T)
    return float(radii[1::2].mean() / radii[0::2].mean())
