"""The other verification crops as a second opinion (``verify_recheck``, ``verify_recheck_floor``):
taken only for boxes whose first crop gives their prompt at least ``verify_recheck``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.cli.flags import settings_from_args
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.scoring import prompt_vs_background
from streamdet.detect.verify import box_views, rescore
from streamdet.errors import ConfigError
from streamdet.types import Detections

needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)

THREE = Detections(
    np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32),
    np.ones(3, np.float32),
    np.zeros(3, np.int64),
)


def _probs(first: list[float], second: list[float]) -> np.ndarray:
    """(views * n, 1) probabilities, margin-major, for THREE's one prompt."""
    return np.array(first + second, np.float32)[:, None]


def test_without_a_second_opinion_a_box_needs_its_best_view_at_the_floor() -> None:
    kept = rescore(THREE, _probs([0.1, 0.5, 0.05], [0.3, 0.2, 0.1]), 0.25)
    assert kept.xyxy[:, 0].tolist() == [20, 0]  # 0.5 (first view), then 0.3 (second view)
    np.testing.assert_allclose(kept.confidence, [0.5, 0.3])


def test_the_second_opinion_rescues_a_box_only_at_its_own_floor() -> None:
    probs = _probs([0.1, 0.5, 0.1], [0.3, 0.2, 0.45])
    kept = rescore(THREE, probs, 0.25, recheck_floor=0.4)
    # box 0: first 0.1, second 0.3 < 0.4: dropped; box 1: first 0.5 holds; box 2: rescued
    assert kept.xyxy[:, 0].tolist() == [20, 40]
    np.testing.assert_allclose(kept.confidence, [0.5, 0.45])


def test_views_not_taken_do_not_count() -> None:
    seen = np.array([[True, True, True], [True, False, False]])
    kept = rescore(THREE, _probs([0.1, 0.5, 0.1], [0.9, 0.9, 0.9]), 0.25, seen=seen)
    assert kept.xyxy[:, 0].tolist() == [0, 20]  # box 2's unseen 0.9 is not a view
    np.testing.assert_allclose(kept.confidence, [0.9, 0.5])


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """A red circle, a blue square and a red square: candidates the first view is sure, unsure
    and doubtful of for "a red circle"."""
    frame = np.full((360, 640, 3), 128, np.uint8)
    cv2.circle(frame, (140, 170), 45, (35, 30, 215), -1, cv2.LINE_AA)
    cv2.rectangle(frame, (300, 120), (390, 210), (215, 40, 30), -1)
    cv2.rectangle(frame, (470, 120), (560, 210), (35, 30, 215), -1)
    return frame


def _detector(tmp_path, **settings) -> Detector:
    base = {
        "cache_dir": tmp_path,
        "precision": "fp32",
        "threshold": 0.0,
        "verify_refine": 0.0,
        "verify_combine": "best",  # the rescue floor is the best view's rule
        "verify_trust": 0.0,  # the floors as set, whatever the peak (test_verify_trust.py)
    }
    return Detector("streamdet/scenes-clip", ["a red circle"], **{**base, **settings})


@needs_builtin
def test_the_second_opinion_is_an_option_of_the_built_in_model(tmp_path) -> None:
    det = Detector("streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path)
    assert det.config.verify.margins == (1.5, 2.0) and det.config.verify.recheck == 0.0
    chosen = Detector(
        "streamdet/scenes-clip",
        ["a red circle"],
        cache_dir=tmp_path,
        verify_combine="best",
        verify_recheck=0.05,
    )
    assert chosen.config.verify.recheck == 0.05 and chosen.config.verify.recheck_floor == 0.4


@needs_builtin
def test_only_boxes_the_first_crop_is_unsure_of_get_the_second(scene, tmp_path) -> None:
    """Every box kept (floors 0) and left where it is: the crops computed are one per box plus
    one per box whose first crop gives the prompt at least ``verify_recheck``."""
    floors = {"verify_floor": 0.0, "verify_recheck_floor": 0.0}
    once = _detector(tmp_path, verify_margins=[1.5], **floors).detect(scene)
    boxes = once.detections.xyxy
    det = _detector(tmp_path, verify_margins=[1.5, 2.0], **floors)
    model, state = det.model, det._state
    views = box_views(scene, boxes, model.image_size, model.fill, (1.5,))
    first = prompt_vs_background(
        model.embed_images(views), state.embeddings, state.background, model.logit_scale
    )[:, 0]
    # a threshold between the first crops' probabilities: some boxes above it, some below
    ordered = np.sort(first)
    gaps = np.diff(ordered)
    assert len(boxes) >= 2 and gaps.max() > 0.05, "the scene should give sure and unsure boxes"
    cut = float(ordered[np.argmax(gaps)] + gaps.max() / 2)
    unsure = int((first >= cut).sum())
    assert 0 < unsure < len(boxes)
    cascade = _detector(tmp_path, verify_margins=[1.5, 2.0], verify_recheck=cut, **floors)
    result = cascade.detect(scene)
    assert len(result.detections) == len(boxes)
    assert result.work.views_computed == len(boxes) + unsure
    every = _detector(tmp_path, verify_margins=[1.5, 2.0], verify_recheck=0.0, **floors)
    assert every.detect(scene).work.views_computed == 2 * len(boxes)


@needs_builtin
def test_a_box_the_first_crop_rejects_is_kept_by_a_second_that_reaches_its_floor(
    scene, tmp_path
) -> None:
    # the circle's crops give "a red circle" 0.99-something: a first-view floor above that
    # rejects it; the second crop keeps it when its floor is lower, not when it is as high
    strict = {
        "verify_floor": 0.9999,
        "verify_margins": [1.5, 2.0],
        "verify_recheck": 0.05,
        "threshold": 0.5,
    }
    rescued = _detector(tmp_path, verify_recheck_floor=0.5, **strict).detect(scene)
    dropped = _detector(tmp_path, verify_recheck_floor=0.9999, **strict).detect(scene)
    assert len(rescued.detections) >= 1 and len(dropped.detections) == 0
    x1, y1, x2, y2 = rescued.detections.xyxy[0]
    assert x1 < 140 < x2 and y1 < 170 < y2  # the circle


@needs_builtin
def test_kept_crops_give_the_second_opinion_of_new_crops(scene, tmp_path) -> None:
    """With reuse, a still frame's second frame computes no crop: its boxes keep both their
    first and (where taken) second crops, and give what a detector without reuse gives."""
    settings = {"verify_floor": 0.0, "verify_margins": [1.5, 2.0], "verify_recheck": 0.05}
    det = _detector(tmp_path, reuse=0.02, **settings)
    first, second = det.detect(scene), det.detect(scene)
    assert first.work.views_computed > len(first.detections)  # some second opinions taken
    assert second.work.views_computed == 0
    assert second.work.views_reused == first.work.views_computed
    fresh = _detector(tmp_path, reuse=False, **settings).detect(scene)
    np.testing.assert_allclose(second.detections.confidence, fresh.detections.confidence, 1e-5)
    np.testing.assert_allclose(second.detections.xyxy, fresh.detections.xyxy, atol=1e-3)


def test_verify_recheck_must_be_a_probability() -> None:
    with pytest.raises(ConfigError, match="verify_recheck must be a number between 0 and 1"):
        Detector("streamdet/scenes-clip", ["a car"], verify_recheck=2)
    with pytest.raises(ConfigError, match="verify_recheck_floor must be a number between 0"):
        Detector("streamdet/scenes-clip", ["a car"], verify_recheck_floor=-0.1)


def test_the_flags_set_the_second_opinion() -> None:
    import argparse

    from streamdet.cli.flags import add_detector_flags

    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    args = parser.parse_args(["--verify-recheck", "0.1", "--verify-recheck-floor", "0.5"])
    chosen = settings_from_args(args).overrides
    assert chosen["verify_recheck"] == 0.1 and chosen["verify_recheck_floor"] == 0.5
    assert Detector("streamdet/scenes-clip", ["a car"], **chosen).config.verify.recheck == 0.1
