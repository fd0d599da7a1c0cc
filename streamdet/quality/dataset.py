"""The quality benchmark's data: generated scenes whose true boxes are known.

``streamdet.synth.scenes`` draws objects of a known vocabulary and returns their boxes, so every
prompt in every frame has exact ground truth, including the hard cases a photo set rarely
isolates: several instances of one prompt, distractors that share only the colour or only the shape
(or only the size) with the prompt, objects cut by the frame edge, and frames where nothing
matches. Videos with drifting objects measure how much boxes jitter or blink.

Ground truth: an object is a true box of a prompt when ``parse_prompt(prompt).matches(object)``.
If less than half of its box is inside the frame it is an ignore region (COCO ``iscrowd``): a box
on it is neither a hit nor a false box, and missing it costs nothing. Frames are run with their
whole prompt set at once, as a user would, so every prompt's boxes on every frame count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamdet.errors import ConfigError
from streamdet.synth.scenes import (
    BACKGROUNDS,
    COLOURS,
    OBJECTS,
    SHAPES,
    Query,
    Scene,
    moving_video,
    parse_prompt,
    random_background,
    random_placement,
    random_placements,
    render_scene,
)

#: Far from the seeds the built-in model trains and evaluates on (``streamdet.synth``).
DEFAULT_SEED = 31_415_926

#: Prompts run together on a frame, by set name. Each prompt belongs to one set.
PROMPT_SETS: dict[str, tuple[str, ...]] = {
    "shapes": ("a red circle", "a blue star", "a small yellow square"),
    "attributes": ("a triangle", "a green shape", "a large white cross"),
    "objects": ("a red car", "a person", "a purple house"),
}

#: Still-frame kinds, each built around one target prompt of the set.
FRAME_KINDS: tuple[str, ...] = ("single", "multi", "distractors", "edge", "negative")

#: Objects with less of their box inside the frame than this are ignore regions.
MIN_VISIBLE = 0.5

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass(frozen=True)
class FrameInfo:
    """One evaluated frame: the prompts run on it, what it was built for, its size."""

    image_id: int
    prompts: tuple[str, ...]
    kind: str  # one of FRAME_KINDS, or "video"
    target: str | None  # the prompt a still frame was built around; None for video frames
    width: int
    height: int


@dataclass(frozen=True)
class GtBox:
    """A true box of one prompt in one frame; ``ignore``: a region that neither hits nor misses."""

    image_id: int
    prompt: str
    box: Box
    ignore: bool = False


@dataclass(frozen=True)
class ObjectInfo:
    """One object drawn in a still frame, for the failure analysis: what it is, its true box
    (None: not visible), and whether it is an ignore region."""

    kind: str
    colour: str
    size: str
    box: Box | None
    ignore: bool = False


@dataclass(frozen=True)
class FrameScene:
    """What a still frame shows besides its truths: the background kind and every object."""

    background: str
    objects: tuple[ObjectInfo, ...]


@dataclass(frozen=True)
class Track:
    """One object of a video that matches ``prompt``: its true box in each frame, in order."""

    prompt: str
    image_ids: tuple[int, ...]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Dataset:
    """Still frames (for AP and false boxes) and video frames (for stability), with images.

    ``truths`` are the still frames' true boxes; ``video_truths`` the video frames' (the same
    objects as ``tracks``, with ignore regions), for AP on videos (``benchmarks/bench_tracking``).
    ``scenes``: per still frame, its background kind and objects (the failure analysis);
    ``notes``: facts about how the frames were made that the report should carry.
    """

    stills: tuple[FrameInfo, ...]
    videos: tuple[FrameInfo, ...]
    truths: tuple[GtBox, ...]
    tracks: tuple[Track, ...]
    images: Mapping[int, np.ndarray] = field(repr=False)
    video_truths: tuple[GtBox, ...] = ()
    scenes: Mapping[int, FrameScene] = field(default_factory=dict, repr=False)
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prompts(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for f in (*self.stills, *self.videos):
            seen.update(dict.fromkeys(f.prompts))
        return tuple(seen)


def _other_value(rng: np.random.Generator, attribute: str, value: str) -> str:
    """A different value of one attribute; kinds stay in their family (shape or object)."""
    if attribute == "colour":
        options = [c for c in COLOURS if c != value]
    elif attribute == "size":
        options = ["large" if value == "small" else "small"]
    else:
        family = SHAPES if value in SHAPES else OBJECTS
        options = [k for k in family if k != value]
    return str(rng.choice(options))


def near_misses(rng: np.random.Generator, query: Query, avoid: Sequence[Query]) -> list[str]:
    """One distractor per attribute the query names, differing from it in that attribute only.

    For "a red circle": a red non-circle (colour only) and a non-red circle (shape only). Each is
    returned as a fully specified prompt ("a small red square") that matches none of ``avoid``.
    """
    out = []
    for attribute in ("colour", "kind", "size"):
        if getattr(query, attribute) is None:
            continue
        for _ in range(50):
            kind, colour, size = query.sample(rng)
            attrs = {"kind": kind, "colour": colour, "size": size}
            attrs[attribute] = _other_value(rng, attribute, attrs[attribute])
            if not any(q.matches_attributes(**attrs) for q in avoid):
                out.append(Query(**attrs).text)
                break
    return out


def _random_scene(
    rng: np.random.Generator, height: int, width: int, **placement_kwargs: Any
) -> tuple[Scene, str]:
    """``synth.scenes.random_scene`` with its background kind: the same random draws in the same
    order (placements, the kind, the background, the colour jitter), so the same frame."""
    placements = random_placements(rng, height, width, **placement_kwargs)
    background = str(rng.choice(BACKGROUNDS))
    image = random_background(rng, height, width, background)
    return render_scene(image, placements, rng=rng), background


def _scene_edge(
    rng: np.random.Generator, target: str, height: int, width: int
) -> tuple[Scene, str]:
    """The target straddles the frame edge with 50-95% of its box inside; others lie inside."""
    others = random_placements(
        rng, height, width, n_objects=(1, 3), exclude=[target], edge_probability=0.0
    )
    kind, colour, size = parse_prompt(target).sample(rng)
    background_kind = str(rng.choice(BACKGROUNDS))  # as random_background picks it
    background = random_background(rng, height, width, background_kind)
    seed = int(rng.integers(2**31))
    scene = None
    for _ in range(30):
        place = random_placement(rng, height, width, kind, colour, size, edge_probability=1.0)
        # Drawn last, so no other object covers it.
        scene = render_scene(background, [*others, place], rng=np.random.default_rng(seed))
        if MIN_VISIBLE <= scene.objects[-1].visible <= 0.95:
            break
    assert scene is not None
    return scene, background_kind


def make_scene(
    rng: np.random.Generator,
    kind: str,
    target: str,
    prompts: Sequence[str],
    height: int,
    width: int,
) -> tuple[Scene, str]:
    """A still frame of ``kind`` built around ``target``, one of the ``prompts`` run together,
    and its background kind."""
    query = parse_prompt(target)
    if kind == "single":
        return _random_scene(
            rng, height, width, include=[target], exclude=[target], n_objects=(1, 3)
        )
    if kind == "multi":
        count = int(rng.integers(2, 4))
        return _random_scene(
            rng, height, width, include=[target] * count, exclude=[target], n_objects=(0, 2)
        )
    if kind == "distractors":
        include = [target, *near_misses(rng, query, [query])]
        return _random_scene(
            rng, height, width, include=include, exclude=[target], n_objects=(0, 1)
        )
    if kind == "edge":
        return _scene_edge(rng, target, height, width)
    if kind == "negative":
        avoid = [parse_prompt(p) for p in prompts]
        include = near_misses(rng, query, avoid)
        return _random_scene(
            rng, height, width, include=include, exclude=list(prompts), n_objects=(1, 3)
        )
    raise ConfigError(f"frame kind must be one of {FRAME_KINDS}, but got {kind!r}")


def frame_scene(scene: Scene, background: str) -> FrameScene:
    """The analysis' view of a training-generator scene."""
    objects = tuple(
        ObjectInfo(o.kind, o.colour, o.size, o.box, o.visible < MIN_VISIBLE)
        for o in scene.objects
        if o.visible > 0
    )
    return FrameScene(background, objects)


def ground_truth(image_id: int, scene: Scene, prompts: Sequence[str]) -> list[GtBox]:
    """True boxes of every prompt in a scene; objects mostly outside the frame are ignored."""
    out = []
    for prompt in prompts:
        query = parse_prompt(prompt)
        for obj in scene.objects:
            if query.matches(obj) and obj.visible > 0:
                out.append(GtBox(image_id, prompt, obj.box, ignore=obj.visible < MIN_VISIBLE))
    return out


def video_tracks(
    image_ids: Sequence[int], scenes: Sequence[Scene], prompts: Sequence[str]
) -> list[Track]:
    """One track per (object, prompt it matches); object j is the same in every frame."""
    tracks = []
    for prompt in prompts:
        query = parse_prompt(prompt)
        for j, obj in enumerate(scenes[0].objects):
            if query.matches(obj):
                boxes = tuple(s.objects[j].box for s in scenes)
                tracks.append(Track(prompt, tuple(image_ids), boxes))
    return tracks


def build_dataset(
    prompt_sets: Mapping[str, Sequence[str]],
    *,
    kinds: Sequence[str] = FRAME_KINDS,
    frames_per_kind: int = 4,
    videos_per_set: int = 2,
    video_frames: int = 24,
    seed: int = DEFAULT_SEED,
    height: int = 360,
    width: int = 640,
) -> Dataset:
    """Generate the benchmark in memory, deterministically from ``seed``.

    Each frame has its own random stream keyed by (seed, set, prompt, kind, index), so changing the
    number of frames adds or removes frames without changing the others.
    """
    stills: list[FrameInfo] = []
    videos: list[FrameInfo] = []
    truths: list[GtBox] = []
    tracks: list[Track] = []
    video_truths: list[GtBox] = []
    images: dict[int, np.ndarray] = {}
    frame_scenes: dict[int, FrameScene] = {}
    next_id = 1
    for s, prompts in enumerate(prompt_sets.values()):
        prompts = tuple(prompts)
        for p, target in enumerate(prompts):
            for kind in kinds:
                for i in range(frames_per_kind):
                    rng = np.random.default_rng([seed, s, p, FRAME_KINDS.index(kind), i])
                    scene, background = make_scene(rng, kind, target, prompts, height, width)
                    stills.append(FrameInfo(next_id, prompts, kind, target, width, height))
                    truths.extend(ground_truth(next_id, scene, prompts))
                    images[next_id] = scene.image
                    frame_scenes[next_id] = frame_scene(scene, background)
                    next_id += 1
        for v in range(videos_per_set):
            rng = np.random.default_rng([seed, s, len(prompts), v])
            include = list(rng.choice(prompts, size=min(2, len(prompts)), replace=False))
            scenes = moving_video(
                rng, video_frames, height, width, include=include, n_objects=(0, 2)
            )
            ids = list(range(next_id, next_id + len(scenes)))
            for image_id, scene in zip(ids, scenes, strict=True):
                videos.append(FrameInfo(image_id, prompts, "video", None, width, height))
                video_truths.extend(ground_truth(image_id, scene, prompts))
                images[image_id] = scene.image
            tracks.extend(video_tracks(ids, scenes, prompts))
            next_id += len(scenes)
    notes = {"generator": "train", "module": "streamdet.synth.scenes"}
    return Dataset(
        tuple(stills),
        tuple(videos),
        tuple(truths),
        tuple(tracks),
        images,
        video_truths=tuple(video_truths),
        scenes=frame_scenes,
        notes=notes,
    )


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Counts that say what the numbers were measured on."""
    return {
        **dataset.notes,
        "still_frames": len(dataset.stills),
        "frames_by_kind": dict(Counter(f.kind for f in dataset.stills)),
        "true_boxes": sum(not t.ignore for t in dataset.truths),
        "ignored_boxes": sum(t.ignore for t in dataset.truths),
        "video_frames": len(dataset.videos),
        "tracks": len(dataset.tracks),
    }
