"""The one-pass method's second look: finer tokens only where the first pass found something.

The built-in model finds small and cut objects better with finer tokens (12 frame pixels a token
instead of 16: held-out AP50 0.702 against 0.676 over four seeds), but a whole frame of finer
tokens costs 2.7x the tower time, since attention grows with the square of the tokens. Where
most of a frame is background, the ``dense`` method can look twice instead:

1. a coarse pass over the whole frame (``token_scale``), whose heatmaps only say *where* to look;
2. every frame cell whose best prompt reaches ``zoom_level`` in the coarse heatmaps is marked,
   the marks are grown by ``zoom_margin`` fine tokens of context (without it a crop's tokens
   see too little around them and do worse than the coarse pass), touching marks become one
   region, and each region's bounding box goes through the frame tower again at the finer
   ``zoom_scale`` tokens;
3. the frame's heatmaps are the coarse ones resampled onto the fine cells, with each region's
   fine heatmaps pasted over them, less ``TRIM`` tokens on each side that faces the rest of
   the frame (those tokens see nothing beyond the crop).

Boxes, verification and drawing then work on the fine cells unchanged. It is an option (preset
``fine``), not the default: on the quality benchmark's scenes the candidates and their context
cover most of the frame, and the built-in model finds its prompts almost everywhere in real
footage, so the two passes cost about what one whole pass of fine tokens costs (1.5x to 2.2x
the default's time) for the best tuning AP50 measured (docs/benchmarks.md, "A second, finer
pass").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Crop sides are multiples of this many fine tokens (or the frame's side): the frame tower
#: keeps one session per input shape (``streamdet.clip.frame_graph.sized_graph``), and a new
#: shape costs about 25 ms to prepare on two cores, so crops come in few shapes.
STEP = 16

#: Fine tokens at each side of a crop that faces the rest of the frame and are not pasted back
#: (at most the crop's margin, so that the candidates themselves always are): they attend to
#: nothing beyond the crop's edge.
TRIM = 2


@dataclass(frozen=True)
class ZoomRegion:
    """One crop of the frame in fine cells (rows ``top:bottom``, columns ``left:right``) and the
    part of it that is pasted back (``keep``: top, left, bottom, right, also in fine cells)."""

    top: int
    left: int
    bottom: int
    right: int
    keep: tuple[int, int, int, int]

    def pixels(self, cell: int, frame_shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The crop in frame pixels (y0, x0, y1, x1), cut at the frame's edge."""
        h, w = frame_shape
        return (
            self.top * cell,
            self.left * cell,
            min(h, self.bottom * cell),
            min(w, self.right * cell),
        )


def fine_shape(frame_shape: tuple[int, int], fine_px: int) -> tuple[int, int]:
    """(rows, cols) of ``fine_px`` cells covering the frame (the last ones may be cut)."""
    h, w = frame_shape
    return -(-h // fine_px), -(-w // fine_px)


def resample(
    heatmaps: np.ndarray, coarse_px: int, fine_px: int, shape: tuple[int, int]
) -> np.ndarray:
    """(K, r, c) heatmaps of ``coarse_px`` cells onto ``shape`` cells of ``fine_px``: each fine cell
    takes the coarse cell under its centre."""
    rows, cols = shape
    ys = np.minimum((np.arange(rows) * fine_px + fine_px / 2) // coarse_px, heatmaps.shape[1] - 1)
    xs = np.minimum((np.arange(cols) * fine_px + fine_px / 2) // coarse_px, heatmaps.shape[2] - 1)
    return heatmaps[:, ys.astype(np.intp)][:, :, xs.astype(np.intp)]


def _fit(lo: int, hi: int, n: int) -> tuple[int, int]:
    """The span [lo, hi) grown to a multiple of ``STEP`` (or to ``n``) about its centre, and
    moved inside [0, n)."""
    length = min(n, -(-(hi - lo) // STEP) * STEP)
    lo = max(0, min(lo - (length - (hi - lo)) // 2, n - length))
    return lo, lo + length


def _boxes(best: np.ndarray, level: float, margin: int) -> list[tuple[int, int, int, int]]:
    """Crops (top, left, bottom, right) around the cells of ``best`` (rows, cols) that reach
    ``level``, grown by ``margin`` cells, sides fitted to ``STEP``, overlapping ones merged."""
    rows, cols = best.shape
    marked = (best >= level).astype(np.uint8)
    if not marked.any():
        return []
    if margin:
        marked = cv2.dilate(marked, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(marked, connectivity=8)

    def fitted(top: int, left: int, bottom: int, right: int) -> tuple[int, int, int, int]:
        (top, bottom), (left, right) = _fit(top, bottom, rows), _fit(left, right, cols)
        return top, left, bottom, right

    boxes = [fitted(y, x, y + bh, x + bw) for x, y, bw, bh in stats[1:count, :4].tolist()]
    merged = True
    while merged:  # a crop never pays twice for the same tokens
        merged = False
        for i, a in enumerate(boxes):
            for j in range(i + 1, len(boxes)):
                b = boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    union = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    boxes[i] = fitted(*union)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def plan_regions(fine: np.ndarray, level: float, margin: int) -> tuple[ZoomRegion, ...]:
    """The crops for one frame from its coarse heatmaps resampled to fine cells (K, rows, cols):
    cells whose best prompt reaches ``level``, grown by ``margin`` cells, as non-overlapping
    boxes of few shapes.

    Every candidate is zoomed, with all the context its neighbours bring: on the tuning seeds,
    leaving the weakest crops to the first pass (a budget of a quarter or half of the frame)
    scored below one pass at the model's own tokens, and one crop per candidate, overlapping
    (less context, less time), scored 0.846 against 0.866 (docs/benchmarks.md, "A second,
    finer pass")."""
    rows, cols = fine.shape[1:]
    if fine.size == 0:
        return ()
    trim, chosen = min(TRIM, margin), []
    for top, left, bottom, right in _boxes(fine.max(axis=0), level, margin):
        keep = (
            top if top == 0 else top + trim,
            left if left == 0 else left + trim,
            bottom if bottom == rows else bottom - trim,
            right if right == cols else right - trim,
        )
        chosen.append(ZoomRegion(top, left, bottom, right, keep))
    return tuple(chosen)


def paste(fine: np.ndarray, region: ZoomRegion, heat: np.ndarray) -> None:
    """Write a crop's fine heatmaps (K, crop rows, crop cols) into the frame's (in place), only
    over the region's ``keep`` part."""
    top, left, bottom, right = region.keep
    fine[:, top:bottom, left:right] = heat[
        :, top - region.top : bottom - region.top, left - region.left : right - region.left
    ]
