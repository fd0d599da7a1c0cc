"""Per-prompt thresholds set with the prompts (the live view's sliders): kept, checked, applied."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet import Detector
from streamdet.demo import demo_frames
from streamdet.errors import ConfigError


@pytest.fixture(scope="module")
def detector():
    return Detector(prompts=["a red car", "a person"], preset="fast", threshold={"a person": 0.6})


def test_thresholds_start_from_the_configuration(detector):
    detector.set_prompts(["a red car", "a person"])
    base = detector.config.boxes.threshold  # the model's suggestion
    assert base != 0.6
    assert detector.prompt_thresholds() == pytest.approx({"a red car": base, "a person": 0.6})


def test_set_prompts_takes_thresholds_and_keeps_them(detector):
    detector.set_prompts(["a red car", "a person"], thresholds={"a red  car": 0.9})
    assert detector.prompt_thresholds() == pytest.approx({"a red car": 0.9, "a person": 0.6})
    detector.set_prompts(["a person", "a red car", "a green car"])  # kept across later calls
    base = detector.config.boxes.threshold
    assert detector.prompt_thresholds() == pytest.approx(
        {"a person": 0.6, "a red car": 0.9, "a green car": base}
    )
    np.testing.assert_allclose(detector.thresholds, [0.6, 0.9, base], rtol=1e-6)


@pytest.mark.parametrize(
    ("thresholds", "words"),
    [({"a person": 1.2}, "between 0 and 1"), ({"a dog": 0.2}, "not one of the prompts")],
)
def test_bad_thresholds_change_nothing(detector, thresholds, words):
    detector.set_prompts(["a red car", "a person"])
    before = detector.prompt_thresholds()
    with pytest.raises(ConfigError, match=words):
        detector.set_prompts(["a person"], thresholds=thresholds)
    assert detector.prompts == ("a red car", "a person")
    assert detector.prompt_thresholds() == before


def test_a_higher_threshold_keeps_fewer_boxes(detector):
    frame = demo_frames(1, 360, 640, 0)[0]
    detector.set_prompts(["a red car", "a person"], thresholds={"a person": 0.05})
    low = detector.detect(frame).detections
    # the threshold gates the heatmap peaks, not the boxes' confidence: the built-in model's
    # people on this frame peak above 0.999 (recipe stage 5), so only 1.0 shuts them out
    detector.set_prompts(["a red car", "a person"], thresholds={"a person": 1.0})
    high = detector.detect(frame).detections
    assert len(low.confidence) > len(high.confidence)
    assert (low.class_id == 1).any() and not (high.class_id == 1).any()  # the people went
    assert (high.class_id == 0).sum() == (low.class_id == 0).sum()  # the car stayed
    detector.set_prompts(["a red car", "a person"], thresholds={"a person": 0.6})
