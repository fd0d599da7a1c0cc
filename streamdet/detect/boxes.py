"""From heatmaps to boxes: every instance, not one box per prompt.

A prompt's heatmap is thresholded; each connected region of cells above the threshold becomes one
box (its cells' extent in pixels, clipped to the frame) with the region's peak cell score as its
confidence. Greedy non-maximum suppression per prompt then removes boxes that overlap a more
confident box of the same prompt too much (this matters once several window scales are combined).
The write-up's own rule (one box around all cells above the threshold) is ``single_box``.

Objects of one prompt that touch (two people side by side, a row of parked cars) light up one
region, and one box around both matches neither. With ``split`` (the setting of that name) regions
are 4-connected, so cells that touch only at a corner part, and a region that erosion, a cell at a
time, breaks into two or more cores of at least ``split`` cells each is cut into one region per
core (``split_regions``): each cell goes to the core it reaches first through the region, much as
a watershed on the distance to the region's edge would cut it. On the quality benchmark's tuning
seeds this raised the built-in model's AP50 from 0.848 to 0.879, and 0.698 to 0.724 on held-out
seeds (docs/benchmarks.md); 0 keeps the 8-connected regions, never cut.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.types import Detections


def _cells_to_pixels(
    r0: np.ndarray,
    c0: np.ndarray,
    r1: np.ndarray,
    c1: np.ndarray,
    patch: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """Inclusive cell ranges -> (n, 4) float32 pixel boxes clipped to the frame (h, w)."""
    h, w = shape
    xyxy = np.stack([c0 * patch, r0 * patch, (c1 + 1) * patch, (r1 + 1) * patch], axis=1)
    xyxy = xyxy.astype(np.float32)
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    return xyxy


def regions(
    mask: np.ndarray, heatmap: np.ndarray, connectivity: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected regions of a boolean cell mask: (n, 4) inclusive cell ranges (r0, c0, r1, c1),
    (n + 1,) peaks (index 0: the background) and the (rows, cols) label of every cell."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=connectivity
    )
    stats = stats[1:]  # label 0 is the background
    c0, r0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    c1 = c0 + stats[:, cv2.CC_STAT_WIDTH] - 1
    r1 = r0 + stats[:, cv2.CC_STAT_HEIGHT] - 1
    return np.stack([r0, c0, r1, c1], axis=1), _peaks(labels, heatmap, count), labels


def _peaks(labels: np.ndarray, heatmap: np.ndarray, count: int) -> np.ndarray:
    """(count,) the highest score under each label, all labels at once."""
    peaks = np.zeros(count, np.float32)
    np.maximum.at(peaks, labels.ravel(), heatmap.ravel().astype(np.float32))
    return peaks


#: Erosion by one cell, 4-connected: each step of ``split_regions``.
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def split_regions(
    mask: np.ndarray, heatmap: np.ndarray, min_core: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``regions`` 4-connected, each region that erosion breaks into two or more cores of at
    least ``min_core`` cells cut into one region per core: its cells go to the core they reach
    first, growing through the region a cell a step (ties to the lower core).

    Erosion goes one cell deeper at a time until nothing is left, and a region is cut at the
    first depth where it breaks: two small objects joined by a neck one cell wide break at
    once, two large ones whose outlines merge into a waist (two cars bumper to bumper) a few
    cells deep. A convex region (one object) shrinks to one core and vanishes, and never
    breaks; nor does a small object, gone under erosion before it could. Same results as
    ``regions``; the cut regions' pieces are numbered after the others."""
    found = regions(mask, heatmap, 4)
    labels = found[2]
    n = len(found[0]) + 1
    whole = np.ones(n, bool)  # regions not cut yet (index 0: the background, never cut)
    whole[0] = False
    seeds = np.zeros(labels.shape, np.int32)
    eroded = mask.astype(np.uint8)
    while True:
        eroded = cv2.erode(eroded, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        eroded[~whole[labels]] = 0
        if not eroded.any():
            break
        count, cores = cv2.connectedComponents(eroded, connectivity=4)
        big = np.flatnonzero(np.bincount(cores.ravel(), minlength=count) >= min_core)
        big = big[big > 0]
        owner = np.zeros(count, np.int64)  # the region each core lies in
        owner[cores.ravel()] = labels.ravel()
        breaks = np.bincount(owner[big], minlength=n) >= 2
        if breaks.any():
            kept = np.zeros(count, bool)
            kept[big[breaks[owner[big]]]] = True
            chosen = kept[cores]
            seeds[chosen] = cores[chosen] + seeds.max()
            whole &= ~breaks
    in_cut = ~whole[labels] & (labels > 0)
    if not in_cut.any():
        return found
    grown = _grow(seeds, in_cut)
    # pieces of cut regions take labels after every other region's; empty labels are dropped
    merged = np.where(in_cut, grown + labels.max() + 1, labels)
    # label 0 stays the background's (appended, in case every cell is in a region)
    used, inverse = np.unique(np.append(merged.ravel(), 0), return_inverse=True)
    merged = inverse[:-1].reshape(labels.shape)
    n = len(used)
    rows, cols = np.indices(labels.shape)
    r0 = np.full(n, labels.shape[0], np.int64)
    c0 = np.full(n, labels.shape[1], np.int64)
    r1, c1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    flat = merged.ravel()
    np.minimum.at(r0, flat, rows.ravel())
    np.minimum.at(c0, flat, cols.ravel())
    np.maximum.at(r1, flat, rows.ravel())
    np.maximum.at(c1, flat, cols.ravel())
    cells = np.stack([r0, c0, r1, c1], axis=1)[1:]
    return cells, _peaks(merged, heatmap, n), merged


def _grow(seeds: np.ndarray, within: np.ndarray) -> np.ndarray:
    """``seeds`` (labels, 0 = none) grown a 4-neighbour a step into the unlabelled cells of
    ``within`` until nothing more is reached; a cell two seeds reach at once takes the lower."""
    out = seeds.copy()
    big = np.iinfo(np.int32).max
    while True:
        todo = within & (out == 0)
        if not todo.any():
            return out
        near = np.where(out > 0, out, big)
        best = np.full_like(out, big)
        np.minimum(best[1:], near[:-1], out=best[1:])
        np.minimum(best[:-1], near[1:], out=best[:-1])
        np.minimum(best[:, 1:], near[:, :-1], out=best[:, 1:])
        np.minimum(best[:, :-1], near[:, 1:], out=best[:, :-1])
        reached = todo & (best < big)
        if not reached.any():
            return out  # cells no seed can reach (not in a cut region's component)
        out[reached] = best[reached]


def _edge_offset(inside: float, outside: float, level: float) -> float:
    """Where the score crosses ``level`` between the centre of the outside cell (0) and that of
    the inside cell (1), by linear interpolation; 0.5 (the cell border) when it cannot tell.
    Plain floats: it runs four times per box, where numpy's per-call overhead dominated."""
    span = inside - outside
    if span <= 1e-6:
        return 0.5
    return min(1.0, max(0.0, (level - outside) / span))


def refine_edges(
    heatmap: np.ndarray,
    cells: np.ndarray,
    levels: np.ndarray,
    patch: int,
    frame_shape: tuple[int, int],
) -> np.ndarray:
    """Sub-cell boxes: each edge of a region's cell box moved to where the heatmap crosses the
    region's level between the edge cell and its outside neighbour.

    The heatmap is read as samples at cell centres. A box made of whole cells puts each edge at
    a cell border, which is where the crossing would be if the score dropped halfway between the
    two centres; here it is placed where the linear interpolation of the two scores meets the
    level (the strongest cell of the edge row/column is used), so an edge can move up to half a
    cell in or out. Edges on the frame border stay there. With 32-pixel cells this is the
    difference between a 20-pixel object's box being 32 or 64 pixels wide and fitting it.
    ``cells``: (n, 4) inclusive (r0, c0, r1, c1); ``levels``: (n,). Returns (n, 4) float32 xyxy.
    """
    h, w = frame_shape
    rows, cols = heatmap.shape
    heat = heatmap.astype(np.float32, copy=False)
    out = np.zeros((len(cells), 4), np.float32)
    for i, (r0, c0, r1, c1) in enumerate(cells.tolist()):
        level = float(levels[i])
        # the strongest cell of each column of the region's rows, and of each row of its columns
        by_col = heat[r0 : r1 + 1, max(c0 - 1, 0) : c1 + 2].max(axis=0).tolist()
        by_row = heat[max(r0 - 1, 0) : r1 + 2, c0 : c1 + 1].max(axis=1).tolist()
        left, top = int(c0 > 0), int(r0 > 0)  # where the region's own edge cell is
        x1, x2 = c0 * patch, (c1 + 1) * patch
        y1, y2 = r0 * patch, (r1 + 1) * patch
        if c0 > 0:
            x1 = (c0 - 0.5 + _edge_offset(by_col[left], by_col[0], level)) * patch
        if c1 < cols - 1:
            x2 = (c1 + 1.5 - _edge_offset(by_col[-2], by_col[-1], level)) * patch
        if r0 > 0:
            y1 = (r0 - 0.5 + _edge_offset(by_row[top], by_row[0], level)) * patch
        if r1 < rows - 1:
            y2 = (r1 + 1.5 - _edge_offset(by_row[-2], by_row[-1], level)) * patch
        out[i] = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
    return out


def region_boxes(
    heatmap: np.ndarray,
    threshold: float,
    patch: int,
    frame_shape: tuple[int, int],
    class_id: int,
    peak_ratio: float = 0.0,
    refine: bool = False,
    split: int = 0,
) -> Detections:
    """One box per connected region of ``heatmap`` (rows, cols) cells with score > threshold:
    8-connected, or with ``split`` > 0 4-connected and cut into cores (``split_regions``).

    ``peak_ratio`` > 0 makes each box the cells scoring at least that fraction of their region's
    peak. A window covers several cells, so an object lifts the mean score of cells up to
    ``window - 1`` cells around it; keeping only the cells near the peak undoes that blur without
    the per-frame normalisation of the reference method. Whether there is an object at all is
    still decided by the absolute ``threshold`` (the peak must pass it), but the box may include
    cells below it: a high threshold then costs no box size. Two objects merged into one region
    separate at that level.

    ``refine`` places each box edge inside its border cells, where the heatmap crosses the
    region's level (``refine_edges``), instead of on the cell border.
    """
    above = heatmap > threshold
    if not above.any():
        return Detections.empty()

    def find(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return split_regions(mask, heatmap, split) if split > 0 else regions(mask, heatmap)

    if peak_ratio <= 0:
        cells, peaks, _ = find(above)
    else:
        # Hysteresis: a region is detected when its peak passes the threshold, but its extent is
        # the cells near its own peak, which may lie below the threshold.
        low = heatmap >= peak_ratio * threshold
        _, peaks, labels = find(low)
        core = low & (heatmap >= peak_ratio * peaks[labels]) & (peaks[labels] > threshold)
        cells, peaks, _ = find(core)
        keep = peaks[1:] > threshold  # a merged neighbour whose own peak is too low goes
        cells, peaks = cells[keep], np.concatenate([peaks[:1], peaks[1:][keep]])
    r0, c0, r1, c1 = cells.T
    if refine:
        level = peak_ratio * peaks[1:] if peak_ratio > 0 else np.full(len(cells), threshold)
        xyxy = refine_edges(heatmap, cells, level, patch, frame_shape)
    else:
        xyxy = _cells_to_pixels(r0, c0, r1, c1, patch, frame_shape)
    return Detections(
        xyxy=xyxy,
        confidence=peaks[1:],
        class_id=np.full(len(cells), class_id, np.int64),
    )


def single_box(
    heatmap: np.ndarray, threshold: float, patch: int, frame_shape: tuple[int, int], class_id: int
) -> Detections:
    """The write-up's rule: one box around every cell above the threshold (or none)."""
    rows, cols = np.nonzero(heatmap > threshold)
    if len(rows) == 0:
        return Detections.empty()
    xyxy = _cells_to_pixels(
        rows.min(keepdims=True),
        cols.min(keepdims=True),
        rows.max(keepdims=True),
        cols.max(keepdims=True),
        patch,
        frame_shape,
    )
    peak = np.asarray([heatmap[rows, cols].max()], np.float32)
    return Detections(xyxy, peak, np.asarray([class_id], np.int64))


def box_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection areas of (n, 4) and (m, 4) xyxy boxes -> (n, m)."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.prod(np.clip(br - tl, 0, None), axis=2)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes -> (n, m)."""
    inter = box_intersections(a, b)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(detections: Detections, iou_threshold: float) -> Detections:
    """Greedy per-prompt non-maximum suppression; keeps the result sorted by confidence."""
    if len(detections) <= 1:
        return detections
    order = np.argsort(-detections.confidence, kind="stable")
    boxes = detections.xyxy[order]
    classes = detections.class_id[order]
    iou = box_iou(boxes, boxes)
    same = classes[:, None] == classes[None, :]
    keep = np.ones(len(order), bool)
    for i in range(len(order)):  # n is the number of boxes in one frame: small
        if keep[i]:
            suppress = (iou[i] > iou_threshold) & same[i]
            suppress[: i + 1] = False
            keep &= ~suppress
    return detections[order[keep]]


def heatmaps_to_detections(
    heatmaps: np.ndarray,
    thresholds: np.ndarray,
    patch: int,
    frame_shape: tuple[int, int],
    *,
    per_region: bool = True,
    iou_threshold: float = 0.5,
    peak_ratio: float = 0.0,
    refine: bool = False,
    split: int = 0,
) -> Detections:
    """(K, rows, cols) heatmaps and (K,) thresholds -> all boxes of all prompts, after NMS."""
    parts = [
        region_boxes(
            heatmaps[k], float(thresholds[k]), patch, frame_shape, k, peak_ratio, refine, split
        )
        if per_region
        else single_box(heatmaps[k], float(thresholds[k]), patch, frame_shape, k)
        for k in range(len(heatmaps))
    ]
    return nms(Detections.merge(parts), iou_threshold)
