"""The one-pass ``dense`` method: frame geometry, the Detector path, and its settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamdet import Detector
from streamdet.config import DENSE_HEADS, GridConfig, ModelFacts, resolve_config
from streamdet.detect.onepass import FrameGrid, token_px
from streamdet.errors import ConfigError
from streamdet.synth.scenes import Placement, render_scene


def test_token_px_matches_what_a_token_covers_in_a_main_window() -> None:
    # the built-in model: 128 px windows seen as 64 px with 8 px patches -> 16 frame px a token
    assert token_px(GridConfig(patch=32, window=4), image_size=64, model_patch=8) == 16
    # ViT-B/32 at the write-up's grid: 256 px windows as 224 px, 32 px patches
    assert token_px(GridConfig(patch=64, window=4), image_size=224, model_patch=32) == 37
    assert token_px(GridConfig(patch=32, window=4, token_scale=2.0), 64, 8) == 32


def test_frame_grid_pads_with_the_fill_colour_and_resizes_to_whole_patches() -> None:
    fg = FrameGrid(frame_h=50, frame_w=70, token_px=16, model_patch=8)
    assert (fg.rows, fg.cols, fg.input_shape) == (4, 5, (32, 40))
    frame = np.full((50, 70, 3), 200, np.uint8)
    pixels = fg.pixels(frame, (10.0, 20.0, 30.0))
    assert pixels.shape == (32, 40, 3) and pixels.dtype == np.float32
    assert np.allclose(pixels[0, 0], 200)  # inside the frame
    assert np.allclose(pixels[-1, -1], (10, 20, 30))  # the padding at the bottom right


def _scene(height: int = 360, width: int = 640) -> tuple[np.ndarray, tuple[float, ...]]:
    """A grey frame with one red circle; the frame and the circle's box."""
    background = np.full((height, width, 3), 90, np.uint8)
    scene = render_scene(background, [Placement("circle", "red", "large", (360.0, 210.0), 120.0)])
    return scene.image, scene.objects[0].box


def test_dense_method_gives_token_heatmaps_and_boxes(tiny_model_dir: Path, tmp_path) -> None:
    det = Detector(
        tiny_model_dir, ["a red circle", "a dog"], method="dense", threshold=0.0, cache_dir=tmp_path
    )
    frame = np.random.default_rng(0).integers(0, 255, (100, 130, 3), np.uint8)
    result = det.detect(frame)
    px = det.frame_grid(100, 130).token_px
    assert result.patch == px
    assert result.heatmaps.shape == (2, -(-100 // px), -(-130 // px))
    assert ((result.heatmaps >= 0) & (result.heatmaps <= 1)).all()
    assert len(result.detections) >= 1  # threshold 0: every prompt has a region
    xyxy = result.detections.xyxy
    assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 2] <= 130).all() and (xyxy[:, 3] <= 100).all()
    assert result.timings.encode_ms > 0
    coarse = Detector(
        tiny_model_dir, ["a red circle"], method="dense", token_scale=2.0, cache_dir=tmp_path
    )
    assert coarse.frame_grid(100, 130).token_px >= 2 * px - 1


def test_dense_heads_change_the_heatmaps(tiny_model_dir: Path, tmp_path) -> None:
    frame = np.random.default_rng(1).integers(0, 255, (64, 96, 3), np.uint8)
    maps = {
        head: Detector(
            tiny_model_dir, ["a red circle"], method="dense", dense_head=head, cache_dir=tmp_path
        )
        .detect(frame)
        .heatmaps
        for head in DENSE_HEADS
    }
    assert len({m.tobytes() for m in maps.values()}) == len(DENSE_HEADS)


def test_the_built_in_model_finds_an_object_in_one_pass(tmp_path) -> None:
    det = Detector(prompts=["a red circle"], method="dense", cache_dir=str(tmp_path))
    frame, (a1, b1, a2, b2) = _scene()
    result = det.detect(frame)
    assert len(result.detections) >= 1
    x1, y1, x2, y2 = result.detections.xyxy[0]
    inter = max(0, min(x2, a2) - max(x1, a1)) * max(0, min(y2, b2) - max(y1, b1))
    union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter
    assert inter / union > 0.5, result.detections.xyxy


def test_dense_method_and_window_tokens_do_not_go_together() -> None:
    with pytest.raises(ConfigError, match="dense=True \\(set by you\\) needs method='windows'"):
        resolve_config({"method": "dense", "dense": True})
    # the model's suggestion of window tokens gives way quietly
    facts = ModelFacts({"dense": True})
    config = resolve_config({"method": "dense"}, model=facts)
    assert config.scoring.dense is False and "not applicable" in config.sources["dense"]


def test_per_method_suggestions_apply_to_their_method_only() -> None:
    facts = ModelFacts({"threshold": 0.3}, by_method={"dense": {"threshold": 0.2}})
    assert resolve_config({}, model=facts).boxes.threshold == 0.3
    dense = resolve_config({"method": "dense"}, model=facts)
    assert dense.boxes.threshold == 0.2 and dense.sources["threshold"] == "model"
    mine = resolve_config({"method": "dense", "threshold": 0.7}, model=facts)
    assert mine.boxes.threshold == 0.7
    with pytest.raises(ConfigError, match="token_scale"):
        resolve_config({"token_scale": 0})


def test_dense_reuse_skips_the_pass_only_while_nothing_changed(tiny_model_dir: Path, tmp_path):
    frame = np.random.default_rng(2).integers(0, 255, (96, 128, 3), np.uint8)
    moved = frame.copy()
    moved[10:40, 20:60] = 255 - moved[10:40, 20:60]  # something changed in one place
    det = Detector(tiny_model_dir, ["a red circle"], method="dense", reuse=0.0, cache_dir=tmp_path)
    plain = Detector(
        tiny_model_dir, ["a red circle"], method="dense", reuse=False, cache_dir=tmp_path
    )
    works, maps = [], []
    for f in (frame, frame, moved, moved, frame):
        result = det.detect(f)
        works.append((result.work.frames_computed, result.work.frames_reused))
        maps.append(result.heatmaps)
        np.testing.assert_array_equal(result.heatmaps, plain.detect(f).heatmaps)  # exact
    assert works == [(1, 0), (0, 1), (1, 0), (0, 1), (1, 0)]
    det.reset()
    assert det.detect(frame).work.frames_computed == 1  # a new stream starts afresh
