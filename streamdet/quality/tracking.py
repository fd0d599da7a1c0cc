"""Generated videos with identity ground truth, and the standard tracking metrics on them.

Tracking needs what the still and drifting scenes of ``streamdet.quality.dataset`` do not have:
objects whose paths cross (two of the same prompt, the hard case), that leave the frame and come
back, and that enter and exit. Each clip is drawn by ``streamdet.synth.scenes.render_scene`` from
scripted paths, so every object keeps its identity (its index in the clip) in every frame, with
its true box and how much of it is inside the frame. A light sensor noise (sigma 2 grey levels)
is added to every frame, as a camera has.

Scoring (``mot_metrics``) uses motmetrics (``pip install 'streamdet[bench]'``), the reference
implementation of the CLEAR-MOT metrics (MOTA) and IDF1 (its accumulator and metrics; the IoU
distances are computed here, as its ``iou_matrix`` does), with the MOTChallenge conventions: a
hypothesis matches a truth at IoU >= 0.5; objects less than half inside the frame are ignore
regions (not truth, and a box on one is neither a hit nor a false box); one accumulator per (clip,
prompt), since a box of one prompt can only be that prompt's object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamdet.detect.boxes import box_iou
from streamdet.errors import MissingDependencyError
from streamdet.synth.scenes import Placement, parse_prompt, random_background, render_scene
from streamdet.types import FrameResult

#: Objects with less of their box inside the frame are ignore regions (as in the quality set).
MIN_VISIBLE = 0.5
#: IoU at which a box matches a true object (MOTChallenge's).
MATCH_IOU = 0.5
NOISE_SIGMA = 2.0

Path = Callable[[int], tuple[float, float]]  # frame index -> centre (x, y)


@dataclass(frozen=True)
class TruthBox:
    """One object of one prompt in one frame: its identity, true box and fraction in frame."""

    object_id: int
    prompt: str
    box: tuple[float, float, float, float]
    visible: float


@dataclass(frozen=True)
class Clip:
    """One generated video: its prompts, frames (BGR uint8) and per-frame true boxes."""

    name: str
    prompts: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    truths: tuple[tuple[TruthBox, ...], ...]


@dataclass(frozen=True)
class _Mover:
    """An object (everything but its centre) and its path."""

    kind: str
    colour: str
    extent: float
    path: Path
    angle: float = 0.0
    flip: bool = False


def _line(x0: float, y0: float, vx: float, vy: float) -> Path:
    return lambda t: (x0 + vx * t, y0 + vy * t)


def _out_and_back(x0: float, y: float, vx: float, turn: int, away: int) -> Path:
    """Moves at ``vx`` until frame ``turn``, stays where it got for ``away`` frames (out of the
    frame: the scripts put it there), then comes back the way it went."""

    def path(t: int) -> tuple[float, float]:
        if t <= turn:
            return (x0 + vx * t, y)
        far = x0 + vx * turn
        if t <= turn + away:
            return (far, y)
        return (far - vx * (t - turn - away), y)

    return path


def _scripts(width: int, height: int) -> dict[str, tuple[tuple[str, ...], list[_Mover]]]:
    """The clips' prompts and objects, by name; sizes are fractions of the frame."""
    w, h = float(width), float(height)
    big = 0.27 * h  # "large" objects: 0.22 .. 0.40 of the shorter side
    return {
        "cross-same": (  # two red cars of one prompt cross; a person walks in, across both, out
            ("a red car", "a person"),
            [
                _Mover("car", "red", big, _line(0.12 * w, 0.36 * h, 0.011 * w, 0.0)),
                _Mover("car", "red", big, _line(0.88 * w, 0.62 * h, -0.011 * w, 0.0), flip=True),
                _Mover("person", "orange", big, _line(0.45 * w, -0.1 * h, 0.0, 0.025 * h)),
                _Mover("tree", "green", big, _line(0.85 * w, 0.2 * h, 0.0, 0.0)),
            ],
        ),
        "cross-shapes": (  # two blue stars cross diagonally, one over the other; a square drifts
            ("a blue star", "a yellow square"),
            [
                _Mover("star", "blue", big, _line(0.15 * w, 0.2 * h, 0.011 * w, 0.008 * h)),
                _Mover("star", "blue", big, _line(0.85 * w, 0.38 * h, -0.011 * w, 0.006 * h)),
                _Mover("square", "yellow", big, _line(0.45 * w, 0.82 * h, 0.004 * w, -0.002 * h)),
                _Mover("circle", "white", big, _line(0.1 * w, 0.8 * h, 0.003 * w, 0.0)),
            ],
        ),
        "leave-return": (  # a person walks out of the frame and back; a car drives out and back
            ("a person", "a red car"),
            [
                _Mover("person", "orange", big, _out_and_back(0.75 * w, 0.4 * h, 0.015 * w, 24, 8)),
                _Mover("car", "red", big, _out_and_back(0.3 * w, 0.72 * h, -0.015 * w, 28, 6)),
                _Mover("house", "purple", big, _line(0.35 * w, 0.25 * h, 0.001 * w, 0.0)),
            ],
        ),
        "enter-exit": (  # red circles come in from the left one after another and leave right
            ("a red circle", "a green triangle"),
            [
                _Mover("circle", "red", big, _line(-0.1 * w, 0.3 * h, 0.02 * w, 0.0)),
                _Mover("circle", "red", big, _line(-0.5 * w, 0.65 * h, 0.02 * w, 0.0)),
                _Mover("triangle", "green", big, _line(1.1 * w, 0.5 * h, -0.015 * w, 0.0)),
                _Mover("cross", "white", big, _line(0.5 * w, 0.15 * h, 0.0, 0.0)),
            ],
        ),
    }


CLIP_NAMES: tuple[str, ...] = ("cross-same", "cross-shapes", "leave-return", "enter-exit")


def tracking_clips(
    frames: int = 60,
    *,
    names: Sequence[str] = CLIP_NAMES,
    seed: int = 0,
    height: int = 360,
    width: int = 640,
) -> list[Clip]:
    """The named clips, ``frames`` frames each, deterministic from ``seed`` (the backgrounds,
    colour jitter and noise)."""
    scripts = _scripts(width, height)
    clips = []
    for c, name in enumerate(names):
        prompts, movers = scripts[name]
        rng = np.random.default_rng([seed, c])
        background = random_background(rng, height, width, "gradient")
        jitter_seed = int(rng.integers(2**31))
        queries = [(p, parse_prompt(p)) for p in prompts]
        images, truths = [], []
        for t in range(frames):
            placements = [
                Placement(m.kind, m.colour, "large", m.path(t), m.extent, m.angle, m.flip)
                for m in movers
            ]
            scene = render_scene(background, placements, rng=np.random.default_rng(jitter_seed))
            noise = rng.normal(0.0, NOISE_SIGMA, scene.image.shape)
            images.append(np.clip(scene.image + noise, 0, 255).astype(np.uint8))
            truths.append(
                tuple(
                    TruthBox(j, prompt, obj.box, obj.visible)
                    for j, obj in enumerate(scene.objects)
                    for prompt, query in queries
                    if query.matches(obj) and obj.visible > 0
                )
            )
        clips.append(Clip(name, prompts, tuple(images), tuple(truths)))
    return clips


def _require_motmetrics() -> Any:
    try:
        import motmetrics
    except ImportError as e:
        raise MissingDependencyError(
            f"the tracking metrics need motmetrics ({e}); pip install 'streamdet[bench]'"
        ) from e
    return motmetrics


def _distances(truths: Sequence[Sequence[float]], boxes: np.ndarray) -> np.ndarray:
    """motmetrics' IoU distances: 1 - IoU, NaN (no match) below ``MATCH_IOU``. The same as
    ``motmetrics.distances.iou_matrix``, which motmetrics 1.4.0 cannot run on NumPy 2."""
    a = np.asarray(truths, np.float64).reshape(-1, 4)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    iou = box_iou(a, b)
    return np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan)


#: The metrics reported, by motmetrics' names.
METRICS: tuple[str, ...] = (
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "recall",
    "precision",
    "num_switches",
    "num_fragmentations",
    "num_unique_objects",
    "mostly_tracked",
    "num_false_positives",
    "num_misses",
)


def mot_metrics(clips: Sequence[Clip], results: Sequence[Sequence[FrameResult]]) -> dict:
    """MOTA, IDF1 and the counts behind them for tracked ``results`` (one list of frame results
    per clip, ``track_id`` set), overall and per clip. motp is motmetrics' (1 - IoU)."""
    mm = _require_motmetrics()
    accumulators, names = [], []
    for clip, frames in zip(clips, results, strict=True):
        for prompt in clip.prompts:
            acc = mm.MOTAccumulator(auto_id=True)
            for truth, result in zip(clip.truths, frames, strict=True):
                _add_frame(acc, truth, result, prompt)
            accumulators.append(acc)
            names.append(f"{clip.name}/{prompt}")
    host = mm.metrics.create()
    summary = host.compute_many(
        accumulators, metrics=list(METRICS), names=names, generate_overall=True
    )
    rows = {name: {m: _number(summary.loc[name, m]) for m in METRICS} for name in summary.index}
    return {"overall": rows.pop("OVERALL"), "per_clip_prompt": rows}


def _number(value: Any) -> float | int | None:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    return value


def _add_frame(acc: Any, truth: Sequence[TruthBox], result: FrameResult, prompt: str):
    """One frame of one prompt into ``acc``; boxes on ignore regions are dropped first."""
    d = result.detections
    if d.track_id is None:
        raise ValueError("mot_metrics needs tracked results (detections.track_id is None)")
    mine = np.array([result.prompts[int(k)] == prompt for k in d.class_id], bool)
    boxes, ids = d.xyxy[mine], d.track_id[mine]
    real = [t for t in truth if t.prompt == prompt and t.visible >= MIN_VISIBLE]
    ignored = [t for t in truth if t.prompt == prompt and t.visible < MIN_VISIBLE]
    if ignored and len(boxes):
        keep = np.isnan(_distances([t.box for t in ignored], boxes)).all(axis=0)
        boxes, ids = boxes[keep], ids[keep]
    distances = _distances([t.box for t in real], boxes)
    acc.update([t.object_id for t in real], ids.tolist(), distances)


#: ``id_churn``: an id shown in fewer frames than this is short-lived (a fragment or a blip).
SHORT_TRACK = 5
#: ``id_churn``: a box on the place of a box of the frame before (same prompt, IoU above this)
#: is taken to be the same object.
SAME_PLACE_IOU = 0.5


def id_churn(results: Sequence[FrameResult]) -> dict:
    """How much a tracker's ids churn on footage without true boxes (a real camera's): ``ids``
    shown, ``short_ids`` shown in fewer than ``SHORT_TRACK`` frames, ``boxes`` shown, and
    ``id_changes``: boxes where a box of the frame before was (same prompt, IoU above
    ``SAME_PLACE_IOU``) under another id. Without ground truth these are proxies: an object
    that keeps its id adds none of them, while fragments and swaps add to all three counts."""
    lifetimes: dict[int, int] = {}
    boxes = changes = 0
    before = None
    for result in results:
        d = result.detections
        if d.track_id is None:
            raise ValueError("id_churn needs tracked results (detections.track_id is None)")
        boxes += len(d)
        for track in d.track_id.tolist():
            lifetimes[track] = lifetimes.get(track, 0) + 1
        if before is not None and len(d) and len(before):
            iou = box_iou(d.xyxy.astype(np.float64), before.xyxy.astype(np.float64))
            iou[d.class_id[:, None] != before.class_id[None, :]] = 0.0
            nearest = iou.argmax(axis=1)
            placed = iou[np.arange(len(d)), nearest] > SAME_PLACE_IOU
            changes += int((placed & (d.track_id != before.track_id[nearest])).sum())
        before = d
    return {
        "frames": len(results),
        "ids": len(lifetimes),
        "short_ids": sum(1 for n in lifetimes.values() if n < SHORT_TRACK),
        "boxes": boxes,
        "id_changes": changes,
    }
