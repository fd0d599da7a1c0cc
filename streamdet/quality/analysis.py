"""Where a setting fails, and what its confidences mean: the benchmark's failure analysis.

Boxes on still frames are matched to the truth the way COCO does at IoU 0.5 (per frame and
prompt, highest score first, each true box taken once; a box on an ignore region, measured as the
share of the box inside the region, is neither right nor wrong). From that:

* calibration: per confidence bin, how many boxes and the share of them that are right;
* recall at the operating point (the boxes the detector returns) per prompt, per object size
  (square root of the true box's area, pixels), per background kind and per frame kind;
* false boxes by cause: what each wrong box lies on (the object it covers most, or none), named by
  what that object shares with the prompt: ``target, loose or twice`` (an object of the
  prompt, boxed with IoU < 0.5 or a second time), ``same colour`` (other kind: a colour-only
  distractor), ``same kind`` (other colour: shape-only), ``other size`` (all the prompt names
  but the size), ``other object``, ``background``. Counted on frames without the prompt's
  object (the false-box metric's frames) and over all wrong boxes (what costs AP);
* false boxes by background kind on frames without the prompt's object.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamdet.quality.dataset import Box, Dataset, FrameScene, GtBox, ObjectInfo
from streamdet.quality.metrics import DetBox
from streamdet.synth.vocabulary import Query, parse_prompt

MATCH_IOU = 0.5
#: Confidence bin edges; the last bin includes 1.0.
CONFIDENCE_EDGES: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Object size buckets by the square root of the true box's area, in pixels (lower edges).
SIZE_EDGES: tuple[int, ...] = (0, 32, 64, 128)
#: A wrong box lies on the object that covers this share of it or more (the largest share wins).
ON_OBJECT = 0.3
CAUSES: tuple[str, ...] = (
    "target, loose or twice",
    "same colour",
    "same kind",
    "other size",
    "other object",
    "background",
)


def _inter(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(a: Box) -> float:
    return max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])


def iou(a: Box, b: Box) -> float:
    inter = _inter(a, b)
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


def match(
    truths: Sequence[GtBox], detections: Sequence[DetBox]
) -> tuple[list[str], dict[int, bool]]:
    """Label each detection ``tp``, ``fp`` or ``ignored``; say which truths (by index) were found.

    Greedy per (frame, prompt), highest score first, like COCO at IoU 0.5."""
    by_key: dict[tuple[int, str], list[int]] = defaultdict(list)
    for k, t in enumerate(truths):
        by_key[(t.image_id, t.prompt)].append(k)
    labels = ["fp"] * len(detections)
    found = {k: False for k, t in enumerate(truths) if not t.ignore}
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    for i in order:
        d = detections[i]
        candidates = by_key.get((d.image_id, d.prompt), [])
        best, best_iou = None, MATCH_IOU
        for k in candidates:
            t = truths[k]
            if t.ignore or found[k]:
                continue
            value = iou(d.box, t.box)
            if value >= best_iou:
                best, best_iou = k, value
        if best is not None:
            found[best] = True
            labels[i] = "tp"
        elif any(
            truths[k].ignore and _inter(d.box, truths[k].box) >= MATCH_IOU * _area(d.box)
            for k in candidates
        ):
            labels[i] = "ignored"
    return labels, found


def calibration(detections: Sequence[DetBox], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per confidence bin: boxes (right or wrong; ignored ones left out), right ones, precision."""
    edges = CONFIDENCE_EDGES
    rows = []
    for lo, hi in itertools.pairwise(edges):
        last = hi == edges[-1]
        inside = [
            lab
            for d, lab in zip(detections, labels, strict=True)
            if lab != "ignored" and lo <= d.score and (d.score < hi or (last and d.score <= hi))
        ]
        right = sum(lab == "tp" for lab in inside)
        rows.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "boxes": len(inside),
                "right": right,
                "precision": round(right / len(inside), 4) if inside else None,
            }
        )
    return rows


SIZE_LABELS: tuple[str, ...] = (
    *(f"{lo}-{hi} px" for lo, hi in itertools.pairwise(SIZE_EDGES)),
    f">={SIZE_EDGES[-1]} px",
)


def size_bucket(box: Box) -> str:
    """The size bucket (one of SIZE_LABELS) of a box: the square root of its area, pixels."""
    side = float(np.sqrt(_area(box)))
    for label, hi in zip(SIZE_LABELS, SIZE_EDGES[1:], strict=False):
        if side < hi:
            return label
    return SIZE_LABELS[-1]


def _recall(pairs: Sequence[tuple[str, bool]]) -> dict[str, dict[str, Any]]:
    """{group: {true, found, recall}} from (group, found) pairs, groups in first-seen order."""
    total: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for group, ok in pairs:
        total[group] += 1
        hit[group] += ok
    return {
        g: {"true": total[g], "found": hit[g], "recall": round(hit[g] / total[g], 4)} for g in total
    }


def cause(query: Query, obj: ObjectInfo | None) -> str:
    """What the object a wrong box lies on shares with the prompt (see the module)."""
    if obj is None:
        return "background"
    if query.matches_attributes(obj.kind, obj.colour, obj.size):
        return "target, loose or twice"
    colour = query.colour is not None and obj.colour == query.colour
    kind = query.kind is not None and obj.kind == query.kind
    named = (query.colour is not None) + (query.kind is not None)
    if named and colour + kind == named:  # all it names but the size
        return "other size"
    if colour:
        return "same colour"
    if kind:
        return "same kind"
    return "other object"


def _under(box: Box, scene: FrameScene | None) -> ObjectInfo | None:
    """The object covering the largest share (>= ON_OBJECT) of ``box``, or None."""
    if scene is None:
        return None
    best, share = None, ON_OBJECT
    area = max(_area(box), 1e-9)
    for obj in scene.objects:
        if obj.box is None:
            continue
        value = _inter(box, obj.box) / area
        if value >= share:
            best, share = obj, value
    return best


def _causes(boxes: Sequence[DetBox], scenes: Mapping[int, FrameScene]) -> dict[str, int]:
    counts = Counter(
        cause(parse_prompt(d.prompt), _under(d.box, scenes.get(d.image_id))) for d in boxes
    )
    return {c: counts[c] for c in CAUSES}


def analyse(dataset: Dataset, detections: Sequence[DetBox]) -> dict[str, Any]:
    """The failure analysis and calibration of boxes on ``dataset.stills`` (see the module)."""
    stills = {f.image_id: f for f in dataset.stills}
    dets = [d for d in detections if d.image_id in stills]
    truths = [t for t in dataset.truths if t.image_id in stills]
    labels, found = match(truths, dets)
    scenes = dataset.scenes
    real = [(k, truths[k]) for k in found]

    def background(image_id: int) -> str:
        scene = scenes.get(image_id)
        return scene.background if scene else "unknown"

    present = {(t.image_id, t.prompt) for t in truths}
    negatives = [
        (f.image_id, p) for f in dataset.stills for p in f.prompts if (f.image_id, p) not in present
    ]
    negative_set = set(negatives)
    on_negatives = [d for d in dets if (d.image_id, d.prompt) in negative_set]
    frames_by_bg = Counter(background(i) for i, _ in negatives)
    boxes_by_bg = Counter(background(d.image_id) for d in on_negatives)
    wrong = [d for d, lab in zip(dets, labels, strict=True) if lab == "fp"]
    by_size = _recall([(size_bucket(t.box), found[k]) for k, t in real])
    return {
        "boxes": len(dets),
        "right": labels.count("tp"),
        "wrong": labels.count("fp"),
        "on_ignored": labels.count("ignored"),
        "calibration": calibration(dets, labels),
        "recall": round(sum(found.values()) / len(found), 4) if found else None,
        "recall_by_prompt": _recall([(t.prompt, found[k]) for k, t in real]),
        "recall_by_size": {s: by_size[s] for s in SIZE_LABELS if s in by_size},
        "recall_by_background": _recall([(background(t.image_id), found[k]) for k, t in real]),
        "recall_by_frame_kind": _recall([(stills[t.image_id].kind, found[k]) for k, t in real]),
        "false_boxes_by_cause": _causes(on_negatives, scenes),
        "wrong_boxes_by_cause": _causes(wrong, scenes),
        "false_boxes_by_background": {
            bg: {
                "frames": frames_by_bg[bg],
                "boxes": boxes_by_bg[bg],
                "per_frame": round(boxes_by_bg[bg] / frames_by_bg[bg], 4),
            }
            for bg in sorted(frames_by_bg)
        },
    }
