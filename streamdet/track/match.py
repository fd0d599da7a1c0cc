"""Matching boxes to tracks: IoU, and the assignment with the most total IoU (Hungarian method).

ByteTrack solves the same assignment with the ``lap`` package; streamdet has no SciPy or ``lap``
in its default install, and a frame holds few boxes of one prompt, so a small O(n^3) Hungarian
solver (the classic potentials form) is enough. It is exact: two tracks crossing each other are
given the pairing that overlaps most in total, which a greedy "best pair first" match can miss.
"""

from __future__ import annotations

import numpy as np

from streamdet.detect.boxes import box_iou

__all__ = ["assign", "box_iou", "match"]


def assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """The (row, column) pairs of least total cost, one per row or column, whichever is fewer."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return []
    if n > m:
        return [(r, c) for c, r in assign(cost.T)]
    # rows <= columns: every row gets a column. u, v: potentials; way: the augmenting path.
    inf = float("inf")
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=int)  # owner[j]: the row (1-based) holding column j; 0 none
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        least = np.full(m + 1, inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < least[1:])
            least[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, least[1:], inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            least[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j])


def match(
    tracks: np.ndarray, boxes: np.ndarray, min_iou: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Match (n, 4) track boxes to (m, 4) found boxes (xyxy) by the most total IoU, keeping
    pairs that overlap by at least ``min_iou``.

    Returns (pairs (track, box), unmatched tracks, unmatched boxes).
    """
    if len(tracks) == 0 or len(boxes) == 0:
        return [], list(range(len(tracks))), list(range(len(boxes)))
    iou = box_iou(tracks.astype(np.float64), boxes.astype(np.float64))
    allowed = iou >= min_iou
    cost = np.where(allowed, 1.0 - iou, 2.0)  # a forbidden pair never beats leaving both alone
    pairs = [(t, b) for t, b in assign(cost) if allowed[t, b]]
    used_t = {t for t, _ in pairs}
    used_b = {b for _, b in pairs}
    return (
        pairs,
        [t for t in range(len(tracks)) if t not in used_t],
        [b for b in range(len(boxes)) if b not in used_b],
    )
