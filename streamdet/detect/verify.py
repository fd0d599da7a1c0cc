"""Second look at each box: score a crop around it, as R-CNN scores its proposals.

Heatmaps say where a prompt scores high, but a region is born from windows that each saw the
object off-centre, cut, or beside something else; its peak is a poor confidence. Green grass in a
photograph lifts "a green shape" in a few windows; a lamp post lifts "a person". Once a box
exists, the crop the model understands best is known: the box itself, centred, with some context
around it. Each candidate box is cut out as a square of ``margin`` x its longer side at two
margins (``VIEW_MARGINS``: 1.5 shows the object whole with a little context, 2.0 with its
surroundings, as the training crops did), all in one batch, and scored against the prompt and the
background prompts. The box's probability is the best of its views (``combine`` "best") or their
mean ("mean"); its confidence becomes region peak x that probability, and a box its views do not
confirm (probability below ``floor``) is dropped. A single view drops true boxes (a small object
crowded by neighbours in its crop); the best of two keeps them, and lets through what one lucky
view likes; the mean keeps most of them and asks both views to agree. ``fully_viewed`` spends a
frame's crop budget (``verify_budget``): every box's first view, then the other views for the
strongest boxes while it lasts. The other margins can also be a second opinion, taken only for
boxes the first view is unsure of (``verify_recheck``; ``streamdet.detect.verifier`` runs the
stage): ``rescore`` then counts only the views a box was seen in, and keeps a box the first view
rejects when another reaches ``recheck_floor``. One floor for every box cannot keep an object
the frame's heatmap is all but sure of when its views doubt it (scenes unlike the training's)
without also keeping the weak regions a lucky view likes; ``trusted_floor`` (``verify_trust``)
lowers the floor by the box's heatmap peak, the two added as log-odds.

On the quality benchmark's tuning seeds this re-ranking, with the heatmap threshold lowered to let
more candidates in, raised AP50 and cut false boxes per frame (docs/benchmarks.md). It costs one
extra batch of ``margins x boxes`` crops per frame, not a second pass over the windows; at most
``verify_max`` boxes per frame are looked at (prompts in turns, each its strongest first; the
others are dropped: ``strongest``), so a frame full of weak candidates cannot stall a live source.

The view also says where the box should be (``refine_in_views``, the ``verify_refine`` setting):
the frame's heatmap has cells of 11 pixels or more, so a 30-pixel object's box is off by a good
share of its size, while the first view shows the object at 1.5 x its longer side across the
model's whole input. Its patch tokens (when the export has them) are scored against the prompt
as log-odds against the background prompts, rescaled to the view's own range (``relative_maps``:
0 its least prompt-like token, 1 its most); the box of the region round the view's peak is found
as the frame's is (tokens at ``REFINE_LEVEL`` of the way up, edges placed between tokens), and
the frame's box moves towards it by the setting's weight. Log-odds, not probabilities: a token the
object covers only in part is already near probability 1 (the built-in model's logit scale is
36), so a probability map is flat across the object's edge tokens and every edge fell on a token
border (a person 1.4 tokens wide got a box 2 wide); the log-odds keep rising with the share the
object covers. On tuning seeds 1-4 this raised AP50 0.879 -> 0.904 (0.909 with the weight
re-chosen, 0.5 -> 0.6), held-out seeds 0.784 -> 0.808 (docs/benchmarks.md). Two estimates
with independent errors, blended, beat either alone: on the training generator's tuning seeds 1
and 2 weight 0.4 raised AP50 of the built-in model's default from 0.785 / 0.771 to 0.855 /
0.808, the view's box alone (weight 1) lowered it (docs/benchmarks.md). The second margin's
view has tokens too (the views of a frame run as one batch); with ``verify_refine_second`` a box
seen in both moves towards the blend of the two views' boxes, whose errors are partly
independent (``seen_boxes``).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from streamdet.config.settings import VerifyConfig
from streamdet.detect.boxes import box_intersections, refine_edges, regions
from streamdet.types import Detections

#: Crop sides as multiples of a box's longer side: the ``verify_margins`` setting's default.
VIEW_MARGINS = VerifyConfig.margins
#: At most this many boxes per frame are verified (``strongest``): ``verify_max``'s default.
MAX_VERIFIED = VerifyConfig.max_boxes
#: ``refine_in_views`` cuts a view's region at this share of the way up its relative map
#: (``relative_maps``): on the tuning seeds 0.7 AP50 0.904, 0.8 0.902, 0.6 0.895, 0.5 0.874.
REFINE_LEVEL = 0.7
#: The view's peak is looked for in its middle, inside this share of its side from each edge
#: (the box fills the middle two thirds of a 1.5x view); a neighbour at the view's rim is not it.
REFINE_RIM = 0.17
#: ``box_views`` averages at most this many warped pixels a side into each pixel of a view: a
#: view more than this times the model's input is cut from the frame halved first, so that no
#: warp is larger than this times the input a side.
MAX_AVERAGED = 4
#: ``trusted_floor`` reads peaks as at least this far from 0 and 1 (a peak of 1 would need no
#: view at all); 1e-3 and 1e-4 kept the same boxes on the tuning seeds.
PEAK_CLIP = 1e-3
#: ``refine_in_views``: a second view's box with more than this times the area of the first
#: view's has most likely taken in a neighbour of the same prompt (the wider view shows more of
#: the frame: two cars side by side, people crossing) and is not blended in. On the tracking
#: benchmark's crossing clips blending every box cost IDF1 0.901 -> 0.882; 1.2 kept 0.900.
WIDER_GROWTH = 1.2
#: ``drop_contained``: a box with at least this share of its area inside a stronger box of its
#: prompt is a piece of that box's object (0.6 and 0.8 gave the same AP50 on the tuning seeds).
CONTAINED = 0.8


def box_views(
    frame: np.ndarray,
    xyxy: np.ndarray,
    size: int,
    fill: tuple[float, float, float],
    margins: tuple[float, ...] = VIEW_MARGINS,
) -> np.ndarray:
    """Square crops centred on each box, ``margin`` x its longer side, resized to ``size``.

    frame: HxWx3 uint8 BGR; xyxy: (n, 4). Returns (len(margins) * n, size, size, 3) float32 BGR
    in 0..255 (the model's input layout), margin-major: view ``m`` of box ``i`` is row
    ``m * n + i``. Parts of a crop outside the frame are ``fill`` (the model's mean colour), as
    windows hanging over the frame edge are.

    A view larger than ``size`` is averaged down, as the detector's windows and frames are
    (OpenCV's ``INTER_AREA``): warped bilinearly to ``k`` x ``size`` (``k`` = its side / size
    rounded up, so the warp never shrinks and no pixel is skipped), then each k x k block
    averaged. A view more than ``MAX_AVERAGED`` x ``size`` is cut from the frame halved
    (area-averaged) as often as brings it under that, so no warp is larger than that square
    (the halved frames made once per call, only as far down as its largest view needs).
    Sampled straight down, a 190-pixel view of a large object kept one pixel in three: sensor
    noise, texture and codec blocks came through aliased, and the view's verdict with them
    (docs/benchmarks.md#views-averaged-down-not-sampled-the-default).
    """
    n = len(xyxy)
    out = np.empty((len(margins) * n, size, size, 3), np.float32)
    if n == 0:
        return out
    levels = [frame]  # levels[k]: the frame halved k times
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2.0
    longest = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    for m, margin in enumerate(margins):
        sides = np.maximum(longest * margin, 1.0)
        for i in range(n):
            side = float(sides[i])
            x0, y0 = centres[i] - side / 2.0
            level = 0
            while side > MAX_AVERAGED * size and min(levels[level].shape[:2]) >= 2:
                if level + 1 == len(levels):
                    h, w = levels[level].shape[:2]
                    half = (w // 2, h // 2)
                    levels.append(cv2.resize(levels[level], half, interpolation=cv2.INTER_AREA))
                # pixel j of the next level is the mean of pixels 2j and 2j + 1 of this one (an
                # odd last row or column is dropped: the view shows fill for that one pixel)
                level, side, x0, y0 = level + 1, side / 2.0, (x0 - 0.5) / 2.0, (y0 - 0.5) / 2.0
            k = max(1, int(np.ceil(side / size)))
            view = _warp_view(levels[level], x0, y0, side, k * size, fill)
            if k > 1:
                view = cv2.resize(view, (size, size), interpolation=cv2.INTER_AREA)
            out[m * n + i] = view
    return out


def _warp_view(
    frame: np.ndarray, x0: float, y0: float, side: float, size: int, fill: tuple[float, ...]
) -> np.ndarray:
    """The ``side``-pixel square whose corner is (x0, y0) in ``frame``, warped bilinearly to
    ``size`` x ``size`` (float32 BGR); parts outside the frame are ``fill``."""
    h, w = frame.shape[:2]
    # only the part of the frame this view shows is converted to float (one pixel of slack
    # for the interpolation), not the whole frame once per box
    left, top = max(0, int(np.floor(x0)) - 1), max(0, int(np.floor(y0)) - 1)
    right, bottom = min(w, int(np.ceil(x0 + side)) + 1), min(h, int(np.ceil(y0 + side)) + 1)
    if right <= left or bottom <= top:  # the view lies wholly outside the frame
        return np.full((size, size, 3), fill, np.float32)
    roi = frame[top:bottom, left:right].astype(np.float32)
    scale = size / side
    affine = np.array(
        [[scale, 0.0, (left - x0) * scale], [0.0, scale, (top - y0) * scale]], np.float32
    )
    # One warp cuts, pads and resizes.
    return cv2.warpAffine(
        roi,
        affine,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )


def relative_maps(log_odds: np.ndarray) -> np.ndarray:
    """(n, g, g) each view's map rescaled to its own range: 0 at its least prompt-like token, 1 at
    its most; a flat view, or one not taken (NaN), is all 0 and shows nothing (``seen_boxes``).

    log_odds: (n, g, g) each box's own prompt against the background prompts on its view's patch
    tokens (``scoring.background_log_odds``). ``_view_box`` puts the edges where a map crosses
    ``REFINE_LEVEL`` of the way from the view's background to its peak; the rescaling makes that
    level mean the same whatever the model's logit scale or the view's contrast.
    """
    n = len(log_odds)
    flat = log_odds.astype(np.float32).reshape(n, -1)
    taken = ~np.isnan(flat).any(axis=1)
    out = np.zeros_like(flat)
    if taken.any():
        rows = flat[taken]
        low = rows.min(axis=1, keepdims=True)
        span = rows.max(axis=1, keepdims=True) - low
        out[taken] = np.divide(rows - low, span, out=np.zeros_like(rows), where=span > 1e-6)
    return out.reshape(log_odds.shape)


def _view_box(token_maps: np.ndarray) -> np.ndarray:
    """The box (x1, y1, x2, y2, in token cells) of the region round the peak of a (g, g) map,
    looked for inside the view's middle; edges placed where the map crosses the level."""
    g = token_maps.shape[0]
    rim = int(g * REFINE_RIM)
    middle = token_maps[rim : g - rim, rim : g - rim]
    r, c = np.unravel_index(int(middle.argmax()), middle.shape)
    peak = float(middle[r, c])
    level = REFINE_LEVEL * peak
    # 4-connected: a neighbour touching the object's region only at a corner is not part of it
    cells, _, labels = regions(token_maps >= level, token_maps, 4)
    own = labels[r + rim, c + rim]  # region labels count from 1
    cells = cells[own - 1 : own]
    return refine_edges(token_maps, cells, np.array([level]), 1, (g, g))[0]


def seen_boxes(
    xyxy: np.ndarray, token_maps: np.ndarray, margin: float, frame_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) the box each view's patch tokens show, in frame pixels, and (n,) bool: the views
    that show anything at all.

    xyxy: (n, 4) the boxes the views were cut around; token_maps: (n, g, g) each box's own
    prompt on the patch tokens of its view at ``margin`` (as ``box_views`` cut it), 0 where least
    like it (``relative_maps``). A view whose map is nowhere above zero (or NaN: not taken) shows
    nothing; its row is ``xyxy``'s.
    """
    h, w = frame_shape
    g = token_maps.shape[1]
    boxes = xyxy.astype(np.float32)
    out = boxes.copy()
    shows = np.nan_to_num(token_maps, nan=0.0).reshape(len(boxes), -1).max(axis=1) > 0.0
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    longer = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    sides = np.maximum(longer * margin, 1.0)
    for i in np.flatnonzero(shows):
        cells = _view_box(token_maps[i])
        origin = centres[i] - sides[i] / 2.0
        seen = cells * (sides[i] / g) + np.concatenate([origin, origin])
        seen[[0, 2]] = seen[[0, 2]].clip(0, w)
        seen[[1, 3]] = seen[[1, 3]].clip(0, h)
        out[i] = seen
    return out, shows


def refine_in_views(
    detections: Detections,
    token_maps: np.ndarray,
    margin: float,
    weight: float,
    frame_shape: tuple[int, int],
    second: tuple[np.ndarray, float] | None = None,
    share: float = 0.0,
) -> Detections:
    """Boxes moved by ``weight`` towards the boxes their views' patch tokens show.

    token_maps: (n, g, g) each box's own prompt on the patch tokens of its view at ``margin``
    (as ``box_views`` cut it; ``relative_maps``). A box whose view shows nothing above zero
    stays.
    ``second``: the same (maps, margin) for each box's second view (rows of zeros or NaN where
    a box was not seen in it); a box seen in both moves towards ``(1 - share)`` x the first
    view's box + ``share`` x the second's (the ``verify_refine_second`` setting), one seen in
    the first only, or whose second view's box is over ``WIDER_GROWTH`` x the first's area,
    towards the first's. Each view's token grid is coarse (8 tokens a side for the built-in
    model) and the two grids fall differently on the object, so their boxes' errors are partly
    independent and their blend is nearer the truth than either.
    """
    n = len(detections)
    if n == 0 or weight <= 0:
        return detections
    xyxy = detections.xyxy.astype(np.float32)
    target, shows = seen_boxes(xyxy, token_maps, margin, frame_shape)
    if second is not None and share > 0:
        other, also = seen_boxes(xyxy, second[0], second[1], frame_shape)
        both = shows & also & (_area(other) <= WIDER_GROWTH * _area(target))
        target[both] = (1.0 - share) * target[both] + share * other[both]
    out = np.where(shows[:, None], weight * target + (1.0 - weight) * xyxy, xyxy)
    return replace(detections, xyxy=out.astype(np.float32))


def _area(xyxy: np.ndarray) -> np.ndarray:
    """(n,) the areas of (n, 4) boxes (0 for an empty one)."""
    return np.prod(np.maximum(xyxy[:, 2:] - xyxy[:, :2], 0.0), axis=1)


def drop_contained(detections: Detections, share: float = CONTAINED) -> Detections:
    """The boxes without those lying ``share`` or more (of their own area) inside a stronger
    kept box of the same prompt, strongest first.

    Two pieces of one object (a region cut in two where the object narrows, ``split``) are
    disjoint in the frame's heatmap, so non-maximum suppression keeps both; each piece's first
    view shows the whole object, and ``verify_refine`` then moves one piece's box over the
    other's. The smaller, weaker box left inside the other can never be a second true box.
    """
    n = len(detections)
    if n < 2:
        return detections
    order = np.argsort(-detections.confidence, kind="stable")
    boxes, classes = detections.xyxy[order], detections.class_id[order]
    inter = box_intersections(boxes, boxes)  # (n, n)
    area = _area(boxes)
    inside = (inter >= share * area[:, None]) & (classes[:, None] == classes[None, :])
    keep = np.ones(n, bool)
    for i in range(1, n):  # n is at most verify_max
        keep[i] = not (inside[i, :i] & keep[:i]).any()
    return detections[order[keep]]


def turn_order(detections: Detections) -> np.ndarray:
    """The boxes' indices with prompts taking turns: every prompt's most confident box first,
    then every prompt's second, and so on, by confidence within a turn."""
    order = np.argsort(-detections.confidence, kind="stable")
    classes = detections.class_id[order]
    turn = np.empty(len(order), np.int64)  # the box's rank among its own prompt's boxes
    for k in np.unique(classes):
        mine = classes == k
        turn[mine] = np.arange(int(mine.sum()))
    return order[np.lexsort((np.arange(len(order)), turn))]  # by turn, then by confidence


def strongest(detections: Detections, limit: int = MAX_VERIFIED) -> Detections:
    """The ``limit`` boxes to verify (all of them when there are no more than that), in
    ``turn_order``.

    Ranking all boxes by confidence alone would let one prompt's crowd of candidates (a
    dashcam's road markings for "a white car") push out every candidate of another prompt whose
    scores run lower; with one prompt it is the same thing.
    """
    if len(detections) <= limit:
        return detections
    return detections[turn_order(detections)[:limit]]


def fully_viewed(detections: Detections, margins: int, budget: int | None) -> np.ndarray:
    """(n,) bool: the boxes seen at every one of ``margins`` when a frame may cut at most
    ``budget`` views (None: no limit). Every box gets its first view; the other views go to the
    strongest boxes (``turn_order``) while the budget lasts, so a frame crowded with candidates
    costs no more than one view per box up to ``budget``."""
    n = len(detections)
    full = np.ones(n, bool)
    if budget is None or margins <= 1 or n * margins <= budget:
        return full
    full[:] = False
    full[turn_order(detections)[: max(0, budget - n) // (margins - 1)]] = True
    return full


def rescore(
    detections: Detections,
    view_probs: np.ndarray,
    floor: float,
    *,
    seen: np.ndarray | None = None,
    recheck_floor: float | None = None,
    combine: str = "best",
    trust: float = 0.0,
) -> Detections:
    """Confidence x the box's view probability; boxes their views do not confirm go.

    view_probs: (views * n, K) probabilities of every view for every prompt, margin-major as
    ``box_views`` returns them. ``seen``: (views, n) bool, the views each box was seen in (None:
    all; the first view always). ``combine`` "best": the box's probability is its best view's,
    and it is kept when its first view reaches ``floor`` or another reaches ``recheck_floor``
    (None: ``floor`` as well, so: when its best view reaches ``floor``). "mean": the mean of the
    views it was seen in, kept from ``floor``. ``trust`` > 0 lowers both floors for boxes the
    heatmap is sure of (``trusted_floor``). The order of the surviving boxes is by new
    confidence.
    """
    n = len(detections)
    if n == 0:
        return detections
    per_view = view_probs.reshape(-1, n, view_probs.shape[1])  # (views, n, K)
    own = per_view[:, np.arange(n), detections.class_id]  # (views, n)
    peaks = detections.confidence
    lowest = trusted_floor(floor, peaks, trust)
    if combine == "mean":
        counted = np.ones_like(own, bool) if seen is None else seen
        mean = np.where(counted, own, 0.0).sum(axis=0) / counted.sum(axis=0)
        return _rescored(detections, mean, mean >= lowest)
    if seen is not None:
        own = np.where(seen, own, -1.0)
    first = own[0]
    others = own[1:].max(axis=0) if len(own) > 1 else np.full(n, -1.0, own.dtype)
    rescue = lowest if recheck_floor is None else trusted_floor(recheck_floor, peaks, trust)
    keep = (first >= lowest) | (others >= rescue)
    return _rescored(detections, np.maximum(first, others), keep)


def trusted_floor(floor: float, peaks: np.ndarray, trust: float) -> np.ndarray:
    """(n,) the view probability each box needs: ``floor``, lowered for boxes whose heatmap
    peak is high by ``trust`` x the peak's log-odds.

    Two pieces of evidence, added as log-odds the way independent evidence adds: a box is kept
    when ``trust * logit(peak) + logit(view) >= logit(floor)``. ``trust`` 0 is the plain rule
    (every box needs ``floor``); at 0.5 and floor 0.7 a box of peak 0.5 needs a view of 0.7,
    one of 0.99 a view of 0.19 and one of 0.999 a view of 0.07. Why: on scenes unlike the
    training's (the held-out generator: other drawing, occluders, photographs behind) the
    views rejected objects the frame's heatmap was all but certain of, while the frame's weak
    regions still need a view that agrees (docs/benchmarks.md, "Trusting sure boxes").
    Peaks are clipped to [``PEAK_CLIP``, 1 - ``PEAK_CLIP``] so that a peak of 1 is finite.
    """
    if trust <= 0:
        return np.full(len(peaks), floor, np.float32)
    p = np.clip(peaks.astype(np.float64), PEAK_CLIP, 1.0 - PEAK_CLIP)
    f = min(max(floor, PEAK_CLIP), 1.0 - PEAK_CLIP)
    log_odds = np.log(f / (1.0 - f)) - trust * np.log(p / (1.0 - p))
    return (1.0 / (1.0 + np.exp(-log_odds))).astype(np.float32)


def _rescored(detections: Detections, prob: np.ndarray, keep: np.ndarray) -> Detections:
    """The ``keep`` boxes, confidence x ``prob``, strongest first."""
    rescored = Detections(
        xyxy=detections.xyxy,
        confidence=(detections.confidence * prob).astype(np.float32),
        class_id=detections.class_id,
    )[keep]
    order = np.argsort(-rescored.confidence, kind="stable")
    return rescored[order]
