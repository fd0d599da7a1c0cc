"""Held-out scenes: objects with their own look, placed, drawn, occluded and filmed.

An :class:`Item` is one object to draw (kind, colour name, size word, pose and :class:`Look`:
its geometry and shades, fixed so that a video's object stays itself from frame to frame).
:func:`render` draws items over a background, then occluders (poles, branches, rocks in muted
colours) on top, and returns a :class:`HeldoutScene` with the true box of every object measured
on its drawn pixels: the bounding box of the pixels that show it (mask coverage >= 0.5, inside
the frame, not covered by anything drawn later).

Ignore rules (the benchmark neither requires nor punishes a box there): less than
``MIN_VISIBLE`` of the object's full box inside the frame (the training generator's rule), or
more than ``MAX_OCCLUDED`` of its in-frame pixels hidden behind later objects or occluders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamdet.quality.dataset import MIN_VISIBLE
from streamdet.quality.heldout.backgrounds import hsv
from streamdet.quality.heldout.colours import sample_shade
from streamdet.quality.heldout.geometry import Capsule, Ellipse, Polygon
from streamdet.quality.heldout.raster import Pose, Raster, blend, frame_mask, mask_box, rasterise
from streamdet.quality.heldout.shapes import Part, aspect, make_kind
from streamdet.synth.vocabulary import SHAPES

Box = tuple[float, float, float, float]

#: An object with more of its in-frame pixels hidden than this is an ignore region.
MAX_OCCLUDED = 0.3
#: Longest side of an object as a share of the frame's shorter side, per size word. Close to the
#: training generator's (small 0.08-0.15, large 0.22-0.40), so the words mean the same.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.07, 0.15), "large": (0.22, 0.42)}
#: Shapes that may be stretched without becoming another shape (a stretched circle is an ellipse).
_STRETCHABLE = frozenset({"triangle", "star", "cross"})


@dataclass(frozen=True)
class Look:
    """How one object looks: parts, an RGB colour per role, shading across it (strength, angle)
    and the amplitude of a fine surface texture."""

    parts: tuple[Part, ...]
    colours: Mapping[str, np.ndarray] = field(repr=False)
    shading: tuple[float, float] = (0.0, 0.0)
    texture: float = 0.0


@dataclass(frozen=True)
class Item:
    """One object to draw; ``colour`` and ``size`` are vocabulary words ("" for occluders)."""

    kind: str
    colour: str
    size: str
    pose: Pose
    look: Look


@dataclass(frozen=True)
class DrawnObject:
    """A drawn vocabulary object and its truth.

    box: bounding box of its visible pixels in the frame (None: none visible); full_box: of its
    whole mask, past the frame edge too; visible: the share of ``full_box`` inside the frame;
    occluded: the share of its in-frame pixels hidden by things drawn later.
    """

    kind: str
    colour: str
    size: str
    box: Box | None
    full_box: Box
    visible: float
    occluded: float

    @property
    def ignore(self) -> bool:
        return self.visible < MIN_VISIBLE or self.occluded > MAX_OCCLUDED


@dataclass(frozen=True)
class HeldoutScene:
    """A drawn frame before the camera (``image``: RGB float32 0-255) and its objects."""

    image: np.ndarray = field(repr=False)
    objects: tuple[DrawnObject, ...]
    background: str
    occluders: int


def _part_colours(rng: np.random.Generator, main: np.ndarray) -> dict[str, np.ndarray]:
    """Colours of the parts that do not take the object's colour, drawn per object."""
    return {
        "main": main,
        "shade": main * 0.7,
        "tyre": hsv(0, 0, rng.uniform(0.07, 0.2)),
        "hub": hsv(0, 0, rng.uniform(0.5, 0.7)),
        "glass": hsv(rng.uniform(185, 210), rng.uniform(0.1, 0.25), rng.uniform(0.55, 0.8)),
        "skin": hsv(rng.uniform(18, 34), rng.uniform(0.25, 0.55), rng.uniform(0.45, 0.9)),
        "trunk": hsv(rng.uniform(18, 34), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.38)),
        "door": hsv(rng.uniform(15, 40), rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.32)),
        "roof": hsv(rng.uniform(0, 30), rng.uniform(0.1, 0.4), rng.uniform(0.18, 0.35)),
        "legs": hsv(rng.uniform(208, 226), rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.35)),
    }


def make_look(rng: np.random.Generator, kind: str, colour: str) -> Look:
    """A fresh geometry and shade for one object of ``kind`` and colour name ``colour``."""
    shading = (float(rng.uniform(0.0, 0.3)), float(rng.uniform(0, 2 * math.pi)))
    colours = _part_colours(rng, sample_shade(rng, colour))
    return Look(make_kind(rng, kind), colours, shading, float(rng.uniform(0.0, 0.06)))


def occluder_look(rng: np.random.Generator, extent: float) -> Look:
    """A pole, a leafy branch or a rock in a muted colour: parts in unit coordinates."""
    style = rng.integers(3)
    if style == 0:
        width = float(rng.uniform(0.04, 0.09))
        parts = (
            Part("main", Polygon.of([[-width, -0.5], [width, -0.5], [width, 0.5], [-width, 0.5]])),
        )
        colour = hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.15), rng.uniform(0.3, 0.6))
    elif style == 1:
        blobs = [Part("main", Capsule(-0.5, 0.0, 0.5, float(rng.uniform(-0.1, 0.1)), 0.03))]
        for _ in range(int(rng.integers(5, 9))):
            x, y = rng.uniform(-0.45, 0.45), rng.uniform(-0.12, 0.12)
            blobs.append(
                Part("main", Ellipse(x, y, rng.uniform(0.06, 0.12), rng.uniform(0.04, 0.08)))
            )
        parts = tuple(blobs)
        colour = hsv(rng.uniform(60, 110), rng.uniform(0.2, 0.35), rng.uniform(0.15, 0.35))
    else:
        n = int(rng.integers(7, 11))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.3, 0.5, n)
        parts = (
            Part(
                "main",
                Polygon.of(np.stack([radii * np.cos(angles), 0.6 * radii * np.sin(angles)], 1)),
            ),
        )
        colour = hsv(rng.uniform(20, 50), rng.uniform(0.05, 0.25), rng.uniform(0.3, 0.55))
    return Look(parts, {"main": colour, "shade": colour * 0.7}, (0.25, 1.0), 0.1)


def random_pose(
    rng: np.random.Generator, kind: str, size: str, height: int, width: int, *, edge: bool = False
) -> Pose:
    """A pose for one object: inside the frame, or with ``edge`` its centre near an edge."""
    lo, hi = SIZE_RANGES[size]
    extent = float(rng.uniform(lo, hi) * min(height, width))
    shape = kind in SHAPES
    angle = float(rng.uniform(-180, 180) if shape else rng.uniform(-12, 12))
    if kind in _STRETCHABLE:
        stretch = (1.0, float(rng.uniform(0.8, 1.0)))
    elif shape:
        stretch = (1.0, 1.0)
    else:
        stretch = (float(rng.uniform(0.9, 1.1)), 1.0)
    if edge:
        side = int(rng.integers(4))
        inset = float(rng.uniform(0.05, 0.3)) * extent
        along = float(rng.uniform(0.1, 0.9)) * (width if side < 2 else height)
        cx, cy = [(along, inset), (along, height - inset), (inset, along), (width - inset, along)][
            side
        ]
    else:
        m = extent / 2
        cx = float(rng.uniform(m, max(m, width - m)))
        cy = float(rng.uniform(m, max(m, height - m)))
    return Pose((cx, cy), extent, angle, stretch, bool(rng.random() < 0.5))


def approx_box(item: Item) -> Box:
    """The object's box from its pose and aspect, without drawing (for placing things apart)."""
    aw, ah = aspect(item.look.parts)
    p = item.pose
    aw, ah = aw * p.stretch[0], ah * p.stretch[1]
    c, s = abs(math.cos(math.radians(p.angle))), abs(math.sin(math.radians(p.angle)))
    bw, bh = p.extent * (aw * c + ah * s), p.extent * (aw * s + ah * c)
    return (p.center[0] - bw / 2, p.center[1] - bh / 2, p.center[0] + bw / 2, p.center[1] + bh / 2)


def _colour_field(raster: Raster, pose: Pose, look: Look, rng: np.random.Generator) -> dict:
    """Per-role colours over the raster window: shading and texture on the object's colour."""
    h, w = raster.coverage.shape[1:]
    strength, angle = look.shading
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = max(pose.extent, 1.0)
    ramp = ((xs - w / 2) * math.cos(angle) + (ys - h / 2) * math.sin(angle)) / scale
    light = 1.0 + strength * ramp
    if look.texture > 0:
        light = light * (1.0 + rng.normal(0.0, look.texture, (h, w)).astype(np.float32))
    out = dict(look.colours)
    for role in ("main", "shade"):
        if role in raster.roles:
            out[role] = np.clip(
                np.asarray(look.colours[role])[None, None] * light[..., None], 0, 255
            )
    return out


def render(
    background: np.ndarray,
    kind: str,
    items: Sequence[Item],
    occluders: Sequence[Item] = (),
    *,
    seed: int = 0,
) -> HeldoutScene:
    """Draw ``items`` back to front, then ``occluders``, over ``background`` (RGB float32)."""
    image = background.copy()
    height, width = image.shape[:2]
    rng = np.random.default_rng(seed)  # surface texture only
    masks: list[np.ndarray] = []
    full: list[Box] = []
    hidden = np.zeros((height, width), np.int16)  # index + 1 of the topmost thing at each pixel
    for n, item in enumerate([*items, *occluders]):
        raster = rasterise(item.look.parts, item.pose)
        blend(image, raster, _colour_field(raster, item.pose, item.look, rng))
        mask = frame_mask(raster, height, width)
        hidden[mask] = n + 1
        if n < len(items):
            masks.append(mask)
            full.append(raster.mask_box() or (0.0, 0.0, 0.0, 0.0))
    objects = []
    for i, (item, mask, fb) in enumerate(zip(items, masks, full, strict=True)):
        shown = hidden == i + 1
        box = mask_box(shown)
        area = (fb[2] - fb[0]) * (fb[3] - fb[1])
        x1, y1 = min(max(fb[0], 0.0), width), min(max(fb[1], 0.0), height)
        x2, y2 = min(max(fb[2], 0.0), width), min(max(fb[3], 0.0), height)
        visible = (x2 - x1) * (y2 - y1) / area if area > 0 else 0.0
        pixels = int(mask.sum())
        occluded = 1.0 - int(shown.sum()) / pixels if pixels else 1.0
        objects.append(
            DrawnObject(item.kind, item.colour, item.size, box, fb, float(visible), occluded)
        )
    return HeldoutScene(image, tuple(objects), kind, len(occluders))
