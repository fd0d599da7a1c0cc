"""Detection quality on generated scenes whose true boxes are known: AP, false boxes, stability.

    python benchmarks/quality.py                    # full setting: every config
    python benchmarks/quality.py --quick            # CI: small dataset, calibrated vs reference
    python benchmarks/quality.py --check-targets    # exit 1 when a target is missed

Why generated scenes: ``streamdet.synth.scenes`` draws objects of a known vocabulary and returns
their boxes, so every prompt in every frame has exact ground truth, including the hard cases a
photo set rarely isolates: several instances of one prompt, distractors that share only the colour
or only the shape (or only the size) with the prompt, objects cut by the frame edge, and frames
where nothing matches. Videos with drifting objects measure how much boxes jitter or blink.

Ground truth: an object is a true box of a prompt when ``parse_prompt(prompt).matches(object)``.
If less than half of its box is inside the frame it is an ignore region (COCO ``iscrowd``): a box
on it is neither a hit nor a false box, and missing it costs nothing. Frames are run with their
whole prompt set at once, as a user would, so every prompt's boxes on every frame count.

Metrics: AP50 and AP50:95 overall and per prompt by pycocotools; false boxes per frame over the
(frame, prompt) pairs where the frame has no object of the prompt; on videos, per true object, the
frame-to-frame change of the matched box relative to the true box (jitter, in box sizes), the
fraction of frame pairs where its box appears or disappears (blink) and of frames where it is found;
and milliseconds per frame. Results go to JSON; a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import shlex
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.config import DEFAULT_MODEL
from streamdet.detect.detector import Detector
from streamdet.errors import ConfigError, MissingDependencyError, StreamdetError
from streamdet.machine import machine_info
from streamdet.synth.scenes import (
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
    random_scene,
    render_scene,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Far from the seeds the built-in model trains and evaluates on (0.., +1000, +2000, 20_261_123).
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
#: A tracked object counts as found in a video frame when a box overlaps it by more than this.
TRACK_IOU = 0.3

#: Targets of the issue, checked on the ``calibrated`` and ``reference`` configs.
TARGET_AP50 = 0.7
TARGET_AP50_RATIO = 2.0
TARGET_FALSE_BOXES = 0.05

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


# ----------------------------------------------------------------------------------------------
# Records


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
class DetBox:
    """One box the detector returned for one prompt in one frame."""

    image_id: int
    prompt: str
    box: Box
    score: float


@dataclass(frozen=True)
class Track:
    """One object of a video that matches ``prompt``: its true box in each frame, in order."""

    prompt: str
    image_ids: tuple[int, ...]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class Dataset:
    """Still frames (for AP and false boxes) and video frames (for stability), with images."""

    stills: tuple[FrameInfo, ...]
    videos: tuple[FrameInfo, ...]
    truths: tuple[GtBox, ...]
    tracks: tuple[Track, ...]
    images: Mapping[int, np.ndarray] = field(repr=False)

    @property
    def prompts(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for f in (*self.stills, *self.videos):
            seen.update(dict.fromkeys(f.prompts))
        return tuple(seen)


@dataclass(frozen=True)
class Config:
    """One detector setting to compare; ``patch`` comes from the command line for all of them."""

    name: str
    scoring: str = "calibrated"
    window: int = 4
    stride: int = 1
    scales: tuple[int, ...] | None = None  # extra window sizes; None: the model's default
    method: str = "windows"
    patch: int | None = None  # None: the command line's --patch
    overhang: bool | None = None  # None: the model's default
    peak_ratio: float | None = None  # None: the model's default
    threshold: float | None = None  # None: the model's default
    refine: bool | None = None  # sub-cell box edges; None: the model's default
    dense: bool | None = None  # fine heatmaps from patch tokens; None: the model's default
    frame_sizes: bool = True  # size words as sizes in the frame (streamdet.detect.sizes)
    verify: bool | None = None  # crops around boxes scored again; None: the model's default


@dataclass(frozen=True)
class ApResult:
    """AP50 and AP50:95 overall and per prompt; None where a prompt has no true box."""

    ap50: float | None
    ap50_95: float | None
    per_prompt: Mapping[str, tuple[float | None, float | None]]


@dataclass(frozen=True)
class FalseBoxes:
    """Boxes of a prompt on frames without any object of that prompt, per such frame."""

    per_frame: float | None
    frames: int
    boxes: int
    per_prompt: Mapping[str, float | None]


@dataclass(frozen=True)
class Stability:
    """Frame-to-frame behaviour of the boxes on true objects in videos.

    jitter: mean norm of the change, between consecutive frames, of (detected - true) box centre
    and size, divided by the true box size (sqrt of its area): 0 when the box follows the object.
    centre_jitter, size_jitter: the centre and the width/height parts of that change alone.
    blink: fraction of consecutive frame pairs where the object's box appears or disappears.
    found: fraction of frames where the object has a box (IoU > TRACK_IOU).
    """

    jitter: float | None
    centre_jitter: float | None
    size_jitter: float | None
    blink: float | None
    found: float | None
    tracks: int
    pairs: int


# ----------------------------------------------------------------------------------------------
# Dataset


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


def _scene_edge(rng: np.random.Generator, target: str, height: int, width: int) -> Scene:
    """The target straddles the frame edge with 50-95% of its box inside; others lie inside."""
    others = random_placements(
        rng, height, width, n_objects=(1, 3), exclude=[target], edge_probability=0.0
    )
    kind, colour, size = parse_prompt(target).sample(rng)
    background = random_background(rng, height, width)
    seed = int(rng.integers(2**31))
    scene = None
    for _ in range(30):
        place = random_placement(rng, height, width, kind, colour, size, edge_probability=1.0)
        # Drawn last, so no other object covers it.
        scene = render_scene(background, [*others, place], rng=np.random.default_rng(seed))
        if MIN_VISIBLE <= scene.objects[-1].visible <= 0.95:
            break
    assert scene is not None
    return scene


def make_scene(
    rng: np.random.Generator,
    kind: str,
    target: str,
    prompts: Sequence[str],
    height: int,
    width: int,
) -> Scene:
    """A still frame of ``kind`` built around ``target``, one of the ``prompts`` run together."""
    query = parse_prompt(target)
    if kind == "single":
        return random_scene(
            rng, height, width, include=[target], exclude=[target], n_objects=(1, 3)
        )
    if kind == "multi":
        count = int(rng.integers(2, 4))
        return random_scene(
            rng, height, width, include=[target] * count, exclude=[target], n_objects=(0, 2)
        )
    if kind == "distractors":
        include = [target, *near_misses(rng, query, [query])]
        return random_scene(rng, height, width, include=include, exclude=[target], n_objects=(0, 1))
    if kind == "edge":
        return _scene_edge(rng, target, height, width)
    if kind == "negative":
        avoid = [parse_prompt(p) for p in prompts]
        include = near_misses(rng, query, avoid)
        return random_scene(
            rng, height, width, include=include, exclude=list(prompts), n_objects=(1, 3)
        )
    raise ValueError(f"frame kind must be one of {FRAME_KINDS}, but got {kind!r}")


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
    images: dict[int, np.ndarray] = {}
    next_id = 1
    for s, prompts in enumerate(prompt_sets.values()):
        prompts = tuple(prompts)
        for p, target in enumerate(prompts):
            for kind in kinds:
                for i in range(frames_per_kind):
                    rng = np.random.default_rng([seed, s, p, FRAME_KINDS.index(kind), i])
                    scene = make_scene(rng, kind, target, prompts, height, width)
                    stills.append(FrameInfo(next_id, prompts, kind, target, width, height))
                    truths.extend(ground_truth(next_id, scene, prompts))
                    images[next_id] = scene.image
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
                images[image_id] = scene.image
            tracks.extend(video_tracks(ids, scenes, prompts))
            next_id += len(scenes)
    return Dataset(tuple(stills), tuple(videos), tuple(truths), tuple(tracks), images)


# ----------------------------------------------------------------------------------------------
# Metrics


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = box
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def _mean_valid(values: np.ndarray) -> float | None:
    """Mean of the entries > -1 (pycocotools marks undefined precision with -1), or None."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def coco_ap(
    frames: Sequence[FrameInfo],
    truths: Sequence[GtBox],
    detections: Sequence[DetBox],
    prompts: Sequence[str],
) -> ApResult:
    """AP50 and AP50:95 by pycocotools' COCOeval (the standard), overall and per prompt.

    Overall values are what ``COCOeval.summarize`` prints (the mean over prompts with true boxes);
    per prompt they come from the same precision table. Ignored truths become ``iscrowd`` boxes.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        raise MissingDependencyError(
            f"the quality benchmark needs pycocotools ({e}); pip install 'streamdet[bench]'"
        ) from e
    category = {p: i + 1 for i, p in enumerate(prompts)}
    positives = Counter(t.prompt for t in truths if not t.ignore)
    if not detections:  # pycocotools cannot load an empty result list
        per_prompt = {p: (0.0, 0.0) if positives[p] else (None, None) for p in prompts}
        any_positive = any(positives[p] for p in prompts)
        zero = 0.0 if any_positive else None
        return ApResult(zero, zero, per_prompt)
    gt = COCO()
    gt.dataset = {
        "images": [{"id": f.image_id, "width": f.width, "height": f.height} for f in frames],
        "categories": [{"id": c, "name": p} for p, c in category.items()],
        "annotations": [
            {
                "id": i + 1,  # COCOeval treats id 0 as "unmatched"
                "image_id": t.image_id,
                "category_id": category[t.prompt],
                "bbox": _xywh(t.box),
                "area": (t.box[2] - t.box[0]) * (t.box[3] - t.box[1]),
                "iscrowd": int(t.ignore),
            }
            for i, t in enumerate(truths)
        ],
    }
    results = [
        {
            "image_id": d.image_id,
            "category_id": category[d.prompt],
            "bbox": _xywh(d.box),
            "score": float(d.score),
        }
        for d in detections
    ]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt.createIndex()
        dt = gt.loadRes(results)
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.params.imgIds = [f.image_id for f in frames]
        evaluation.params.catIds = list(category.values())
        evaluation.evaluate()
        evaluation.accumulate()
    # [iou thresholds (0.5, 0.55, ..., 0.95), recall points, categories, area ranges, max dets];
    # area range 0 is "all", max dets -1 is 100.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_prompt = {
        p: (_mean_valid(precision[0, :, k]), _mean_valid(precision[:, :, k]))
        for k, p in enumerate(prompts)
    }
    return ApResult(_mean_valid(precision[0]), _mean_valid(precision), per_prompt)


def false_boxes(
    frames: Sequence[FrameInfo], truths: Sequence[GtBox], detections: Sequence[DetBox]
) -> FalseBoxes:
    """Boxes of prompt p on frames with no object of p (ignored ones count as objects), per frame.

    Every (frame, prompt run on it) pair without the prompt's object is one negative frame.
    """
    present = {(t.image_id, t.prompt) for t in truths}
    counts = Counter((d.image_id, d.prompt) for d in detections)
    negatives: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for f in frames:
        for p in f.prompts:
            if (f.image_id, p) not in present:
                negatives[p] += 1
                found[p] += counts[(f.image_id, p)]
    n, boxes = sum(negatives.values()), sum(found.values())
    per_prompt = {p: found[p] / negatives[p] if negatives[p] else None for p in negatives}
    return FalseBoxes(boxes / n if n else None, n, boxes, per_prompt)


def _iou(a: Box, b: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (n, 4) xyxy boxes -> (n,)."""
    tl = np.maximum(b[:, :2], a[:2])
    br = np.minimum(b[:, 2:], a[2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + np.prod(b[:, 2:] - b[:, :2], axis=1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _cxcywh(box: Sequence[float]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float64)


def _track_matches(track: Track, boxes_at: Mapping[tuple[int, str], np.ndarray]) -> list:
    """The detected box best overlapping the object in each frame (IoU > TRACK_IOU), or None."""
    out: list[np.ndarray | None] = []
    for image_id, truth in zip(track.image_ids, track.boxes, strict=True):
        boxes = boxes_at.get((image_id, track.prompt))
        if boxes is None or not len(boxes):
            out.append(None)
            continue
        iou = _iou(truth, boxes)
        best = int(np.argmax(iou))
        out.append(boxes[best] if iou[best] > TRACK_IOU else None)
    return out


def stability(tracks: Sequence[Track], detections: Sequence[DetBox]) -> Stability:
    """Jitter, blink and found rates of the boxes on tracked objects; see :class:`Stability`."""
    grouped: dict[tuple[int, str], list[Box]] = defaultdict(list)
    for d in detections:
        grouped[(d.image_id, d.prompt)].append(d.box)
    boxes_at = {k: np.asarray(v, np.float64) for k, v in grouped.items()}
    total, centre, size = [], [], []
    blinks = pairs = found = frames = 0
    for track in tracks:
        matched = _track_matches(track, boxes_at)
        frames += len(matched)
        found += sum(m is not None for m in matched)
        for t in range(1, len(matched)):
            pairs += 1
            before, now = matched[t - 1], matched[t]
            blinks += (before is None) != (now is None)
            if before is None or now is None:
                continue
            truth0, truth1 = _cxcywh(track.boxes[t - 1]), _cxcywh(track.boxes[t])
            change = (_cxcywh(now) - truth1) - (_cxcywh(before) - truth0)
            scale = math.sqrt(max((truth0[2] * truth0[3] + truth1[2] * truth1[3]) / 2, 1e-9))
            total.append(float(np.linalg.norm(change)) / scale)
            centre.append(float(np.linalg.norm(change[:2])) / scale)
            size.append(float(np.linalg.norm(change[2:])) / scale)

    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    return Stability(
        jitter=mean(total),
        centre_jitter=mean(centre),
        size_jitter=mean(size),
        blink=blinks / pairs if pairs else None,
        found=found / frames if frames else None,
        tracks=len(tracks),
        pairs=pairs,
    )


def best_cell_box(box: Box, patch: int, width: int, height: int) -> Box:
    """The box with edges on the ``patch`` cell grid (or the frame edge) that best overlaps ``box``.

    streamdet's boxes are unions of cells, so this is the best box it can return for an object.
    """
    x1, y1, x2, y2 = box
    best, best_iou = box, -1.0
    for fx1, fy1, fx2, fy2 in itertools.product((math.floor, math.ceil), repeat=4):
        cand = (
            fx1(x1 / patch) * patch,
            fy1(y1 / patch) * patch,
            min(fx2(x2 / patch) * patch, width),
            min(fy2(y2 / patch) * patch, height),
        )
        if cand[2] <= cand[0] or cand[3] <= cand[1]:
            continue
        iou = float(_iou(box, np.asarray([cand], np.float64))[0])
        if iou > best_iou:
            best, best_iou = cand, iou
    return best


def grid_ceiling(frames: Sequence[FrameInfo], truths: Sequence[GtBox], patch: int) -> ApResult:
    """AP of an oracle that finds every object exactly but must answer in whole cells.

    The upper bound of any cell-aligned detector at this patch size: small objects cannot reach
    high IoU with 32-pixel cells, which caps AP50:95 and even AP50.
    """
    size = {f.image_id: (f.width, f.height) for f in frames}
    dets = [
        DetBox(t.image_id, t.prompt, best_cell_box(t.box, patch, *size[t.image_id]), 1.0)
        for t in truths
        if not t.ignore
    ]
    prompts = tuple(dict.fromkeys(p for f in frames for p in f.prompts))
    return coco_ap(frames, truths, dets, prompts)


# ----------------------------------------------------------------------------------------------
# Running the detector


def make_configs(window: int, stride: int, patch: int = 32) -> dict[str, Config]:
    """Every config the full setting compares, around the base window and stride."""
    configs = [
        Config("calibrated", window=window, stride=stride),
        Config("reference", scoring="reference", window=window, stride=stride, overhang=False),
        Config(f"calibrated-w{window - 1}", window=window - 1, stride=min(stride, window - 1)),
        Config(f"calibrated-w{window + 1}", window=window + 1, stride=stride),
        Config(f"calibrated-s{stride + 1}", window=window, stride=min(stride + 1, window)),
        Config(
            f"calibrated-scales{window - 1}+{window + 2}",
            window=window,
            stride=stride,
            scales=(window - 1, window + 2),
        ),
        Config("calibrated-occlusion", window=window, stride=stride, method="occlusion"),
        Config("calibrated-peak0", window=window, stride=stride, peak_ratio=0.0),
        Config("calibrated-peak0.15", window=window, stride=stride, peak_ratio=0.15),
        Config("calibrated-peak0.5", window=window, stride=stride, peak_ratio=0.5),
        Config("calibrated-refine", window=window, stride=stride, refine=True),
        Config(  # `streamdet run --fast` (which also runs the image tower in int8)
            "calibrated-fast", window=window, stride=2 * stride, scales=(), overhang=False
        ),
        Config("calibrated-t0.98", window=window, stride=stride, threshold=0.98),
        Config("calibrated-t0.99", window=window, stride=stride, threshold=0.99),
        Config("calibrated-t0.999", window=window, stride=stride, threshold=0.999),
        Config("calibrated-no-refine", window=window, stride=stride, refine=False),
        Config(  # window-level heatmaps (32-pixel cells), one window size
            "calibrated-no-dense",
            window=window,
            stride=stride,
            scales=(),
            dense=False,
            peak_ratio=0.8,
        ),
        Config("calibrated-one-scale", window=window, stride=stride, scales=()),
        Config(  # boxes as the heatmaps give them, at the threshold used before verification
            "calibrated-no-verify", window=window, stride=stride, verify=False, threshold=0.6
        ),
        Config(  # size words scored by the model as written, boxes of any size kept
            "calibrated-literal-sizes", window=window, stride=stride, frame_sizes=False
        ),
        Config("calibrated-overhang", window=window, stride=stride, overhang=True),
        Config(
            "calibrated-no-overhang-peak0",
            window=window,
            stride=stride,
            overhang=False,
            peak_ratio=0.0,
        ),
        Config(
            "calibrated-overhang-peak0.8",
            window=window,
            stride=stride,
            overhang=True,
            peak_ratio=0.8,
        ),
        Config(
            f"calibrated-p{patch // 2}-w{2 * window}-s{2 * stride}",
            window=2 * window,
            stride=2 * stride,
            scales=(window,),
            patch=max(1, patch // 2),
        ),
        Config(
            f"calibrated-p{patch // 2}-w{2 * window}-s{stride}",
            window=2 * window,
            stride=stride,
            scales=(window,),
            patch=max(1, patch // 2),
        ),
    ]
    return {c.name: c for c in configs if c.window >= 1}


def run_detector(
    detector: Detector,
    frames: Sequence[FrameInfo],
    images: Mapping[int, np.ndarray],
    on_frame: Callable[[int], None] | None = None,
) -> tuple[list[DetBox], list[float]]:
    """Detect on every frame with its prompt set; return the boxes and per-frame milliseconds."""
    detections: list[DetBox] = []
    times: list[float] = []
    current: tuple[str, ...] = ()
    for n, f in enumerate(frames):
        if f.prompts != current:
            detector.set_prompts(f.prompts)
            current = f.prompts
            detector.detect(images[f.image_id])  # warm-up: first use of a prompt set is untimed
        start = time.perf_counter()
        result = detector.detect(images[f.image_id])
        times.append((time.perf_counter() - start) * 1e3)
        d = result.detections
        for box, score, k in zip(d.xyxy, d.confidence, d.class_id, strict=True):
            xyxy = tuple(float(v) for v in box)
            detections.append(DetBox(f.image_id, f.prompts[int(k)], xyxy, float(score)))  # type: ignore[arg-type]
        if on_frame is not None:
            on_frame(n)
    return detections, times


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def evaluate_config(
    config: Config,
    dataset: Dataset,
    *,
    model: str,
    patch: int,
    threads: int | None = None,
    cache_dir: str | None = None,
    precision: str | None = None,
) -> dict[str, Any]:
    """Run one config over the dataset and measure it; a JSON-ready dict."""
    detector = Detector(
        model,
        dataset.prompts[:1],
        patch=config.patch or patch,
        window=config.window,
        stride=config.stride,
        scales=config.scales,
        scoring=config.scoring,
        method=config.method,
        peak_ratio=config.peak_ratio,
        threshold=config.threshold,
        overhang=config.overhang,
        refine=config.refine,
        dense=config.dense,
        frame_sizes=config.frame_sizes,
        verify=config.verify,
        threads=threads,
        cache_dir=cache_dir,
        precision=precision,
    )
    start = time.perf_counter()
    still_dets, still_ms = run_detector(detector, dataset.stills, dataset.images)
    video_dets, video_ms = run_detector(detector, dataset.videos, dataset.images)
    seconds = time.perf_counter() - start
    prompts = dataset.prompts
    ap = coco_ap(dataset.stills, dataset.truths, still_dets, prompts)
    fb = false_boxes(dataset.stills, dataset.truths, still_dets)
    st = stability(dataset.tracks, video_dets)
    positives = Counter(t.prompt for t in dataset.truths if not t.ignore)
    ms = still_ms + video_ms
    return {
        "settings": {**asdict(config), "patch": patch, "threshold": _threshold(detector)},
        "ap50": _round(ap.ap50),
        "ap50_95": _round(ap.ap50_95),
        "false_boxes_per_frame": _round(fb.per_frame),
        "negative_frames": fb.frames,
        "false_boxes": fb.boxes,
        "jitter": _round(st.jitter),
        "centre_jitter": _round(st.centre_jitter),
        "size_jitter": _round(st.size_jitter),
        "blink": _round(st.blink),
        "found": _round(st.found),
        "tracks": st.tracks,
        "track_pairs": st.pairs,
        "ms_per_frame": _round(float(np.mean(ms)) if ms else None, 2),
        "ms_per_frame_median": _round(float(np.median(ms)) if ms else None, 2),
        "boxes_per_frame": _round(len(still_dets) / max(len(dataset.stills), 1)),
        "seconds": round(seconds, 2),
        "per_prompt": {
            p: {
                "ap50": _round(ap.per_prompt[p][0]),
                "ap50_95": _round(ap.per_prompt[p][1]),
                "true_boxes": positives[p],
                "false_boxes_per_frame": _round(fb.per_prompt.get(p)),
            }
            for p in prompts
        },
    }


def _threshold(detector: Detector) -> float | list[float]:
    values = sorted({round(float(t), 4) for t in detector.thresholds})
    return values[0] if len(values) == 1 else values


# ----------------------------------------------------------------------------------------------
# Report


def check_targets(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The issue's targets on the ``calibrated`` config (and against ``reference``): pass/fail.

    A target whose configs were not run, or whose value is undefined, is reported as not passed.
    """
    cal = configs.get("calibrated", {})
    ref = configs.get("reference", {})
    ap, ref_ap, fb = cal.get("ap50"), ref.get("ap50"), cal.get("false_boxes_per_frame")
    if ap is None or ref_ap is None:
        ratio = None
    else:
        ratio = math.inf if ref_ap == 0 and ap > 0 else (ap / ref_ap if ref_ap else 0.0)
    targets = {
        "calibrated_ap50": {"value": ap, "min": TARGET_AP50},
        "calibrated_over_reference_ap50": {
            "value": None
            if ratio is None
            else (round(ratio, 3) if math.isfinite(ratio) else "inf"),
            "min": TARGET_AP50_RATIO,
        },
        "calibrated_false_boxes_per_frame": {"value": fb, "max": TARGET_FALSE_BOXES},
    }
    targets["calibrated_ap50"]["passed"] = ap is not None and ap >= TARGET_AP50
    targets["calibrated_over_reference_ap50"]["passed"] = (
        ratio is not None and ratio >= TARGET_AP50_RATIO
    )
    targets["calibrated_false_boxes_per_frame"]["passed"] = (
        fb is not None and fb <= TARGET_FALSE_BOXES
    )
    return targets


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(configs: Mapping[str, Mapping[str, Any]]) -> str:
    """The README table: one row per config."""
    lines = [
        "| config | AP50 | AP50:95 | false boxes/frame | jitter | blink | ms/frame |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in configs.items():
        cells = [
            name,
            _fmt(r["ap50"]),
            _fmt(r["ap50_95"]),
            _fmt(r["false_boxes_per_frame"]),
            _fmt(r["jitter"]),
            _fmt(r["blink"]),
            _fmt(r["ms_per_frame"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prompt_table(configs: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> str:
    """AP50 per prompt for some configs, prompts as rows."""
    names = [n for n in names if n in configs]
    if not names:
        return ""
    prompts = list(next(iter(configs[n] for n in names))["per_prompt"])
    lines = [
        "| prompt | " + " | ".join(f"AP50 {n}" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for p in prompts:
        cells = [_fmt(configs[n]["per_prompt"][p]["ap50"]) for n in names]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_info(model: str, cache_dir: str | None) -> dict[str, Any]:
    """The model as resolved: folder, checksum of its meta.json files, input size."""
    from streamdet.detect.model import find_model

    meta = find_model(model, cache_dir=cache_dir).meta
    return {
        "name": str(model),
        "folder": str(meta.folder),
        "checksum": meta.checksum,
        "image_size": meta.image_size,
        "embed_dim": meta.embed_dim,
        "precision": meta.precision,
        "threshold_suggested": meta.defaults.get("threshold"),
    }


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Counts that say what the numbers were measured on."""
    return {
        "still_frames": len(dataset.stills),
        "frames_by_kind": dict(Counter(f.kind for f in dataset.stills)),
        "true_boxes": sum(not t.ignore for t in dataset.truths),
        "ignored_boxes": sum(t.ignore for t in dataset.truths),
        "video_frames": len(dataset.videos),
        "tracks": len(dataset.tracks),
    }


# ----------------------------------------------------------------------------------------------
# Command line


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"expected WIDTHxHEIGHT such as 640x360, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"frames must be at least 16x16 pixels, got {text!r}")
    return w, h


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Detection quality on generated scenes: AP, false boxes, stability.",
        epilog="Writes JSON (--out) and prints a markdown table. Exits 0 unless --check-targets "
        "is given and a target is missed.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id or folder")
    parser.add_argument(
        "--quick", action="store_true", help="small dataset, calibrated vs reference (CI)"
    )
    parser.add_argument("--frames", type=int, help="still frames per prompt and kind (4; quick 1)")
    parser.add_argument("--videos", type=int, help="videos per prompt set (2; quick 1)")
    parser.add_argument("--video-frames", type=int, help="frames per video (24; quick 6)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--configs", type=_names, help="comma-separated config names (all; quick: two)"
    )
    parser.add_argument(
        "--sets", type=_names, help=f"prompt sets to run (all of {', '.join(PROMPT_SETS)})"
    )
    parser.add_argument(
        "--kinds", type=_names, help=f"frame kinds (all of {', '.join(FRAME_KINDS)})"
    )
    parser.add_argument("--frame-size", type=_frame_size, default=(640, 360), metavar="WxH")
    parser.add_argument("--patch", type=int, default=32, help="cell size in pixels")
    parser.add_argument("--window", type=int, default=4, help="base window size in cells")
    parser.add_argument("--stride", type=int, default=1, help="base stride in cells")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--cache-dir", help="streamdet cache (default ~/.cache/streamdet)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "int8", "fp16"),
        help="image tower precision for every config (default: as exported)",
    )
    parser.add_argument(
        "--out", type=Path, help="JSON file (benchmarks/results/quality[-quick].json)"
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 1 when a target is not met"
    )
    args = parser.parse_args(argv)
    defaults = (1, 1, 6) if args.quick else (4, 2, 24)
    for name, default in zip(("frames", "videos", "video_frames"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    return args


def _select(names: Sequence[str] | None, available: Mapping[str, Any], what: str) -> list[str]:
    if names is None:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"unknown {what} {', '.join(unknown)}; choose from {', '.join(available)}"
        )
    return list(names)


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The whole benchmark as one JSON-ready dict."""
    started = time.perf_counter()
    model = model_info(args.model, args.cache_dir)  # first: a missing model fails fast
    all_configs = make_configs(args.window, args.stride, args.patch)
    default_configs = ["calibrated", "reference"] if args.quick else None
    config_names = _select(args.configs or default_configs, all_configs, "config")
    sets = {n: PROMPT_SETS[n] for n in _select(args.sets, PROMPT_SETS, "prompt set")}
    kinds = _select(args.kinds, dict.fromkeys(FRAME_KINDS), "frame kind")
    width, height = args.frame_size
    dataset = build_dataset(
        sets,
        kinds=kinds,
        frames_per_kind=args.frames,
        videos_per_set=args.videos,
        video_frames=args.video_frames,
        seed=args.seed,
        height=height,
        width=width,
    )
    _log(f"dataset: {len(dataset.stills)} stills, {len(dataset.videos)} video frames")
    ceiling = grid_ceiling(dataset.stills, dataset.truths, args.patch)
    results = {}
    for name in config_names:
        results[name] = evaluate_config(
            all_configs[name],
            dataset,
            model=args.model,
            patch=args.patch,
            threads=args.threads,
            cache_dir=args.cache_dir,
            precision=args.precision,
        )
        r = results[name]
        _log(f"{name}: AP50 {_fmt(r['ap50'])}, {r['seconds']:.1f} s")
    targets = check_targets(results)
    return {
        "benchmark": "quality",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(("numpy", "onnxruntime", "streamdet")),
        "model": model,
        "settings": {
            "quick": args.quick,
            "seed": args.seed,
            "frame_size": [width, height],
            "frames_per_kind": args.frames,
            "videos_per_set": args.videos,
            "video_frames": args.video_frames,
            "patch": args.patch,
            "window": args.window,
            "stride": args.stride,
            "precision": args.precision or "as exported",
            "prompt_sets": sets,
            "frame_kinds": kinds,
            "min_visible": MIN_VISIBLE,
            "track_iou": TRACK_IOU,
        },
        "dataset": dataset_info(dataset),
        "grid_ceiling": {
            "about": "AP of exact boxes snapped to the best cell-aligned box at this patch",
            "ap50": _round(ceiling.ap50),
            "ap50_95": _round(ceiling.ap50_95),
        },
        "configs": results,
        "targets": targets,
        "passed": all(t["passed"] for t in targets.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _log(message: str) -> None:
    print(f"[quality] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/quality.py", *argv])
    try:
        report = run(args, command)
    except StreamdetError as e:  # a message that says what to do, not a traceback
        _log(f"error: {e}")
        return 2
    out = args.out or RESULTS_DIR / ("quality-quick.json" if args.quick else "quality.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(report["configs"]))
    ceiling = report["grid_ceiling"]
    print(
        f"\nCell-grid ceiling (exact boxes snapped to {args.patch} px cells): "
        f"AP50 {_fmt(ceiling['ap50'])}, AP50:95 {_fmt(ceiling['ap50_95'])}"
    )
    print()
    print(prompt_table(report["configs"], ["calibrated", "reference"]))
    print()
    for name, t in report["targets"].items():
        bound = f">= {t['min']}" if "min" in t else f"<= {t['max']}"
        print(f"target {name}: {_fmt(t['value'])} ({bound}) {'pass' if t['passed'] else 'FAIL'}")
    _log(f"wrote {out} in {report['seconds']} s")
    if args.check_targets and not report["passed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
