"""Drawing: heatmaps land on the right cells, dimming scales pixels by their cell's score, the
input frame is never modified, and bad settings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.errors import ConfigError
from streamdet.render import (
    Renderer,
    colour_of,
    draw_boxes,
    draw_dimmed,
    draw_heatmap,
    draw_overlay,
)
from streamdet.types import Detections, FrameResult


def result(h: int = 70, w: int = 100, patch: int = 32) -> FrameResult:
    rows, cols = -(-h // patch), -(-w // patch)
    heat = np.zeros((2, rows, cols), np.float32)
    heat[0, 0, 1] = 1.0
    heat[1, 2, 3] = 0.5  # the last row and column are cut by the frame edge
    det = Detections(
        np.array([[10, 12, 60, 50]], np.float32), np.array([0.9], np.float32), np.array([1])
    )
    return FrameResult(det, heat, ("a red car", "a person"), (h, w), patch)


def frame(h: int = 70, w: int = 100) -> np.ndarray:
    return np.full((h, w, 3), 200, np.uint8)


def test_dimmed_view_scales_each_pixel_by_its_cells_score():
    f, r = frame(), result()
    out = draw_dimmed(f, r, None)  # max over prompts
    assert out.shape == f.shape and out.dtype == np.uint8
    assert (out[0:32, 32:64] == 200).all()  # score 1
    assert (np.abs(out[64:70, 96:100].astype(int) - 100) <= 1).all()  # score 0.5, cut cell
    assert (out[0:32, 0:32] == 0).all()  # score 0
    only_first = draw_dimmed(f, r, 0)
    assert (only_first[64:70, 96:100] == 0).all()


def test_heatmap_overlay_colours_only_the_hot_cells_differently():
    f, r = frame(), result()
    out = draw_heatmap(f, r, 0)
    hot, cold = out[5, 40], out[5, 5]
    assert not np.array_equal(hot, cold)
    assert np.array_equal(out[5, 5], out[40, 80])  # two cold cells look alike


def test_drawing_never_modifies_the_input_frame():
    f, r = frame(), result()
    before = f.copy()
    for view in ("none", "color", "dim"):
        out = Renderer(heatmap=view, overlay=True).render(f, r, ["12.0 FPS"])
        assert out is not f
    draw_boxes(f, r)
    draw_overlay(f, ["x"])
    assert np.array_equal(f, before)


def test_boxes_are_drawn_in_the_prompts_colour():
    out = draw_boxes(frame(), result())
    assert tuple(out[30, 10]) == colour_of(1)  # left edge of the box of prompt 1
    assert tuple(out[30, 30]) == (200, 200, 200)  # inside stays


def test_overlay_darkens_a_band_and_writes_text():
    out = draw_overlay(frame(), ["12.0 FPS", "latency 80 ms"])
    assert out[:20, :40].mean() < 150 and out[60:, 80:].mean() == 200


def test_unknown_heatmap_view_is_refused():
    with pytest.raises(ConfigError, match="heatmap view"):
        Renderer(heatmap="rainbow")


def test_render_with_nothing_to_draw_returns_a_copy():
    f = frame()
    out = Renderer(boxes=False).render(f, result())
    assert out is not f and np.array_equal(out, f)
