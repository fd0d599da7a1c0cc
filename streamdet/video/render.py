"""Drawing results on frames: boxes with labels, heatmap overlays, the "dim the rest" view.

Every function takes a BGR uint8 frame and a ``FrameResult`` and returns a new frame; the input is
never modified. Heatmaps are upscaled from the cell grid to the frame once per call with one resize.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.types import FrameResult

#: Distinct BGR colours, one per prompt index (cycled).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255),
    (255, 157, 151),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (211, 188, 0),
    (209, 99, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 149, 200),
    (199, 55, 255),
)


def colour_of(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def _heatmap_to_frame(result: FrameResult, index: int) -> np.ndarray:
    """One prompt's (rows, cols) heatmap as an (H, W) float32 map over the frame."""
    h, w = result.frame_shape
    hm = result.heatmaps[index]
    p = result.patch
    # Cells are patch x patch pixels; the last row/column may extend past the frame: crop it.
    full = cv2.resize(hm, (hm.shape[1] * p, hm.shape[0] * p), interpolation=cv2.INTER_NEAREST)
    return full[:h, :w]


def draw_heatmap(frame: np.ndarray, result: FrameResult, index: int = 0, alpha: float = 0.45):
    """Blend a colour-mapped heatmap of prompt ``index`` over the frame."""
    hm = _heatmap_to_frame(result, index)
    coloured = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(frame, 1.0 - alpha, coloured, alpha, 0.0)


def draw_dimmed(frame: np.ndarray, result: FrameResult, index: int = 0) -> np.ndarray:
    """The write-up's view: every pixel multiplied by its cell's score."""
    hm = _heatmap_to_frame(result, index)
    return (frame.astype(np.float32) * hm[:, :, None]).astype(np.uint8)


def draw_boxes(frame: np.ndarray, result: FrameResult, thickness: int = 2) -> np.ndarray:
    """Boxes with "prompt score" labels, a colour per prompt."""
    out = frame.copy()
    scale = max(0.4, min(out.shape[:2]) / 900)
    for (x1, y1, x2, y2), score, k in zip(
        result.detections.xyxy,
        result.detections.confidence,
        result.detections.class_id,
        strict=True,
    ):
        colour = colour_of(int(k))
        p1, p2 = (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1)
        cv2.rectangle(out, p1, p2, colour, thickness)
        text = f"{result.prompts[int(k)]} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(int(y1), th + base + 2)
        cv2.rectangle(out, (p1[0], ty - th - base - 2), (p1[0] + tw + 4, ty), colour, -1)
        cv2.putText(
            out,
            text,
            (p1[0] + 2, ty - base),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out
