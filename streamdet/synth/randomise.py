"""Domain-randomised training scenes: the same vocabulary drawn many more ways (issue 18).

A model trained only on :mod:`streamdet.synth.scenes` learns that generator's exact shades,
proportions, clean anti-aliased edges and handful of backgrounds, and loses most of its recall on
scenes drawn any other way. :func:`varied_scene` draws the same kinds, colours and prompts with:

* **shades** spread over each colour name's range (:data:`SHADES`, HSV boxes that stay clear of
  the neighbouring names); a shade drawn from the margin between two names is *doubtful*: the
  captions of both names are IGNORE for that object, never guessed (:func:`shade`);
* **geometry** (:mod:`streamdet.synth.variants`): stretched or squeezed kinds, stars of 5 to 7
  points and any inner radius, triangles of any apex, rings and crosses of any thickness, people,
  houses and trees of other builds; more small objects (12 to 32 pixels on a 640 x 360 frame);
* **style**: outlines (none, dark, light; 1 to 3 pixels), anti-aliasing on or off, brightness
  textures inside objects (noise, stripes, photographs; the hue is kept);
* **scene**: new backgrounds (:mod:`streamdet.synth.scenery`), occluders (muted bars and blobs
  over objects; an object less than half visible is IGNORE, not a target), and hard negatives
  in the same frame: same colour other kind, same kind other colour (often the neighbouring
  hue), colour-only and kind-only distractors;
* **camera**: lighting, blur, noise, JPEG and video artefacts (:mod:`streamdet.synth.degrade`).

The result is a :class:`VariedScene`: the rendered :class:`~streamdet.synth.scenes.Scene` and,
per object, which colour names are doubtful and whether it is hidden; the labelling in
:mod:`streamdet.synth.data` honours both. Only training uses this module (``randomise`` > 0);
:mod:`streamdet.synth.scenes` draws exactly what it drew before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from streamdet.synth import occluders
from streamdet.synth.degrade import HARD, MILD, degrade
from streamdet.synth.drawing import Placement
from streamdet.synth.scenery import luminance_map, varied_background
from streamdet.synth.scenes import Scene, SceneObject, random_placements
from streamdet.synth.variants import varied_prims
from streamdet.synth.vocabulary import COLOURS, KINDS, Query

#: Per colour name: OpenCV hue (0..180, may run below 0 for red), saturation and value (0..1)
#: as (safe low, safe high, outer low, outer high). A shade inside every safe range is the name
#: without doubt; one in the outer margin is doubtful between the name and :data:`NEIGHBOURS`.
SHADES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "red": ((-6, 5, -10, 8), (0.6, 1.0, 0.45, 1.0), (0.55, 1.0, 0.45, 1.0)),
    "orange": ((11, 17, 8, 20), (0.65, 1.0, 0.5, 1.0), (0.8, 1.0, 0.7, 1.0)),
    "yellow": ((23, 32, 20, 36), (0.6, 1.0, 0.45, 1.0), (0.8, 1.0, 0.7, 1.0)),
    "green": ((42, 72, 36, 80), (0.5, 1.0, 0.4, 1.0), (0.4, 1.0, 0.3, 1.0)),
    "blue": ((98, 122, 90, 128), (0.55, 1.0, 0.45, 1.0), (0.45, 1.0, 0.35, 1.0)),
    "purple": ((132, 152, 127, 160), (0.45, 1.0, 0.35, 1.0), (0.35, 0.9, 0.28, 0.95)),
    "white": ((0, 180, 0, 180), (0.0, 0.12, 0.0, 0.2), (0.85, 1.0, 0.75, 1.0)),
    "black": ((0, 180, 0, 180), (0.0, 1.0, 0.0, 1.0), (0.0, 0.2, 0.0, 0.28)),
}
#: The names a doubtful shade may be read as, besides its own: (hue below, hue above, pale/dark).
NEIGHBOURS: dict[str, tuple[str, str, str]] = {
    "red": ("purple", "orange", "white"),
    "orange": ("red", "yellow", "black"),
    "yellow": ("orange", "green", "white"),
    "green": ("yellow", "blue", "black"),
    "blue": ("green", "purple", "black"),
    "purple": ("blue", "red", "black"),
    "white": ("white", "white", "white"),
    "black": ("black", "black", "black"),
}
#: Share of shades drawn from the outer ranges (the rest from the safe ranges).
OUTER_SHARE = 0.25
#: An object showing less than this share of its own pixels (occluded or covered) is hidden.
HIDDEN_BELOW = 0.5
#: Share of objects drawn 12 to 32 pixels long.
TINY_SHARE = 0.3

_COLOUR_NAMES = tuple(COLOURS)


@dataclass(frozen=True)
class Shade:
    """One object's colour: BGR, and the colour names it may be taken for (its own included)
    when it lies in the margin between names; empty when it is clearly its own name."""

    bgr: tuple[int, int, int]
    doubt: frozenset[str]


def _hsv_to_bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    hsv = np.array([[[round(h % 180) % 180, round(s * 255), round(v * 255)]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def classify_shade(colour: str, h: float, s: float, v: float) -> frozenset[str]:
    """The names an (h, s, v) shade drawn for ``colour`` may be read as besides ``colour``
    (with ``colour`` itself) when outside its safe ranges; empty when inside them."""
    (h0, h1, _, _), (s0, s1, _, _), (v0, v1, _, _) = SHADES[colour]
    below, above, off = NEIGHBOURS[colour]
    doubt: set[str] = set()
    if colour not in ("white", "black"):
        if h < h0:
            doubt.add(below)
        elif h > h1:
            doubt.add(above)
    if not s0 <= s <= s1 or not v0 <= v <= v1:
        doubt.add(off)
    return frozenset(doubt | {colour}) if doubt else frozenset()


def shade(rng: np.random.Generator, colour: str) -> Shade:
    """A random shade of ``colour`` and its doubt (see :class:`Shade`)."""
    outer = rng.random() < OUTER_SHARE
    values = []
    for lo_safe, hi_safe, lo_out, hi_out in SHADES[colour]:
        values.append(rng.uniform(lo_out, hi_out) if outer else rng.uniform(lo_safe, hi_safe))
    h, s, v = values
    return Shade(_hsv_to_bgr(h, s, v), classify_shade(colour, h, s, v))


def _part_colours(rng: np.random.Generator, main: tuple[int, int, int], colour: str) -> dict:
    """BGR per part role for an object whose main colour is ``main``."""

    def around(bgr: tuple[int, int, int], spread: int = 25) -> tuple[int, int, int]:
        jitter = rng.integers(-spread, spread + 1, size=3)
        return tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(bgr, jitter, strict=True))

    dark = colour == "black"
    head = rng.random()
    skin = (
        around((150, 185, 225), 35)
        if head < 0.6
        else (main if head < 0.85 else around((30, 40, 50)))
    )
    roof_factor = rng.uniform(0.4, 0.7)
    roof = (
        around((70, 70, 70))
        if dark
        else (
            tuple(int(c * roof_factor) for c in main)
            if rng.random() < 0.6
            else around((60, 70, 90), 30)
        )
    )
    return {
        "main": main,
        "roof": roof,
        "tyre": around((75, 75, 75) if dark else (30, 30, 30), 15),
        "hub": around((150, 150, 150)),
        "glass": around((225, 205, 170), 30),
        "skin": skin,
        "trunk": around((40, 70, 110), 20),
        "door": around((35, 55, 85), 20),
    }


def _role(prim: tuple) -> str:
    return prim[-1] if prim[0] == "poly" else prim[3 if prim[0] == "circle" else 4]


def _circle_points(centre: np.ndarray, radius: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Style:
    """How one object is drawn beyond its placement: colours per part, stretch of its unit
    shape, line type (anti-aliased or not), outline (BGR, width) and inside texture."""

    colours: dict
    stretch: tuple[float, float]
    line_type: int
    outline: tuple[tuple[int, int, int], int] | None
    textured: bool


def random_style(
    rng: np.random.Generator, kind: str, main: tuple[int, int, int], colour: str
) -> Style:
    """A random :class:`Style` for an object of ``kind`` whose main colour is ``main``."""
    limit = 0.15 if kind in ("circle", "square", "ring") else 0.3
    sx, sy = 1.0 + rng.uniform(-limit, limit), 1.0 + rng.uniform(-limit, limit)
    outline = None
    roll = rng.random()
    if roll < 0.3:
        grey = int(rng.integers(0, 60)) if roll < 0.2 else int(rng.integers(200, 256))
        outline = ((grey, grey, grey), int(rng.integers(1, 4)))
    return Style(
        colours=_part_colours(rng, main, colour),
        stretch=(sx, sy),
        line_type=cv2.LINE_AA if rng.random() < 0.7 else cv2.LINE_8,
        outline=outline,
        textured=bool(rng.random() < 0.35),
    )


def _paint(
    target: np.ndarray, prims: tuple, p: Placement, style: Style, colour_of: object
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``prims`` placed by ``p`` onto ``target``; return the box corners (lo, hi)."""
    theta = math.radians(p.angle)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    sx, sy = style.stretch
    scale = np.array([(-1 if p.flip else 1) * sx * p.extent, sy * p.extent])
    centre = np.asarray(p.center, dtype=np.float64)
    mean_scale = p.extent * (sx + sy) / 2

    def tf(pts: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(pts) * scale) @ rot.T + centre

    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for prim in prims:
        col = colour_of(_role(prim))  # type: ignore[operator]
        if prim[0] == "line":
            pts = tf(np.stack([prim[1], prim[2]]))
            thick = max(1, round(prim[3] * mean_scale))
            a, b = (tuple(int(v) for v in np.round(q * _ONE)) for q in pts)
            cv2.line(target, a, b, col, thick, style.line_type, _SHIFT)
            pad = thick / 2
        elif prim[0] == "circle" and prim[4] > 0:
            pts = tf(_circle_points(np.asarray(prim[1]), prim[2]))
            thick = max(1, round(prim[4] * mean_scale))
            fixed = np.round(pts * _ONE).astype(np.int32)
            cv2.polylines(target, [fixed], True, col, thick, style.line_type, _SHIFT)
            pad = thick / 2
        else:
            raw = _circle_points(np.asarray(prim[1]), prim[2]) if prim[0] == "circle" else prim[1]
            pts = tf(raw)
            fixed = np.round(pts * _ONE).astype(np.int32)
            cv2.fillPoly(target, [fixed], col, style.line_type, _SHIFT)
            pad = 0.0
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    return lo, hi


def draw_varied(
    rng: np.random.Generator, image: np.ndarray, p: Placement, prims: tuple, style: Style
) -> tuple[float, float, float, float]:
    """Draw one object in place with its varied geometry and style; return its unclipped box."""
    h, w = image.shape[:2]
    if style.outline is not None or style.textured:
        mask = np.zeros((h, w), np.uint8)
        lo, hi = _paint(mask, prims, p, replace(style, line_type=cv2.LINE_8), lambda _: 255)
    if style.outline is not None:
        grey, width = style.outline
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
        ring = cv2.dilate(mask, kernel) > 0
        image[ring] = grey
    before = image.copy() if style.textured else None
    lo, hi = _paint(image, prims, p, style, lambda role: style.colours[role])
    if before is not None:
        x0, y0 = max(int(lo[0]) - 2, 0), max(int(lo[1]) - 2, 0)
        x1, y1 = min(math.ceil(hi[0]) + 3, w), min(math.ceil(hi[1]) + 3, h)
        if x1 > x0 and y1 > y0:
            region = image[y0:y1, x0:x1].astype(np.float32)
            inside = (mask[y0:y1, x0:x1] > 0)[..., None]
            lum = luminance_map(rng, y1 - y0, x1 - x0)[..., None]
            region = np.where(inside, region * lum, region)
            image[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)
    if style.outline is not None:
        pad = style.outline[1]
        lo, hi = lo - pad, hi + pad
    return (float(lo[0]) + 0.5, float(lo[1]) + 0.5, float(hi[0]) + 0.5, float(hi[1]) + 0.5)


@dataclass(frozen=True)
class VariedScene:
    """A randomised scene and what its labels must not claim.

    ``doubt`` (n, colours) bool: colour names each object may be taken for (doubtful shade:
    captions naming them are IGNORE for it); ``hidden`` (n,) bool: objects showing less than
    :data:`HIDDEN_BELOW` of their pixels (IGNORE rather than targets).
    """

    scene: Scene
    doubt: np.ndarray
    hidden: np.ndarray


@dataclass(frozen=True)
class Variety:
    """Options for what randomised scenes draw, each tried or used by one recipe stage; all off
    by default, and an option that is off draws no random number, so the scenes of stages
    without it are unchanged.

    ``wide_shapes``: shapes from wider proportions (:func:`streamdet.synth.variants.varied_prims`;
    tried after stage 6). ``occluders``: :mod:`streamdet.synth.occluders`' poles, railings,
    branches and rocks instead of flat bars and ellipses, in :data:`VARIED_OCCLUDE` of the scenes
    (stage 7). ``people``: people walking or standing, often in trousers of another colour
    (:func:`trousers`; tried after stage 7). ``hard_camera``: the camera effects of
    :data:`streamdet.synth.degrade.HARD` (dim light, strong blur) instead of the mild ones
    (stage 8).
    """

    wide_shapes: bool = False
    occluders: bool = False
    people: bool = False
    hard_camera: bool = False


#: Every option off (the default; recipe stages 5 and 6).
PLAIN = Variety()


#: Usual trouser colours (BGR): denim, black, grey, khaki, brown; jittered per person.
TROUSER_COLOURS: tuple[tuple[int, int, int], ...] = (
    (110, 60, 30),
    (25, 25, 25),
    (110, 110, 110),
    (120, 160, 180),
    (40, 60, 90),
)


def trousers(rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour for a person's legs (``"legs"`` role): a usual trouser colour, jittered, or any
    muted colour."""
    if rng.random() < 0.5:
        base = TROUSER_COLOURS[int(rng.integers(len(TROUSER_COLOURS)))]
        jitter = rng.integers(-25, 26, size=3)
        return tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(base, jitter, strict=True))
    return tuple(int(c) for c in occluders.muted(rng))


#: Share of scenes with occluders when they are varied (``Variety(occluders=True)``).
VARIED_OCCLUDE = 0.5


def _occlude(
    rng: np.random.Generator, image: np.ndarray, owner: np.ndarray, box: tuple[float, ...]
) -> None:
    """Draw a muted bar or blob over part of ``box``; its pixels are background in ``owner``."""
    h, w = image.shape[:2]
    extent = max(box[2] - box[0], box[3] - box[1], 4.0)
    hsv = np.array([[[rng.integers(0, 180), rng.integers(0, 90), rng.integers(50, 190)]]], np.uint8)
    colour = tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    mask = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])
    if rng.random() < 0.6:  # a bar (pole, railing, branch) across the object
        angle = rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * extent * 2, math.sin(angle) * extent * 2
        thick = max(2, round(extent * rng.uniform(0.12, 0.4)))
        cv2.line(
            mask, (round(cx - dx), round(cy - dy)), (round(cx + dx), round(cy + dy)), 255, thick
        )
    else:  # a blob (a bush, a sign, another thing) over a side
        axes = (
            max(2, round(extent * rng.uniform(0.2, 0.5))),
            max(2, round(extent * rng.uniform(0.2, 0.5))),
        )
        cv2.ellipse(mask, (round(cx), round(cy)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    covered = mask > 0
    image[covered] = colour
    owner[covered] = -1


def _composition(rng: np.random.Generator, h: int, w: int) -> list[Placement]:
    """Placements of one of three sorts: clutter; copies of one target; or a target among hard
    negatives (same colour other kind, same kind other colour - often the neighbouring hue)."""
    mode = rng.random()
    if mode < 0.45:
        return random_placements(rng, h, w, n_objects=(0, 6), max_overlap=0.3, edge_probability=0.2)
    colour = _COLOUR_NAMES[int(rng.integers(len(_COLOUR_NAMES)))]
    kind = KINDS[int(rng.integers(len(KINDS)))]
    target = Query(colour=colour, kind=kind).text
    if mode < 0.6:
        include = [target] * int(rng.integers(2, 4))
        return random_placements(rng, h, w, include=include, n_objects=(0, 2), edge_probability=0.2)
    if rng.random() < 0.5 and colour in NEIGHBOURS and colour not in ("white", "black"):
        other_colour = NEIGHBOURS[colour][int(rng.integers(2))]
    else:
        others = [c for c in _COLOUR_NAMES if c != colour]
        other_colour = others[int(rng.integers(len(others)))]
    other_kind = [k for k in KINDS if k != kind][int(rng.integers(len(KINDS) - 1))]
    include = [
        target,
        Query(colour=other_colour, kind=kind).text,
        Query(colour=colour, kind=other_kind).text,
    ]
    if rng.random() < 0.5:
        include.append(Query(colour=other_colour, kind=other_kind).text)
    return random_placements(rng, h, w, include=include, n_objects=(0, 1), edge_probability=0.15)


def _shrink(rng: np.random.Generator, p: Placement) -> Placement:
    """Now and then a tiny object: 12 to 32 pixels long."""
    if rng.random() < TINY_SHARE:
        return replace(p, extent=float(rng.uniform(12, 32)), size="small")
    return p


def varied_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    occlude: float = 0.35,
    camera: float = 0.85,
    variety: Variety = PLAIN,
) -> VariedScene:
    """A random domain-randomised scene of ``height`` x ``width`` pixels (see the module doc).

    ``occlude`` is the chance that occluders are drawn, ``camera`` that camera and codec
    effects are applied; ``variety`` what else is drawn (:class:`Variety`).
    """
    placements = [_shrink(rng, p) for p in _composition(rng, height, width)]
    image = varied_background(rng, height, width)
    owner = np.full((height, width), -1, dtype=np.int8)
    n = len(placements)
    doubt = np.zeros((n, len(_COLOUR_NAMES)), dtype=bool)
    drawn = np.zeros(n, dtype=np.int64)
    objects = []
    for i, p in enumerate(placements):
        sh = shade(rng, p.colour)
        for name in sh.doubt:
            doubt[i, _COLOUR_NAMES.index(name)] = True
        style = random_style(rng, p.kind, sh.bgr, p.colour)
        if variety.people and p.kind == "person":
            style = replace(style, colours={**style.colours, "legs": trousers(rng)})
        before = image.copy()
        prims = varied_prims(rng, p.kind, wide=variety.wide_shapes, people=variety.people)
        full = draw_varied(rng, image, p, prims, style)
        x1, y1 = min(max(full[0], 0.0), width), min(max(full[1], 0.0), height)
        x2, y2 = min(max(full[2], 0.0), width), min(max(full[3], 0.0), height)
        r0, r1 = max(int(y1) - 3, 0), min(math.ceil(y2) + 3, height)
        c0, c1 = max(int(x1) - 3, 0), min(math.ceil(x2) + 3, width)
        changed = (image[r0:r1, c0:c1] != before[r0:r1, c0:c1]).any(axis=2)
        owner[r0:r1, c0:c1][changed] = i
        drawn[i] = int(changed.sum())
        area = (full[2] - full[0]) * (full[3] - full[1])
        visible = (x2 - x1) * (y2 - y1) / area if area > 0 else 0.0
        objects.append(
            SceneObject(p.kind, p.colour, p.size, (x1, y1, x2, y2), full, float(visible), p)
        )
    if variety.occluders:
        occlude = VARIED_OCCLUDE
    if n and rng.random() < occlude:
        draw = occluders.occlude if variety.occluders else _occlude
        for j in rng.choice(n, size=min(n, int(rng.integers(1, 3))), replace=False):
            draw(rng, image, owner, objects[int(j)].box)
    shown = np.array([(owner == i).sum() for i in range(n)], dtype=np.int64)
    hidden = shown < HIDDEN_BELOW * np.maximum(drawn, 1)
    if rng.random() < camera:
        smallest = min((p.extent for p in placements), default=64.0)
        camera = HARD if variety.hard_camera else MILD
        image = degrade(rng, image, smallest=smallest, camera=camera)
    scene = Scene(image=image, objects=tuple(objects), owner=owner)
    return VariedScene(scene=scene, doubt=doubt, hidden=hidden)


__all__ = [
    "NEIGHBOURS",
    "PLAIN",
    "SHADES",
    "Shade",
    "Style",
    "VariedScene",
    "Variety",
    "classify_shade",
    "draw_varied",
    "random_style",
    "shade",
    "trousers",
    "varied_prims",
    "varied_scene",
]
