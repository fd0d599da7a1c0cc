"""The shipped model, streamdet/scenes-clip, really sees: found where it is, not elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.boxes import box_iou

BUILTIN = BUILTIN_MODELS["streamdet/scenes-clip"]
pytestmark = pytest.mark.skipif(
    not (BUILTIN / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)


# The model's own settings (fine heatmaps from patch tokens, threshold 0.6). The circles are
# "large" in the scene generator's sense (90-110 px across at 640x360): they fit in one 128-pixel
# window, as the model's training crops do.


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return Detector(
        "streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path_factory.mktemp("c")
    )


def test_the_builtin_model_suggests_one_pass_with_fine_tokens(detector):
    assert detector.config.scoring.method == "dense" and detector.config.grid.patch == 32
    assert detector.frame_grid(360, 640).token_px == 11  # a 128-px window seen at 96 px
    assert detector.config.sources["method"] == "model"


@pytest.mark.parametrize(
    ("centre", "radius", "grey"),
    [((200, 150), 50, 128), ((470, 210), 50, 200), ((330, 180), 55, 60), ((150, 250), 45, 30)],
)
def test_a_large_red_circle_is_found_where_it_is_and_nowhere_else(detector, centre, radius, grey):
    frame = np.full((360, 640, 3), grey, np.uint8)
    cv2.circle(frame, centre, radius, (35, 30, 215), -1, cv2.LINE_AA)
    truth = np.array(
        [[centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius]],
        np.float32,
    )
    result = detector.detect(frame)
    assert len(result.detections) == 1, result.to_records()
    assert box_iou(result.detections.xyxy, truth)[0, 0] >= 0.6, result.to_records()
    # the heatmap is high only on the circle: every cell above the threshold reaches to within a
    # fine cell of it (its centre at most 1.5 cells beyond the circle's edge)
    patch = result.patch
    assert patch < 32  # fine cells
    rows, cols = np.nonzero(result.heatmaps[0] > detector.thresholds[0])
    assert len(rows) > 0
    assert np.all(np.abs(cols * patch + patch / 2 - centre[0]) < radius + 1.5 * patch)
    assert np.all(np.abs(rows * patch + patch / 2 - centre[1]) < radius + 1.5 * patch)


@pytest.mark.parametrize("grey", [30, 128, 230])
def test_nothing_is_found_on_an_empty_background(detector, grey):
    frame = np.full((360, 640, 3), grey, np.uint8)
    detector.set_prompts(["a red circle", "a person", "a red car", "a blue star"])
    try:
        assert len(detector.detect(frame).detections) == 0
    finally:
        detector.set_prompts(["a red circle"])


def test_demo_runs_offline_with_the_builtin_model(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "streamdet", "demo", "-o", str(tmp_path / "d"), "--frames", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "d" / "demo.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1, 2, 3]
    assert (tmp_path / "d" / "demo.mp4").stat().st_size > 0
