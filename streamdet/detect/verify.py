"""Second look at each box: score a crop around it, as R-CNN scores its proposals.

Heatmaps say where a prompt scores high, but a region is born from windows that each saw the
object off-centre, cut, or beside something else; its peak is a poor confidence. Green grass in a
photograph lifts "a green shape" in a few windows; a lamp post lifts "a person". Once a box
exists, the crop the model understands best is known: the box itself, centred, with some context
around it. Each candidate box is cut out as a square of ``margin`` x its longer side at two
margins (``VIEW_MARGINS``: 1.5 shows the object whole with a little context, 2.0 with its
surroundings, as the training crops did), all in one batch, and scored against the prompt and the
background prompts. The box's probability is the best of its views; its confidence becomes region
peak x that probability, and a box no view confirms (probability below ``floor``) is dropped.
A single view drops true boxes (a small object crowded by neighbours in its crop); the best of
two keeps them.

On the quality benchmark's tuning seeds this re-ranking, with the heatmap threshold lowered to let
more candidates in, raised AP50 and cut false boxes per frame (docs/benchmarks.md). It costs one
extra batch of ``margins x boxes`` crops per frame, not a second pass over the windows; at most
``verify_max`` boxes per frame are looked at (prompts in turns, each its strongest first; the
others are dropped: ``strongest``), so a frame full of weak candidates cannot stall a live source.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.config.settings import VerifyConfig
from streamdet.types import Detections

#: Crop sides as multiples of a box's longer side: the ``verify_margins`` setting's default.
VIEW_MARGINS = VerifyConfig.margins
#: At most this many boxes per frame are verified (``strongest``): ``verify_max``'s default.
MAX_VERIFIED = VerifyConfig.max_boxes


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
    """
    n = len(xyxy)
    out = np.empty((len(margins) * n, size, size, 3), np.float32)
    if n == 0:
        return out
    h, w = frame.shape[:2]
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2.0
    longest = np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    for m, margin in enumerate(margins):
        sides = np.maximum(longest * margin, 1.0)
        for i in range(n):
            x0, y0 = centres[i] - sides[i] / 2.0
            # only the part of the frame this view shows is converted to float (one pixel of
            # slack for the interpolation), not the whole frame once per box
            left, top = max(0, int(np.floor(x0)) - 1), max(0, int(np.floor(y0)) - 1)
            right = min(w, int(np.ceil(x0 + sides[i])) + 1)
            bottom = min(h, int(np.ceil(y0 + sides[i])) + 1)
            if right <= left or bottom <= top:  # the view lies wholly outside the frame
                out[m * n + i] = fill
                continue
            roi = frame[top:bottom, left:right].astype(np.float32)
            scale = size / float(sides[i])
            affine = np.array(
                [[scale, 0.0, (left - x0) * scale], [0.0, scale, (top - y0) * scale]], np.float32
            )
            # One warp cuts, pads and resizes. Bilinear, not area resampling: this is what the
            # quality benchmark's figures (docs/benchmarks.md) were measured with.
            out[m * n + i] = cv2.warpAffine(
                roi,
                affine,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=fill,
            )
    return out


def strongest(detections: Detections, limit: int = MAX_VERIFIED) -> Detections:
    """The ``limit`` boxes to verify (all of them when there are no more than that).

    Prompts take turns: every prompt's most confident box first, then every prompt's second, and
    so on, by confidence within a turn. Ranking all boxes by confidence alone would let one
    prompt's crowd of candidates (a dashcam's road markings for "a white car") push out every
    candidate of another prompt whose scores run lower; with one prompt it is the same thing.
    """
    if len(detections) <= limit:
        return detections
    order = np.argsort(-detections.confidence, kind="stable")
    classes = detections.class_id[order]
    turn = np.empty(len(order), np.int64)  # the box's rank among its own prompt's boxes
    for k in np.unique(classes):
        mine = classes == k
        turn[mine] = np.arange(int(mine.sum()))
    chosen = np.lexsort((np.arange(len(order)), turn))[:limit]  # by turn, then by confidence
    return detections[order[chosen]]


def rescore(detections: Detections, view_probs: np.ndarray, floor: float) -> Detections:
    """Confidence x best view probability; boxes whose best view is below ``floor`` go.

    view_probs: (views * n, K) probabilities of every view for every prompt, margin-major as
    ``box_views`` returns them. The order of the surviving boxes is by new confidence.
    """
    n = len(detections)
    if n == 0:
        return detections
    per_view = view_probs.reshape(-1, n, view_probs.shape[1])  # (views, n, K)
    best = per_view[:, np.arange(n), detections.class_id].max(axis=0)  # (n,)
    keep = best >= floor
    rescored = Detections(
        xyxy=detections.xyxy,
        confidence=(detections.confidence * best).astype(np.float32),
        class_id=detections.class_id,
    )[keep]
    order = np.argsort(-rescored.confidence, kind="stable")
    return rescored[order]
