"""Synthetic scenes with ground truth: coloured shapes and side-view everyday objects on varied
backgrounds.

The generator feeds three consumers: training the built-in CLIP (``streamdet.synth.train``), the
tests, and the detection benchmarks and demo, which need frames whose true boxes are known for any
prompt. Everything is drawn with OpenCV, anti-aliased, in BGR ``uint8`` like the frames streamdet
reads from video, and is cheap next to running a model on it.

A scene is described by :class:`Placement` s (what to draw where), rendered by
:func:`render_scene` into a :class:`Scene` whose :class:`SceneObject` s carry the drawn boxes.
:func:`random_scene` picks placements at random (object count, kinds, prompts that must or must not
appear); :func:`moving_video` moves them smoothly over frames.

This module is the generator's front door; its parts live beside it: the vocabulary and prompt
parsing (:mod:`streamdet.synth.vocabulary`: :func:`parse_prompt`, :class:`Query`), how each kind is
drawn (:mod:`streamdet.synth.drawing`) and the backgrounds (:mod:`streamdet.synth.backgrounds`).
Their public names are importable from here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from streamdet.synth.backgrounds import BACKGROUNDS, random_background
from streamdet.synth.drawing import Placement, approx_box, draw
from streamdet.synth.vocabulary import (
    COLOURS,
    GENERIC_NOUNS,
    KINDS,
    OBJECTS,
    SHAPES,
    SIZES,
    Query,
    parse_prompt,
)

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "GENERIC_NOUNS",
    "KINDS",
    "OBJECTS",
    "SHAPES",
    "SIZES",
    "SIZE_RANGES",
    "Placement",
    "Query",
    "Scene",
    "SceneObject",
    "moving_video",
    "parse_prompt",
    "random_background",
    "random_placement",
    "random_placements",
    "random_scene",
    "render_scene",
]

# Object extent (longest side of its box) as a fraction of the frame's shorter side, per size.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.08, 0.15), "large": (0.22, 0.40)}


@dataclass(frozen=True)
class SceneObject:
    """One drawn object with its ground truth.

    ``box`` is the drawn box (x1, y1, x2, y2) in pixels clipped to the frame; ``full_box`` the same
    before clipping, so ``visible`` (the fraction of the box area inside the frame) says how much of
    an object that crosses the frame edge is shown.
    """

    kind: str
    colour: str
    size: str
    box: tuple[float, float, float, float]
    full_box: tuple[float, float, float, float]
    visible: float
    placement: Placement


@dataclass(frozen=True)
class Scene:
    """A rendered frame (H x W x 3 uint8 BGR) and the objects drawn on it, back to front.

    ``owner`` (H x W int8) says which object each pixel shows: the index into ``objects`` of the
    last one drawn there, -1 for background. It is what per-patch training labels come from.
    """

    image: np.ndarray
    objects: tuple[SceneObject, ...]
    owner: np.ndarray | None = field(default=None, repr=False, compare=False)


def render_scene(
    background: np.ndarray,
    placements: Sequence[Placement],
    *,
    rng: np.random.Generator | None = None,
) -> Scene:
    """Draw ``placements`` (back to front) on a copy of ``background`` (H x W x 3 uint8 BGR).

    With ``rng``, each object's colour is jittered slightly so that no colour is one exact value.
    """
    if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
        raise ValueError(
            "background must be an H x W x 3 uint8 array, "
            f"but got {background.shape} {background.dtype}"
        )
    image = background.copy()
    h, w = image.shape[:2]
    owner = np.full((h, w), -1, dtype=np.int8)
    objects = []
    for i, p in enumerate(placements):
        jitter = rng.integers(-14, 15, size=3) if rng is not None else None
        before = image.copy()
        full = draw(image, p, jitter)
        x1, y1 = min(max(full[0], 0.0), w), min(max(full[1], 0.0), h)
        x2, y2 = min(max(full[2], 0.0), w), min(max(full[3], 0.0), h)
        # The pixels this object changed (its box, padded for anti-aliasing) are now its own.
        r0, r1 = max(int(y1) - 2, 0), min(math.ceil(y2) + 2, h)
        c0, c1 = max(int(x1) - 2, 0), min(math.ceil(x2) + 2, w)
        changed = (image[r0:r1, c0:c1] != before[r0:r1, c0:c1]).any(axis=2)
        owner[r0:r1, c0:c1][changed] = i
        area = (full[2] - full[0]) * (full[3] - full[1])
        visible = (x2 - x1) * (y2 - y1) / area if area > 0 else 0.0
        objects.append(
            SceneObject(p.kind, p.colour, p.size, (x1, y1, x2, y2), full, float(visible), p)
        )
    return Scene(image=image, objects=tuple(objects), owner=owner)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection area over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / small if small > 0 else 0.0


def random_placement(
    rng: np.random.Generator,
    height: int,
    width: int,
    kind: str,
    colour: str,
    size: str,
    *,
    edge_probability: float = 0.15,
) -> Placement:
    """A random position, extent, rotation and mirroring for one object.

    Shapes turn freely; side-view objects tilt at most 15 degrees. With ``edge_probability`` the
    object's centre lies near the frame edge, so that part of it is cut off.
    """
    lo, hi = SIZE_RANGES[size]
    extent = float(rng.uniform(lo, hi) * min(height, width))
    angle = float(rng.uniform(-180, 180) if kind in SHAPES else rng.uniform(-15, 15))
    if rng.random() < edge_probability:
        side = rng.integers(4)
        along = rng.uniform(0, width if side < 2 else height)
        inset = rng.uniform(-0.25, 0.25) * extent
        if side == 0:
            cx, cy = along, inset
        elif side == 1:
            cx, cy = along, height - inset
        elif side == 2:
            cx, cy = inset, along
        else:
            cx, cy = width - inset, along
    else:
        margin = extent / 2
        cx = rng.uniform(margin, max(margin, width - margin))
        cy = rng.uniform(margin, max(margin, height - margin))
    return Placement(
        kind, colour, size, (float(cx), float(cy)), extent, angle, bool(rng.random() < 0.5)
    )


def random_placements(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    n_objects: int | tuple[int, int] = (1, 4),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    sizes: Sequence[str] = SIZES,
    edge_probability: float = 0.15,
    max_overlap: float = 0.3,
) -> list[Placement]:
    """Random placements for a ``height`` x ``width`` frame; see :func:`random_scene`."""
    if isinstance(n_objects, int):
        count = n_objects
    else:
        count = int(rng.integers(n_objects[0], n_objects[1] + 1))
    excluded = [parse_prompt(t) for t in exclude]
    wanted = [
        parse_prompt(t).sample(rng, kinds=kinds, colours=colours, sizes=sizes) for t in include
    ]
    for _ in range(count):
        for _ in range(50):
            k, c, s = Query().sample(rng, kinds=kinds, colours=colours, sizes=sizes)
            if not any(q.matches_attributes(k, c, s) for q in excluded):
                wanted.append((k, c, s))
                break
    placements: list[Placement] = []
    boxes: list[tuple[float, ...]] = []
    for i in rng.permutation(len(wanted)):
        kind, colour, size = wanted[i]
        for attempt in range(20):
            p = random_placement(
                rng, height, width, kind, colour, size, edge_probability=edge_probability
            )
            box = approx_box(p)
            if attempt == 19 or all(_overlap(box, b) <= max_overlap for b in boxes):
                break
        placements.append(p)
        boxes.append(box)
    return placements


def random_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    n_objects: int | tuple[int, int] = (1, 4),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    sizes: Sequence[str] = SIZES,
    background: str | None = None,
    edge_probability: float = 0.15,
    max_overlap: float = 0.3,
) -> Scene:
    """A random scene of ``height`` x ``width`` pixels.

    ``include`` lists prompts ("a red circle", "a star") each of which adds one object it matches,
    on top of ``n_objects`` (a count, or an inclusive (low, high) range) random ones drawn from
    ``kinds`` x ``colours`` x ``sizes``. No random object matches any prompt in ``exclude``, which
    makes frames without the target and colour-only or shape-only distractors easy to ask for:
    ``include=["a red square", "a blue circle"], exclude=["a red circle"]``. Objects overlap by at
    most ``max_overlap`` of the smaller box (a best effort: after 20 tries one is placed anyway).
    With probability ``edge_probability`` an object straddles the frame edge. ``background`` is one
    of :data:`BACKGROUNDS`, random when None.
    """
    placements = random_placements(
        rng,
        height,
        width,
        n_objects=n_objects,
        include=include,
        exclude=exclude,
        kinds=kinds,
        colours=colours,
        sizes=sizes,
        edge_probability=edge_probability,
        max_overlap=max_overlap,
    )
    bg = random_background(rng, height, width, background)
    return render_scene(bg, placements, rng=rng)


def moving_video(
    rng: np.random.Generator,
    n_frames: int,
    height: int,
    width: int,
    *,
    speed: float = 3.0,
    background: str | None = None,
    **placement_kwargs: object,
) -> list[Scene]:
    """Frames of one random scene whose objects drift smoothly, for temporal-stability tests.

    Each object moves ``speed`` pixels per frame in a random direction, bouncing off the frame
    edges, and shapes turn slowly; the background stays still and each object keeps its colour.
    ``placement_kwargs`` (``n_objects``, ``include``, ``exclude``, ...) are those of
    :func:`random_scene`.
    """
    placement_kwargs.setdefault("edge_probability", 0.0)
    placements = random_placements(rng, height, width, **placement_kwargs)  # type: ignore[arg-type]
    bg = random_background(rng, height, width, background)
    directions = rng.uniform(0, 2 * math.pi, size=len(placements))
    velocities = np.stack([np.cos(directions), np.sin(directions)], axis=1) * speed
    spins = rng.uniform(-2, 2, size=len(placements))
    jitter_seed = int(rng.integers(2**31))
    frames = []
    for _ in range(n_frames):
        frames.append(render_scene(bg, placements, rng=np.random.default_rng(jitter_seed)))
        moved = []
        for j, p in enumerate(placements):
            x, y = p.center[0] + velocities[j, 0], p.center[1] + velocities[j, 1]
            half = p.extent / 2
            if not half <= x <= width - half:
                velocities[j, 0] *= -1
            if not half <= y <= height - half:
                velocities[j, 1] *= -1
            angle = p.angle + (spins[j] if p.kind in SHAPES else 0.0)
            moved.append(replace(p, center=(float(x), float(y)), angle=float(angle)))
        placements = moved
    return frames
