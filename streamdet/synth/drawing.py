"""How each kind of object is drawn: primitives in unit coordinates, placed, turned and mirrored.

Each kind is a list of primitives (polygons, discs, rings and thick lines) in unit coordinates (x
right, y down, centred on 0), scaled so that the longer side of the kind's bounding box has
length 1. A :class:`Placement` says where one object goes, how large, turned and mirrored;
:func:`draw` paints it anti-aliased onto a BGR ``uint8`` frame with sub-pixel precision and returns
the box it covers, and :func:`approx_box` predicts that box without drawing (for placing objects
apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from streamdet.synth.vocabulary import COLOURS, KINDS, SHAPES, SIZES

# Fixed colours of object parts that do not take the object's colour (BGR).
_PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "tyre": (30, 30, 30),
    "hub": (150, 150, 150),
    "glass": (225, 205, 170),
    "skin": (150, 185, 225),
    "trunk": (40, 70, 110),
    "door": (35, 55, 85),
}


@dataclass(frozen=True)
class Placement:
    """What to draw and where: one object before rendering.

    ``extent`` is the length in pixels of the object's longer side before rotation; ``angle`` is in
    degrees, counter-clockwise; ``flip`` mirrors side-view objects left to right.
    """

    kind: str
    colour: str
    size: str
    center: tuple[float, float]
    extent: float
    angle: float = 0.0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, but got {self.kind!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {tuple(COLOURS)}, but got {self.colour!r}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, but got {self.size!r}")
        if not self.extent > 0:
            raise ValueError(f"extent must be > 0 pixels, but got {self.extent}")


# ("poly", pts, role) | ("circle", (cx, cy), r, role, thickness) | ("line", p, q, width, role)
_Prim = tuple


def _regular_star(points: int, outer: float, inner: float) -> np.ndarray:
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _shape_prims(kind: str) -> list[_Prim]:
    if kind == "circle":
        return [("circle", (0.0, 0.0), 0.5, "main", -1)]
    if kind == "ring":
        return [("circle", (0.0, 0.0), 0.42, "main", 0.16)]
    if kind == "square":
        return [("poly", np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]), "main")]
    if kind == "triangle":
        h = math.sqrt(3) / 2
        return [("poly", np.array([[0.0, -h / 2], [0.5, h / 2], [-0.5, h / 2]]), "main")]
    if kind == "star":
        return [("poly", _regular_star(5, 0.5, 0.21) + np.array([0.0, 0.05]), "main")]
    # cross: a plus sign
    t = 0.17
    pts = [[-t, -0.5], [t, -0.5], [t, -t], [0.5, -t], [0.5, t], [t, t], [t, 0.5], [-t, 0.5]]
    pts += [[-t, t], [-0.5, t], [-0.5, -t], [-t, -t]]
    return [("poly", np.array(pts), "main")]


def _object_prims(kind: str) -> list[_Prim]:
    if kind == "car":  # 1.0 x 0.42, facing right
        body = np.array([[-0.5, 0.1], [-0.48, -0.02], [-0.22, -0.04], [-0.12, -0.2], [0.16, -0.2]])
        body = np.concatenate([body, [[0.3, -0.04], [0.48, 0.0], [0.5, 0.1], [-0.5, 0.1]]])
        return [
            ("poly", body, "main"),
            (
                "poly",
                np.array([[-0.1, -0.05], [-0.06, -0.16], [0.01, -0.16], [0.01, -0.05]]),
                "glass",
            ),
            (
                "poly",
                np.array([[0.04, -0.05], [0.04, -0.16], [0.14, -0.16], [0.24, -0.05]]),
                "glass",
            ),
            ("circle", (-0.28, 0.1), 0.11, "tyre", -1),
            ("circle", (0.28, 0.1), 0.11, "tyre", -1),
            ("circle", (-0.28, 0.1), 0.045, "hub", -1),
            ("circle", (0.28, 0.1), 0.045, "hub", -1),
        ]
    if kind == "person":  # 0.38 x 1.0, standing
        return [
            ("line", (-0.05, 0.15), (-0.07, 0.5), 0.1, "main"),
            ("line", (0.05, 0.15), (0.07, 0.5), 0.1, "main"),
            ("poly", np.array([[-0.12, -0.26], [0.12, -0.26], [0.1, 0.18], [-0.1, 0.18]]), "main"),
            ("line", (-0.12, -0.22), (-0.15, 0.08), 0.07, "main"),
            ("line", (0.12, -0.22), (0.15, 0.08), 0.07, "main"),
            ("circle", (0.0, -0.39), 0.11, "skin", -1),
        ]
    if kind == "bicycle":  # 1.0 x 0.6, facing right
        r = 0.2
        back, front = (-0.3, 0.1), (0.3, 0.1)
        crank, seat, head = (-0.02, 0.1), (-0.12, -0.16), (0.2, -0.16)
        frame = [(back, crank), (crank, seat), (seat, back), (seat, head), (head, crank)]
        frame += [(head, front), (seat, (-0.16, -0.2)), (head, (0.16, -0.22))]
        prims: list[_Prim] = [("circle", c, r, "tyre", 0.04) for c in (back, front)]
        prims += [("line", p, q, 0.05, "main") for p, q in frame]
        prims += [("line", (-0.22, -0.2), (-0.1, -0.2), 0.05, "tyre")]
        return prims
    if kind == "tree":  # 0.66 x 1.0
        return [
            ("poly", np.array([[-0.06, 0.5], [-0.05, 0.0], [0.05, 0.0], [0.06, 0.5]]), "trunk"),
            ("circle", (0.0, -0.17), 0.33, "main", -1),
            ("circle", (-0.17, -0.02), 0.16, "main", -1),
            ("circle", (0.17, -0.02), 0.16, "main", -1),
        ]
    # house: 1.0 x 0.9, walls in the object's colour, a darker roof
    return [
        ("poly", np.array([[-0.38, -0.05], [0.38, -0.05], [0.38, 0.45], [-0.38, 0.45]]), "main"),
        ("poly", np.array([[-0.5, -0.03], [0.0, -0.45], [0.5, -0.03]]), "roof"),
        ("poly", np.array([[-0.08, 0.17], [0.08, 0.17], [0.08, 0.45], [-0.08, 0.45]]), "door"),
        ("poly", np.array([[-0.3, 0.05], [-0.16, 0.05], [-0.16, 0.18], [-0.3, 0.18]]), "glass"),
        ("poly", np.array([[0.16, 0.05], [0.3, 0.05], [0.3, 0.18], [0.16, 0.18]]), "glass"),
    ]


def base_prims(kind: str) -> list[_Prim]:
    """The primitives of ``kind`` before scaling (what :mod:`streamdet.synth.randomise` varies)."""
    return _shape_prims(kind) if kind in SHAPES else _object_prims(kind)


@cache
def _unit_prims(kind: str) -> tuple[_Prim, ...]:
    """Primitives of ``kind`` scaled so the longer side of their bounding box is 1, centred."""
    return normalise_prims(base_prims(kind))


def normalise_prims(prims: list[_Prim]) -> tuple[_Prim, ...]:
    """``prims`` scaled so the longer side of their bounding box is 1, centred on 0."""
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for p in prims:
        pts, pad = _prim_points(p)
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    centre, scale = (lo + hi) / 2, 1.0 / float((hi - lo).max())
    out = []
    for p in prims:
        if p[0] == "poly":
            out.append(("poly", (p[1] - centre) * scale, p[2]))
        elif p[0] == "circle":
            thick = p[4] * scale if p[4] > 0 else -1
            out.append(("circle", (np.asarray(p[1]) - centre) * scale, p[2] * scale, p[3], thick))
        else:
            a, b = (np.asarray(p[1]) - centre) * scale, (np.asarray(p[2]) - centre) * scale
            out.append(("line", a, b, p[3] * scale, p[4]))
    return tuple(out)


def _prim_points(p: _Prim) -> tuple[np.ndarray, float]:
    """Key points of a primitive and the padding around them that its drawing covers."""
    if p[0] == "poly":
        return np.asarray(p[1], dtype=np.float64), 0.0
    if p[0] == "circle":
        pad = p[2] + (p[4] / 2 if p[4] > 0 else 0.0)
        return np.asarray([p[1]], dtype=np.float64), pad
    return np.asarray([p[1], p[2]], dtype=np.float64), p[3] / 2


def _part_colour(role: str, colour: str) -> tuple[int, int, int]:
    main = COLOURS[colour]
    if role == "main":
        return main
    if role == "roof":
        return tuple(int(c * 0.55) for c in main) if colour != "black" else (70, 70, 70)
    if role == "tyre" and colour == "black":
        return (75, 75, 75)
    return _PART_COLOURS[role]


_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def draw(image: np.ndarray, p: Placement, jitter: np.ndarray | None) -> tuple[float, ...]:
    """Draw one placement onto ``image`` in place; return its unclipped box (x1, y1, x2, y2)."""
    theta = math.radians(p.angle)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    sx = -p.extent if p.flip else p.extent
    centre = np.asarray(p.center, dtype=np.float64)

    def tf(pts: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(pts) * [sx, p.extent]
        return pts @ rot.T + centre

    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for prim in _unit_prims(p.kind):
        colour = _part_colour(
            prim[-1] if prim[0] == "poly" else prim[3 if prim[0] == "circle" else 4], p.colour
        )
        if jitter is not None:
            colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
        if prim[0] == "poly":
            pts = tf(prim[1])
            fixed = np.round(pts * _ONE).astype(np.int32)
            cv2.fillPoly(image, [fixed], colour, cv2.LINE_AA, _SHIFT)
            pad = 0.0
        elif prim[0] == "circle":
            pts = tf(prim[1])
            radius = prim[2] * p.extent
            c = tuple(int(v) for v in np.round(pts[0] * _ONE))
            if prim[4] > 0:
                thick = max(1, round(prim[4] * p.extent))
                r_mid = radius
                cv2.circle(image, c, round(r_mid * _ONE), colour, thick, cv2.LINE_AA, _SHIFT)
                pad = r_mid + thick / 2
            else:
                cv2.circle(image, c, round(radius * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
                pad = radius
        else:
            pts = tf(np.stack([prim[1], prim[2]]))
            thick = max(1, round(prim[3] * p.extent))
            a, b = (tuple(int(v) for v in np.round(q * _ONE)) for q in pts)
            cv2.line(image, a, b, colour, thick, cv2.LINE_AA, _SHIFT)
            pad = thick / 2
        lo = np.minimum(lo, pts.min(0) - pad)
        hi = np.maximum(hi, pts.max(0) + pad)
    # OpenCV puts pixel i's centre at coordinate i; boxes use pixel edges (pixel i spans i..i+1).
    return (float(lo[0]) + 0.5, float(lo[1]) + 0.5, float(hi[0]) + 0.5, float(hi[1]) + 0.5)


def _aspect(kind: str) -> tuple[float, float]:
    """(width, height) of a kind's unrotated box relative to its extent."""
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for p in _unit_prims(kind):
        pts, pad = _prim_points(p)
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    return float(hi[0] - lo[0]), float(hi[1] - lo[1])


def approx_box(p: Placement) -> tuple[float, float, float, float]:
    aw, ah = _aspect(p.kind)
    theta = math.radians(p.angle)
    c, s = abs(math.cos(theta)), abs(math.sin(theta))
    bw = p.extent * (aw * c + ah * s)
    bh = p.extent * (aw * s + ah * c)
    return (p.center[0] - bw / 2, p.center[1] - bh / 2, p.center[0] + bw / 2, p.center[1] + bh / 2)
