"""What a box's verification crops make together (``verify_combine``: the best one or their mean)
and how many crops a frame may cut (``verify_budget``: past it, boxes get the first size only)."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.scoring import prompt_vs_background
from streamdet.detect.verify import box_views, fully_viewed, rescore, turn_order
from streamdet.errors import ConfigError
from streamdet.types import Detections

needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)

THREE = Detections(
    np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32),
    np.array([1.0, 0.5, 1.0], np.float32),
    np.zeros(3, np.int64),
)


def _probs(first: list[float], second: list[float]) -> np.ndarray:
    """(views * n, 1) probabilities, margin-major, for THREE's one prompt."""
    return np.array(first + second, np.float32)[:, None]


def test_the_mean_of_the_views_is_the_box_probability() -> None:
    # box 0: 0.9 / 0.1 -> 0.5, kept; box 1: 0.3 / 0.3 -> 0.3, kept; box 2: 0.5 / 0.0 -> 0.25 < 0.3
    probs = _probs([0.9, 0.3, 0.5], [0.1, 0.3, 0.0])
    kept = rescore(THREE, probs, 0.3, combine="mean")
    assert kept.xyxy[:, 0].tolist() == [0, 20]
    np.testing.assert_allclose(kept.confidence, [1.0 * 0.5, 0.5 * 0.3])
    # the best view's rule keeps all three, box 2 on its first view
    best = rescore(THREE, probs, 0.3, combine="best")
    assert sorted(best.xyxy[:, 0].tolist()) == [0, 20, 40]


def test_the_mean_counts_only_the_views_a_box_was_seen_in() -> None:
    seen = np.array([[True, True, True], [True, False, False]])
    probs = _probs([0.6, 0.5, 0.1], [0.0, 0.9, 0.9])
    kept = rescore(THREE, probs, 0.25, seen=seen, combine="mean")
    # box 0: (0.6 + 0.0) / 2; box 1: 0.5 alone (its 0.9 not taken); box 2: 0.1 alone, dropped
    assert kept.xyxy[:, 0].tolist() == [0, 20]
    np.testing.assert_allclose(kept.confidence, [0.3, 0.25])


def test_turn_order_lets_every_prompt_have_its_strongest_first() -> None:
    dets = Detections(
        np.zeros((5, 4), np.float32),
        np.array([0.9, 0.8, 0.7, 0.3, 0.2], np.float32),
        np.array([0, 0, 0, 1, 1], np.int64),
    )
    assert turn_order(dets).tolist() == [0, 3, 1, 4, 2]


def test_the_other_views_go_to_the_strongest_boxes_while_the_crops_last() -> None:
    dets = Detections(
        np.zeros((5, 4), np.float32),
        np.array([0.9, 0.8, 0.7, 0.3, 0.2], np.float32),
        np.array([0, 0, 0, 1, 1], np.int64),
    )
    assert fully_viewed(dets, 2, None).all()  # no limit
    assert fully_viewed(dets, 2, 10).all()  # 5 boxes x 2 views fit
    assert fully_viewed(dets, 1, 3).all()  # one view each: verify_max bounds those
    # 7 crops: 5 first views, 2 second views for the turn order's first two (0.9 and 0.3)
    assert fully_viewed(dets, 2, 7).tolist() == [True, False, False, True, False]
    # three views a box: 2 more crops than the first views make one more box fully viewed
    assert fully_viewed(dets, 3, 7).tolist() == [True, False, False, False, False]
    assert not fully_viewed(dets, 2, 5).any()  # just the first views
    assert not fully_viewed(dets, 2, 3).any()  # fewer crops than boxes: still one each
    assert fully_viewed(Detections.empty(), 2, 4).shape == (0,)


@pytest.fixture(scope="module")
def circles() -> np.ndarray:
    """Four red circles of different sizes: four candidates of different strength."""
    frame = np.full((360, 640, 3), 128, np.uint8)
    for x, r in ((100, 45), (260, 30), (420, 38), (560, 24)):
        cv2.circle(frame, (x, 180), r, (35, 30, 215), -1, cv2.LINE_AA)
    return frame


def _detector(tmp_path, **settings) -> Detector:
    base = {
        "cache_dir": tmp_path,
        "precision": "fp32",
        "verify_floor": 0.0,  # every candidate kept: the crops are what is compared
        "verify_refine": 0.0,  # boxes where the heatmap put them, the same in every detector
        "verify_margins": [1.5, 2.0],
        "verify_combine": "mean",
    }
    return Detector("streamdet/scenes-clip", ["a red circle"], **{**base, **settings})


@needs_builtin
def test_verify_budget_bounds_a_frames_crops_and_the_strongest_get_both(
    circles: np.ndarray, tmp_path
) -> None:
    plain = _detector(tmp_path, verify=False).detect(circles).detections
    n = len(plain)
    assert n == 4
    every = _detector(tmp_path, verify_budget=100).detect(circles)
    capped_det = _detector(tmp_path, verify_budget=n + 2)
    capped = capped_det.detect(circles)
    assert every.work.views_computed == 2 * n and capped.work.views_computed == n + 2
    assert len(every.detections) == len(capped.detections) == n
    # each box's probability: the mean of both views for the two strongest, the first alone
    # for the others
    model, state = capped_det.model, capped_det._state
    views = box_views(circles, plain.xyxy, model.image_size, model.fill, (1.5, 2.0))
    probs = prompt_vs_background(
        model.embed_images(views), state.embeddings, state.background, model.logit_scale
    )[:, 0].reshape(2, n)
    both = np.zeros(n, bool)
    both[turn_order(plain)[:2]] = True
    expected = plain.confidence * np.where(both, probs.mean(axis=0), probs[0])
    for box, confidence in zip(capped.detections.xyxy, capped.detections.confidence, strict=True):
        i = int(np.abs(plain.xyxy - box).max(axis=1).argmin())
        assert confidence == pytest.approx(expected[i], rel=1e-5)


@needs_builtin
def test_kept_crops_give_what_new_crops_give_within_the_budget(
    circles: np.ndarray, tmp_path
) -> None:
    """With reuse, a still frame's second frame computes no crop, and its boxes (two of them
    with one view only) score what a detector without reuse gives."""
    det = _detector(tmp_path, verify_budget=6, reuse=0.02)
    first, second = det.detect(circles), det.detect(circles)
    assert first.work.views_computed == 6
    assert second.work.views_computed == 0 and second.work.views_reused == 6
    fresh = _detector(tmp_path, verify_budget=6, reuse=False).detect(circles)
    np.testing.assert_allclose(second.detections.confidence, fresh.detections.confidence, 1e-5)
    np.testing.assert_allclose(second.detections.xyxy, fresh.detections.xyxy, atol=1e-3)


@needs_builtin
def test_the_built_in_model_takes_the_best_of_two_crops_within_16_and_trusts_sure_boxes(
    tmp_path,
) -> None:
    dense = Detector("streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path).config.verify
    assert (dense.margins, dense.combine, dense.budget, dense.max_boxes) == (
        (1.5, 2.0),
        "best",
        16,
        16,
    )
    assert (dense.floor, dense.trust) == (0.7, 0.5)
    # the windows method keeps its own: the best of two crops for each of 16 boxes, one floor
    windows = Detector(
        "streamdet/scenes-clip", ["a red circle"], method="windows", cache_dir=tmp_path
    ).config.verify
    assert (windows.combine, windows.budget, windows.floor, windows.trust) == (
        "best",
        32,
        0.1,
        0.0,
    )


def test_bad_combine_and_crops_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="verify_combine must be one of best, mean"):
        Detector("streamdet/scenes-clip", ["a car"], verify_combine="median")
    with pytest.raises(ConfigError, match="verify_budget must be a positive whole number"):
        Detector("streamdet/scenes-clip", ["a car"], verify_budget=0)


def test_the_flags_set_how_crops_combine_and_how_many() -> None:
    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    args = parser.parse_args(["--verify-combine", "best", "--verify-budget", "8"])
    chosen = settings_from_args(args).overrides
    assert chosen["verify_combine"] == "best" and chosen["verify_budget"] == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["--verify-combine", "median"])
