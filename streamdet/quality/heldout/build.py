"""The held-out benchmark dataset: stills and videos in ``streamdet.quality.dataset.Dataset``.

Same prompt sets, frame kinds, counts, frame size and id layout as the training generator's
``build_dataset``, so the two run through one evaluation and their numbers sit side by side.
Every frame has its own random stream keyed by (seed, a held-out tag, set, prompt, kind, index):
deterministic per seed, and never the training generator's streams.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from streamdet.quality.dataset import (
    DEFAULT_SEED,
    FRAME_KINDS,
    Dataset,
    FrameInfo,
    FrameScene,
    GtBox,
    ObjectInfo,
    Track,
)
from streamdet.quality.heldout.backgrounds import BACKGROUNDS, background
from streamdet.quality.heldout.degrade import h264, jpeg, light, optics, sample_camera
from streamdet.quality.heldout.frames import make_heldout_scene, place
from streamdet.quality.heldout.raster import Pose
from streamdet.quality.heldout.scenes import HeldoutScene, Item, render
from streamdet.synth.vocabulary import SHAPES, Query, parse_prompt

#: Mixed into every random stream, so held-out frames never share one with the training side.
_TAG = 0x4E1D


def ground_truth(image_id: int, scene: HeldoutScene, prompts: Sequence[str]) -> list[GtBox]:
    """True boxes of every prompt; objects hidden or mostly outside the frame are ignored."""
    out = []
    for prompt in prompts:
        query = parse_prompt(prompt)
        for obj in scene.objects:
            if obj.box is not None and query.matches_attributes(obj.kind, obj.colour, obj.size):
                out.append(GtBox(image_id, prompt, obj.box, ignore=obj.ignore))
    return out


def frame_scene(scene: HeldoutScene) -> FrameScene:
    objects = tuple(
        ObjectInfo(o.kind, o.colour, o.size, o.box, o.ignore)
        for o in scene.objects
        if o.box is not None
    )
    return FrameScene(scene.background, objects)


def still_image(rng: np.random.Generator, scene: HeldoutScene) -> np.ndarray:
    """The scene through a random camera and JPEG: H x W x 3 uint8 BGR."""
    camera = sample_camera(rng)
    rgb = optics(light(scene.image, camera), camera, rng)
    return jpeg(np.ascontiguousarray(rgb[..., ::-1]), camera.quality)


def moving_video(
    rng: np.random.Generator,
    n_frames: int,
    height: int,
    width: int,
    include: Sequence[str],
    n_others: int,
) -> tuple[list[HeldoutScene], list, str]:
    """Objects drifting 2-4 px a frame (bouncing off the edges, shapes turning) over a still
    background, under a slowly flickering light, through H.264; no occluders, so every object is
    followed in every frame. Returns the scenes, the frames (BGR uint8) and the codec used."""
    wanted = [parse_prompt(t).sample(rng) for t in include]
    wanted += [Query().sample(rng) for _ in range(n_others)]
    items = place(rng, wanted, height, width, [False] * len(wanted))
    kind = str(rng.choice(BACKGROUNDS))
    bg = background(rng, height, width, kind)
    camera = sample_camera(rng)
    speed = rng.uniform(2.0, 4.0, len(items))
    heading = rng.uniform(0, 2 * math.pi, len(items))
    velocity = np.stack([np.cos(heading), np.sin(heading)], 1) * speed[:, None]
    spin = rng.uniform(-2.5, 2.5, len(items))
    phase = rng.uniform(0, 2 * math.pi)
    texture_seed = int(rng.integers(2**31))
    scenes, frames = [], []
    for t in range(n_frames):
        scene = render(bg, kind, items, seed=texture_seed)
        scenes.append(scene)
        flicker = 1.0 + 0.04 * math.sin(phase + t * 0.7)
        rgb = optics(light(scene.image, camera, flicker), camera, rng)
        frames.append(np.ascontiguousarray(rgb[..., ::-1]))
        moved = []
        for j, it in enumerate(items):
            x, y = it.pose.center[0] + velocity[j, 0], it.pose.center[1] + velocity[j, 1]
            half = it.pose.extent / 2
            if not half <= x <= width - half:
                velocity[j, 0] *= -1
            if not half <= y <= height - half:
                velocity[j, 1] *= -1
            angle = it.pose.angle + (spin[j] if it.kind in SHAPES else 0.0)
            pose = Pose(
                (float(x), float(y)), it.pose.extent, float(angle), it.pose.stretch, it.pose.flip
            )
            moved.append(Item(it.kind, it.colour, it.size, pose, it.look))
        items = moved
    frames, codec = h264(frames, camera.crf)
    return scenes, frames, codec


def build_heldout_dataset(
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
    """The held-out benchmark in memory, deterministically from ``seed`` (see the module)."""
    stills: list[FrameInfo] = []
    videos: list[FrameInfo] = []
    truths: list[GtBox] = []
    tracks: list[Track] = []
    images: dict[int, np.ndarray] = {}
    scenes: dict[int, FrameScene] = {}
    codecs: set[str] = set()
    next_id = 1
    for s, prompts in enumerate(prompt_sets.values()):
        prompts = tuple(prompts)
        for p, target in enumerate(prompts):
            for kind in kinds:
                for i in range(frames_per_kind):
                    rng = np.random.default_rng([seed, _TAG, s, p, FRAME_KINDS.index(kind), i])
                    scene = make_heldout_scene(rng, kind, target, prompts, height, width)
                    stills.append(FrameInfo(next_id, prompts, kind, target, width, height))
                    truths.extend(ground_truth(next_id, scene, prompts))
                    images[next_id] = still_image(rng, scene)
                    scenes[next_id] = frame_scene(scene)
                    next_id += 1
        for v in range(videos_per_set):
            rng = np.random.default_rng([seed, _TAG, s, len(prompts), v])
            include = list(rng.choice(prompts, size=min(2, len(prompts)), replace=False))
            drawn, frames, codec = moving_video(
                rng, video_frames, height, width, include, int(rng.integers(0, 3))
            )
            codecs.add(codec)
            ids = list(range(next_id, next_id + len(drawn)))
            for image_id, frame in zip(ids, frames, strict=True):
                videos.append(FrameInfo(image_id, prompts, "video", None, width, height))
                images[image_id] = frame
            tracks.extend(_tracks(ids, drawn, prompts))
            next_id += len(drawn)
    notes = {
        "generator": "heldout",
        "module": "streamdet.quality.heldout",
        "video_codec": "/".join(sorted(codecs)) or None,
    }
    return Dataset(
        tuple(stills),
        tuple(videos),
        tuple(truths),
        tuple(tracks),
        images,
        scenes=scenes,
        notes=notes,
    )


def _tracks(
    image_ids: Sequence[int], scenes: Sequence[HeldoutScene], prompts: Sequence[str]
) -> list[Track]:
    """One track per (object, prompt it matches), its drawn box in every frame."""
    out = []
    for prompt in prompts:
        query = parse_prompt(prompt)
        for j, obj in enumerate(scenes[0].objects):
            if not query.matches_attributes(obj.kind, obj.colour, obj.size):
                continue
            boxes = tuple(s.objects[j].box or s.objects[j].full_box for s in scenes)
            out.append(Track(prompt, tuple(image_ids), boxes))
    return out


__all__ = ["build_heldout_dataset"]
