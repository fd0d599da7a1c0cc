"""Drawing results on frames: boxes with labels, heatmap overlays, the "dim the rest" view, and a
small FPS/latency overlay.

Every function takes a BGR uint8 frame and a ``FrameResult`` and returns a new frame; the input is
never modified. Drawing has to stay cheap next to inference even at 1080p, so heatmaps are
coloured (or turned into 8-bit gains) at cell resolution, a few hundred values, and only then
scaled to the frame with one nearest-neighbour resize of uint8 data; blending and dimming are
single OpenCV calls on uint8 images (no float copy of the frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from streamdet.errors import ConfigError
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

#: Heatmap views: none, a colour map blended on the frame, or the write-up's dimmed frame.
HEATMAP_VIEWS: tuple[str, ...] = ("none", "color", "dim")


def colour_of(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def _cells(result: FrameResult, index: int | None) -> np.ndarray:
    """One prompt's (rows, cols) heatmap, or the max over prompts when ``index`` is None."""
    if index is None:
        if len(result.heatmaps) == 0:
            return np.zeros(result.heatmaps.shape[1:], np.float32)
        return result.heatmaps.max(axis=0)
    return result.heatmaps[index]


def _to_frame(cells: np.ndarray, result: FrameResult) -> np.ndarray:
    """Scale a (rows, cols[, 3]) uint8 cell image to the frame: each cell covers patch x patch
    pixels and the last row/column may be cut by the frame edge."""
    h, w = result.frame_shape
    p = result.patch
    full = cv2.resize(
        cells, (cells.shape[1] * p, cells.shape[0] * p), interpolation=cv2.INTER_NEAREST
    )
    return full[:h, :w]


def _as_u8(cells: np.ndarray) -> np.ndarray:
    return (np.clip(cells, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def draw_heatmap(
    frame: np.ndarray, result: FrameResult, index: int | None = 0, alpha: float = 0.45
) -> np.ndarray:
    """Blend a colour-mapped heatmap of prompt ``index`` (None: the max over prompts)."""
    coloured = cv2.applyColorMap(_as_u8(_cells(result, index)), cv2.COLORMAP_JET)
    return cv2.addWeighted(frame, 1.0 - alpha, _to_frame(coloured, result), alpha, 0.0)


def draw_dimmed(frame: np.ndarray, result: FrameResult, index: int | None = 0) -> np.ndarray:
    """The write-up's view: every pixel multiplied by its cell's score (None: max over prompts)."""
    gain = _as_u8(_cells(result, index))
    gain3 = _to_frame(cv2.merge([gain, gain, gain]), result)
    return cv2.multiply(frame, gain3, scale=1.0 / 255.0)


def draw_boxes(frame: np.ndarray, result: FrameResult, thickness: int = 2) -> np.ndarray:
    """Boxes with "prompt score" labels ("#7 prompt score" when tracked), a colour per prompt."""
    out = frame.copy()
    _boxes_into(out, result, thickness)
    return out


def box_label(prompt: str, score: float, track_id: int | None = None) -> str:
    """A box's label: "a red car 0.82", or "#7 a red car 0.82" for track 7."""
    text = f"{prompt} {score:.2f}"
    return text if track_id is None else f"#{track_id} {text}"


def _boxes_into(out: np.ndarray, result: FrameResult, thickness: int = 2) -> None:
    scale = max(0.4, min(out.shape[:2]) / 900)
    d = result.detections
    tracks = [None] * len(d) if d.track_id is None else d.track_id.tolist()
    for (x1, y1, x2, y2), score, k, track in zip(
        d.xyxy, d.confidence, d.class_id, tracks, strict=True
    ):
        colour = colour_of(int(k))
        p1, p2 = (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1)
        cv2.rectangle(out, p1, p2, colour, thickness)
        text = box_label(result.prompts[int(k)], float(score), track)
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


def draw_overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """White text lines on a dark band at the top-left (FPS, latency, drops)."""
    out = frame.copy()
    _overlay_into(out, lines)
    return out


def _overlay_into(out: np.ndarray, lines: Sequence[str]) -> None:
    if not lines:
        return
    scale = max(0.4, min(out.shape[:2]) / 1000)
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1) for t in lines]
    line_h = max(th + base for (_, th), base in sizes) + 4
    width = max(tw for (tw, _), _ in sizes) + 8
    band = out[: min(out.shape[0], line_h * len(lines) + 4), : min(out.shape[1], width)]
    band[:] = (band * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        y = (i + 1) * line_h
        cv2.putText(
            out, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )


@dataclass(frozen=True)
class Renderer:
    """How a run draws its frames.

    heatmap: ``"none"``, ``"color"`` (colour map of the max over prompts, blended) or ``"dim"``
    (the write-up's view: pixels scaled by their cell's score). boxes: draw labelled boxes.
    overlay: draw the text lines the pipeline passes (FPS, latency, drops).
    """

    heatmap: str = "none"
    boxes: bool = True
    overlay: bool = False

    def __post_init__(self) -> None:
        if self.heatmap not in HEATMAP_VIEWS:
            raise ConfigError(
                f"heatmap view must be one of {', '.join(HEATMAP_VIEWS)}, but got {self.heatmap!r}"
            )

    def render(
        self, frame: np.ndarray, result: FrameResult, overlay: Sequence[str] = ()
    ) -> np.ndarray:
        """The annotated picture of one frame (a new array; ``frame`` is not modified).

        At most one full-frame copy is made: the heatmap views return a new array and boxes and
        text are drawn into it (or into one copy of the frame).
        """
        if self.heatmap == "color":
            out = draw_heatmap(frame, result, None)
        elif self.heatmap == "dim":
            out = draw_dimmed(frame, result, None)
        else:
            out = frame.copy()
        if self.boxes:
            _boxes_into(out, result)
        if self.overlay and overlay:
            _overlay_into(out, overlay)
        return out
