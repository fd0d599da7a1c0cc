"""Large frames seen at a working size (``max_side``): the dense method's tokens grow with a frame
longer than ``max_side``, as if it were resized to it, while boxes and heatmaps stay in the
frame's own pixels."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.config import GridConfig
from streamdet.detect.onepass import token_px
from streamdet.errors import ConfigError


def test_tokens_grow_with_a_frame_longer_than_max_side() -> None:
    grid = GridConfig(patch=32, window=4, max_side=640)  # 16-pixel tokens for a 64-pixel model
    sides = {480: 16, 640: 16, 960: 24, 1280: 32, 1920: 48, 1366: 34}
    for longer, px in sides.items():
        assert token_px(grid, 64, 8, longer) == px
    # the frame's tokens along its longer side stay what max_side has (40), within rounding
    for longer in (960, 1280, 1366, 1920):
        assert abs(longer / token_px(grid, 64, 8, longer) - 40) <= 0.5
    # token_scale still scales on top (the fast preset's 1.5)
    coarse = GridConfig(patch=32, window=4, max_side=640, token_scale=1.5)
    assert token_px(coarse, 64, 8, 640) == 24 and token_px(coarse, 64, 8, 1280) == 48
    # 0: every frame at its own size
    assert token_px(GridConfig(patch=32, window=4), 64, 8, 1920) == 16


needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)


@needs_builtin
def test_the_built_in_model_sees_large_frames_at_640(tmp_path) -> None:
    det = Detector("streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path)
    assert det.config.grid.max_side == 640
    # a 128-pixel window seen at 96 pixels: 10.67-pixel tokens, times the frame's size over 640
    assert det.frame_grid(360, 640).token_px == 11
    assert det.frame_grid(720, 1280).token_px == 21
    assert det.frame_grid(1080, 1920).token_px == 32
    full = Detector("streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path, max_side=0)
    assert full.frame_grid(720, 1280).token_px == 11


@needs_builtin
def test_boxes_and_heatmaps_of_a_large_frame_are_in_its_own_pixels(tmp_path) -> None:
    frame = np.full((720, 1280, 3), 128, np.uint8)
    cv2.circle(frame, (400, 340), 100, (35, 30, 215), -1, cv2.LINE_AA)
    cv2.rectangle(frame, (840, 240), (1040, 440), (215, 40, 30), -1)  # a blue square beside it
    result = Detector("streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path).detect(frame)
    assert result.patch == 21 and result.heatmaps.shape[1:] == (35, 61)
    assert len(result.detections) == 1
    x1, y1, x2, y2 = result.detections.xyxy[0]
    truth = np.array([300, 240, 500, 440], np.float32)
    inter = max(0.0, min(x2, truth[2]) - max(x1, truth[0])) * max(
        0.0, min(y2, truth[3]) - max(y1, truth[1])
    )
    union = (x2 - x1) * (y2 - y1) + 200 * 200 - inter
    assert inter / union > 0.7  # where the circle is in the 1280x720 frame


@needs_builtin
def test_the_second_pass_grows_with_the_first(tmp_path) -> None:
    fine = Detector("streamdet/scenes-clip", ["a red circle"], preset="fine", cache_dir=tmp_path)
    assert fine.frame_grid(360, 640).token_px == 16 and fine._zoom_token_px(360, 640) == 8
    assert fine.frame_grid(720, 1280).token_px == 32 and fine._zoom_token_px(720, 1280) == 16


def test_a_bad_max_side_is_refused_in_one_line_and_the_flag_sets_it() -> None:
    with pytest.raises(ConfigError, match="max_side must be a whole number of 0 or more"):
        Detector("streamdet/scenes-clip", ["a car"], max_side=-640)
    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    chosen = settings_from_args(parser.parse_args(["--max-side", "960"])).overrides
    assert chosen["max_side"] == 960
