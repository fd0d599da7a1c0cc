"""Boxes scored again by crops around them: the crops, the re-scoring and the detector's use."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.scoring import prompt_vs_background
from streamdet.detect.verify import box_views, rescore, strongest
from streamdet.errors import ConfigError
from streamdet.types import Detections

FILL = (10.0, 20.0, 30.0)


def test_views_are_centred_on_each_box_margin_major() -> None:
    frame = np.full((200, 300, 3), 128, np.uint8)
    frame[40:80, 50:90] = (0, 0, 255)  # red 40 x 40 square
    frame[100:160, 200:260] = (255, 0, 0)  # blue 60 x 60 square
    boxes = np.array([[50, 40, 90, 80], [200, 100, 260, 160]], np.float32)
    views = box_views(frame, boxes, 32, FILL, margins=(1.0, 2.0))
    assert views.shape == (4, 32, 32, 3) and views.dtype == np.float32
    # margin 1.0: the view is the box itself, filled by its square
    np.testing.assert_allclose(views[0, 4:28, 4:28], np.broadcast_to([0, 0, 255], (24, 24, 3)))
    np.testing.assert_allclose(views[1, 4:28, 4:28], np.broadcast_to([255, 0, 0], (24, 24, 3)))
    # margin 2.0 (rows 2 and 3): the square fills the middle half, grey around it
    for row, colour in ((2, [0, 0, 255]), (3, [255, 0, 0])):
        np.testing.assert_allclose(views[row, 10:22, 10:22], np.broadcast_to(colour, (12, 12, 3)))
        np.testing.assert_allclose(views[row, 1, 1], [128, 128, 128])


def test_view_parts_outside_the_frame_are_the_fill_colour() -> None:
    frame = np.full((100, 100, 3), 200, np.uint8)
    views = box_views(frame, np.array([[0, 0, 20, 20]], np.float32), 40, FILL, margins=(2.0,))
    np.testing.assert_allclose(views[0, 2, 2], FILL)  # above-left of the frame
    np.testing.assert_allclose(views[0, 30, 30], [200, 200, 200])  # inside it


def test_no_boxes_give_no_views() -> None:
    views = box_views(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 4), np.float32), 16, FILL)
    assert views.shape == (0, 16, 16, 3)


def _dets() -> Detections:
    return Detections(
        np.array([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], np.float32),
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([0, 1, 1], np.int64),
    )


def test_rescore_takes_the_best_view_of_each_box_for_its_own_prompt() -> None:
    dets = _dets()
    # 2 views x 3 boxes, 2 prompts; each box is read in its own prompt's column
    probs = np.array(
        [
            [0.2, 0.9],  # view 0, box 0 (prompt 0: 0.2)
            [0.9, 0.3],  # view 0, box 1 (prompt 1: 0.3)
            [0.9, 0.05],  # view 0, box 2 (prompt 1: 0.05)
            [0.5, 0.1],  # view 1, box 0 (prompt 0: 0.5, its best)
            [0.1, 0.6],  # view 1, box 1 (prompt 1: 0.6, its best)
            [0.9, 0.08],  # view 1, box 2 (prompt 1: best 0.08 < floor)
        ],
        np.float32,
    )
    out = rescore(dets, probs, floor=0.1)
    assert len(out) == 2  # box 2 goes: no view of it shows prompt 1
    # new confidences 0.9 x 0.5 = 0.45 and 0.8 x 0.6 = 0.48, sorted
    np.testing.assert_allclose(out.confidence, [0.48, 0.45], rtol=1e-6)
    assert out.class_id.tolist() == [1, 0]
    np.testing.assert_array_equal(out.xyxy, dets.xyxy[[1, 0]])


def test_only_the_most_confident_boxes_are_verified() -> None:
    dets = _dets()[np.array([2, 0, 1])]  # confidences 0.7, 0.9, 0.8
    top = strongest(dets, limit=2)
    np.testing.assert_allclose(top.confidence, [0.9, 0.8])
    np.testing.assert_array_equal(top.xyxy, dets.xyxy[[1, 2]])
    assert len(strongest(dets, limit=3)) == 3


def test_every_prompt_gets_its_turn_at_verification() -> None:
    """Prompt 0's five strong candidates do not crowd out prompt 1's weaker ones."""
    xyxy = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(7)], np.float32)
    dets = Detections(
        xyxy,
        np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.4, 0.3], np.float32),
        np.array([0, 0, 0, 0, 0, 1, 1], np.int64),
    )
    top = strongest(dets, limit=4)
    # turns: (0.99, 0.4), then (0.98, 0.3)
    np.testing.assert_allclose(top.confidence, [0.99, 0.4, 0.98, 0.3])
    assert top.class_id.tolist() == [0, 1, 0, 1]
    three = strongest(dets, limit=3)  # the last turn is cut by confidence
    np.testing.assert_allclose(three.confidence, [0.99, 0.4, 0.98])


def test_rescore_of_nothing_is_nothing() -> None:
    assert len(rescore(Detections.empty(), np.zeros((0, 2), np.float32), 0.1)) == 0


needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)


@pytest.fixture(scope="module")
def circle() -> np.ndarray:
    frame = np.full((360, 640, 3), 128, np.uint8)
    cv2.circle(frame, (200, 170), 50, (35, 30, 215), -1, cv2.LINE_AA)
    cv2.rectangle(frame, (420, 120), (520, 220), (215, 40, 30), -1)  # a blue square beside it
    return frame


@needs_builtin
@pytest.mark.parametrize("combine", ["best", "mean"])
def test_detector_confidence_is_peak_times_its_views(
    circle: np.ndarray, tmp_path, combine: str
) -> None:
    plain = Detector("streamdet/scenes-clip", ["a red circle"], verify=False, cache_dir=tmp_path)
    # boxes left where the heatmap put them (test_verify_refine.py moves them); every box seen
    # in every view at once (test_verify_recheck.py has the second opinion)
    verified = Detector(
        "streamdet/scenes-clip",
        ["a red circle"],
        cache_dir=tmp_path,
        verify_refine=0.0,
        verify_recheck=0.0,
        verify_combine=combine,
    )
    assert (
        verified.config.verify.enabled and not plain.config.verify.enabled
    )  # the built-in model asks for verification
    before, after = plain.detect(circle), verified.detect(circle)
    assert len(before.detections) == len(after.detections) == 1
    np.testing.assert_array_equal(before.detections.xyxy, after.detections.xyxy)
    session = verified.model
    margins = verified.config.verify.margins  # the model's own (two crops per box)
    views = box_views(circle, before.detections.xyxy, session.image_size, session.fill, margins)
    state = verified._state
    probs = prompt_vs_background(
        session.embed_images(views), state.embeddings, state.background, session.logit_scale
    )
    views_say = probs[:, 0].max() if combine == "best" else probs[:, 0].mean()
    assert probs.shape == (len(margins), 1) == (2, 1) and views_say > 0.5
    assert after.detections.confidence[0] == pytest.approx(
        before.detections.confidence[0] * views_say, rel=1e-5
    )
    assert after.timings.verify_ms > 0 and before.timings.verify_ms == 0
    assert after.work.views_computed == len(margins) and before.work.views_computed == 0


@needs_builtin
def test_more_margins_mean_more_crops_per_box(circle: np.ndarray, tmp_path) -> None:
    """``verify_margins`` sets how many crops each box gets; every setting checks each view."""
    one = Detector(
        "streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path, verify_margins=[1.5]
    )
    two = Detector(
        "streamdet/scenes-clip",
        ["a red circle"],
        cache_dir=tmp_path,
        verify_margins=[1.5, 2.0],
        verify_recheck=0.0,  # every box in every view, not a second opinion
        verify_combine="best",
    )
    a, b = one.detect(circle), two.detect(circle)
    assert one.config.verify.margins == (1.5,) and two.config.verify.margins == (1.5, 2.0)
    assert (a.work.views_computed, b.work.views_computed) == (1, 2)
    assert len(a.detections) == len(b.detections) == 1
    assert b.detections.confidence[0] >= a.detections.confidence[0]  # best of more views


@needs_builtin
def test_a_box_below_the_floor_is_dropped(circle: np.ndarray, tmp_path) -> None:
    # the circle's best view scores 0.99-something: a floor above it removes the box (with
    # every view judged by the floor, whatever the box's peak; test_verify_recheck.py has the
    # second opinion's floor, test_verify_trust.py the floor sure boxes get)
    strict = Detector(
        "streamdet/scenes-clip",
        ["a red circle"],
        verify_floor=0.9999,
        verify_trust=0.0,
        verify_recheck=0.0,
        cache_dir=tmp_path,
    )
    assert len(strict.detect(circle).detections) == 0


@needs_builtin
def test_verify_needs_calibrated_scoring(tmp_path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"verify=True \(set by you\) needs scoring='calibrated', but scoring='reference'",
    ):
        Detector("streamdet/scenes-clip", ["a car"], scoring="reference", verify=True)
    # the model's suggestion is not applied where it cannot be
    ref = Detector("streamdet/scenes-clip", ["a car"], scoring="reference", cache_dir=tmp_path)
    assert not ref.config.verify.enabled


@needs_builtin
def test_verify_max_bounds_the_crops_of_a_frame(tmp_path) -> None:
    """``verify_max``: a frame with more candidates than that verifies only the strongest."""
    frame = np.full((360, 640, 3), 128, np.uint8)
    for x in (100, 260, 420, 560):
        cv2.circle(frame, (x, 180), 40, (35, 30, 215), -1, cv2.LINE_AA)
    one_crop = {"cache_dir": tmp_path, "verify_margins": [1.5]}  # one view per box
    every = Detector("streamdet/scenes-clip", ["a red circle"], **one_crop)
    capped = Detector("streamdet/scenes-clip", ["a red circle"], verify_max=2, **one_crop)
    assert every.config.verify.max_boxes == 16 and capped.config.verify.max_boxes == 2
    a, b = every.detect(frame), capped.detect(frame)
    assert a.work.views_computed == len(a.detections) == 4
    assert b.work.views_computed == len(b.detections) == 2
    # the two kept are two of the four (within int8's batch-dependent rounding of the crops'
    # patch tokens, which move the boxes: verify_refine)
    for box in b.detections.xyxy:
        assert np.abs(a.detections.xyxy - box).max(axis=1).min() < 0.5


def test_verify_max_must_be_a_positive_whole_number() -> None:
    with pytest.raises(ConfigError, match="verify_max must be a positive whole number"):
        Detector("streamdet/scenes-clip", ["a car"], verify_max=0)
