"""The quality benchmark's metrics: COCO AP, false boxes and the stability of boxes in videos.

AP50 and AP50:95 overall and per prompt come from pycocotools (the standard, an optional
dependency: ``pip install 'streamdet[bench]'``); false boxes per frame count over the (frame,
prompt) pairs where the frame has no object of the prompt; on videos, per true object, the
frame-to-frame change of the matched box relative to the true box (jitter, in box sizes), the
fraction of frame pairs where its box appears or disappears (blink) and of frames where it is
found. ``grid_ceiling`` is the AP an oracle answering in whole cells would get.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamdet.errors import MissingDependencyError
from streamdet.quality.dataset import Box, FrameInfo, GtBox, Track

#: A tracked object counts as found in a video frame when a box overlaps it by more than this.
TRACK_IOU = 0.3


@dataclass(frozen=True)
class DetBox:
    """One box the detector returned for one prompt in one frame."""

    image_id: int
    prompt: str
    box: Box
    score: float


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


def require_pycocotools() -> None:
    """Raise a one-line ``MissingDependencyError`` when pycocotools is not installed."""
    try:
        import pycocotools.coco
        import pycocotools.cocoeval  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"the quality benchmark needs pycocotools ({e}); pip install 'streamdet[bench]'"
        ) from e


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
    require_pycocotools()
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

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
