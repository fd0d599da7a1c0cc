"""The held-out benchmark's frames: the training benchmark's frame kinds, drawn our way.

The same frame kinds as ``streamdet.quality.dataset`` (one target; several; the target among
colour-only, shape-only and size-only distractors; the target crossing the frame edge; no target
but its near misses) and the same prompt sets, so each number has a twin on the training
generator. On top, as real footage has them: random objects crossing the edges, occluders over a
target in about a third of the frames with a target (hidden targets become ignore regions), and
the camera (``degrade``) on every frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamdet.errors import ConfigError
from streamdet.quality.dataset import FRAME_KINDS, near_misses
from streamdet.quality.heldout.backgrounds import BACKGROUNDS, background
from streamdet.quality.heldout.raster import Pose
from streamdet.quality.heldout.scenes import (
    HeldoutScene,
    Item,
    approx_box,
    make_look,
    occluder_look,
    random_pose,
    render,
)
from streamdet.synth.vocabulary import Query, parse_prompt

#: Share of frames with a target that get an occluder over one of their targets.
OCCLUSION_PROBABILITY = 0.35
#: Share of random (non-target) objects placed across the frame edge.
EDGE_PROBABILITY = 0.15
_MAX_OVERLAP = 0.25


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / small if small > 0 else 0.0


def _visible_share(box: Sequence[float], height: int, width: int) -> float:
    area = (box[2] - box[0]) * (box[3] - box[1])
    x1, y1 = min(max(box[0], 0), width), min(max(box[1], 0), height)
    x2, y2 = min(max(box[2], 0), width), min(max(box[3], 0), height)
    return (x2 - x1) * (y2 - y1) / area if area > 0 else 0.0


def place(
    rng: np.random.Generator,
    wanted: Sequence[tuple[str, str, str]],
    height: int,
    width: int,
    edge: Sequence[bool],
) -> list[Item]:
    """Items for (kind, colour, size) triples, apart from each other (at most 25% of the smaller
    box overlapping, best effort); ``edge[i]``: item i crosses the frame edge with 55-92% of its
    box inside."""
    items: list[Item] = []
    boxes: list[Sequence[float]] = []
    for (kind, colour, size), on_edge in zip(wanted, edge, strict=True):
        look = make_look(rng, kind, colour)
        item = None
        for attempt in range(30):
            last = attempt == 29
            pose = random_pose(rng, kind, size, height, width, edge=on_edge)
            item = Item(kind, colour, size, pose, look)
            box = approx_box(item)
            if on_edge and not last and not 0.55 <= _visible_share(box, height, width) <= 0.92:
                continue
            if last or all(_overlap(box, b) <= _MAX_OVERLAP for b in boxes):
                break
        assert item is not None
        items.append(item)
        boxes.append(approx_box(item))
    return items


def _random_others(
    rng: np.random.Generator, count: int, exclude: Sequence[str]
) -> list[tuple[str, str, str]]:
    excluded = [parse_prompt(t) for t in exclude]
    out = []
    for _ in range(count):
        for _ in range(50):
            k, c, s = Query().sample(rng)
            if not any(q.matches_attributes(k, c, s) for q in excluded):
                out.append((k, c, s))
                break
    return out


def _occluders(
    rng: np.random.Generator, items: Sequence[Item], targets: Sequence[int], height: int, width: int
) -> list[Item]:
    """An occluder over one random target (sometimes), placed to cover a part of it."""
    if not targets or rng.random() >= OCCLUSION_PROBABILITY:
        return []
    target = items[int(rng.choice(targets))]
    x1, y1, x2, y2 = approx_box(target)
    extent = float(max(x2 - x1, y2 - y1) * rng.uniform(0.8, 1.6))
    cx = float(rng.uniform(x1, x2))
    cy = float(rng.uniform(y1, y2))
    pose = Pose((cx, cy), extent, float(rng.uniform(-90, 90)))
    return [Item("occluder", "", "", pose, occluder_look(rng, extent))]


def make_heldout_scene(
    rng: np.random.Generator,
    kind: str,
    target: str,
    prompts: Sequence[str],
    height: int,
    width: int,
) -> HeldoutScene:
    """A still frame of ``kind`` (one of FRAME_KINDS) built around ``target``."""
    query = parse_prompt(target)
    sample = query.sample
    if kind == "single":
        wanted, edge = [sample(rng)], [False]
        wanted += _random_others(rng, int(rng.integers(1, 4)), [target])
    elif kind == "multi":
        count = int(rng.integers(2, 4))
        wanted, edge = [sample(rng) for _ in range(count)], [False] * count
        wanted += _random_others(rng, int(rng.integers(0, 3)), [target])
    elif kind == "distractors":
        misses = [parse_prompt(t) for t in near_misses(rng, query, [query])]
        wanted = [sample(rng), *(q.sample(rng) for q in misses)]
        edge = [False] * len(wanted)
        wanted += _random_others(rng, int(rng.integers(0, 2)), [target])
    elif kind == "edge":
        wanted, edge = [sample(rng)], [True]
        wanted += _random_others(rng, int(rng.integers(1, 4)), [target])
        edge += [False] * (len(wanted) - 1)
    elif kind == "negative":
        avoid = [parse_prompt(p) for p in prompts]
        wanted = [parse_prompt(t).sample(rng) for t in near_misses(rng, query, avoid)]
        wanted += _random_others(rng, int(rng.integers(1, 4)), list(prompts))
        edge = []
    else:
        raise ConfigError(f"frame kind must be one of {FRAME_KINDS}, but got {kind!r}")
    order = rng.permutation(len(wanted))
    wanted = [wanted[i] for i in order]
    flags = [edge[i] if i < len(edge) else bool(rng.random() < EDGE_PROBABILITY) for i in order]
    items = place(rng, wanted, height, width, flags)
    targets = [
        i for i, it in enumerate(items) if query.matches_attributes(it.kind, it.colour, it.size)
    ]
    occluders = _occluders(rng, items, targets, height, width)
    bg_kind = str(rng.choice(BACKGROUNDS))
    bg = background(rng, height, width, bg_kind)
    return render(bg, bg_kind, items, occluders, seed=int(rng.integers(2**31)))
