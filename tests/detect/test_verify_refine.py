"""Boxes moved towards what their verification crop's patch tokens show (``verify_refine``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.boxes import box_iou
from streamdet.detect.verify import refine_in_views, relative_maps
from streamdet.errors import ConfigError
from streamdet.types import Detections

needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)

# One 40 x 40 box at (100, 100): its 1.5x view is 60 pixels from (90, 90), 7.5 pixels a token.
BOX = Detections(
    np.array([[100, 100, 140, 140]], np.float32),
    np.array([0.9], np.float32),
    np.array([0], np.int64),
)


def _map(rows: slice, cols: slice, value: float = 0.95) -> np.ndarray:
    probs = np.full((1, 8, 8), 0.02, np.float32)
    probs[0, rows, cols] = value
    return probs


def test_the_view_box_is_where_its_tokens_show_the_prompt() -> None:
    # the prompt lights tokens rows 3-4, columns 4-6: pixels 112.5-127.5 down, 120-142.5 across
    moved = refine_in_views(BOX, _map(slice(3, 5), slice(4, 7)), 1.5, 1.0, (360, 640))
    x1, y1, x2, y2 = moved.xyxy[0]
    assert 120 - 7.5 < x1 < 120 + 3.75 and 142.5 - 3.75 < x2 < 142.5 + 7.5
    assert 112.5 - 7.5 < y1 < 112.5 + 3.75 and 127.5 - 3.75 < y2 < 127.5 + 7.5
    # the rest of the detection is kept
    assert moved.confidence[0] == BOX.confidence[0] and moved.class_id[0] == 0


def test_the_weight_blends_the_two_boxes() -> None:
    probs = _map(slice(3, 5), slice(4, 7))
    full = refine_in_views(BOX, probs, 1.5, 1.0, (360, 640)).xyxy
    part = refine_in_views(BOX, probs, 1.5, 0.4, (360, 640)).xyxy
    np.testing.assert_allclose(part, 0.4 * full + 0.6 * BOX.xyxy, atol=1e-4)
    assert not np.allclose(part, BOX.xyxy)


def test_no_weight_or_an_empty_view_leave_the_box() -> None:
    probs = _map(slice(3, 5), slice(4, 7))
    np.testing.assert_array_equal(refine_in_views(BOX, probs, 1.5, 0.0, (360, 640)).xyxy, BOX.xyxy)
    empty = np.zeros((1, 8, 8), np.float32)
    np.testing.assert_array_equal(refine_in_views(BOX, empty, 1.5, 1.0, (360, 640)).xyxy, BOX.xyxy)


def test_a_stronger_neighbour_at_the_views_rim_is_not_the_box() -> None:
    probs = _map(slice(3, 5), slice(3, 5), 0.8)
    probs[0, 0, :] = 0.99  # something else along the view's top edge
    x1, y1, x2, _ = refine_in_views(BOX, probs, 1.5, 1.0, (360, 640)).xyxy[0]
    assert y1 > 105 and x2 - x1 < 30  # the middle region's box, not the rim's


def test_moved_boxes_stay_inside_the_frame() -> None:
    box = Detections(np.array([[0, 0, 40, 40]], np.float32), BOX.confidence, BOX.class_id)
    probs = _map(slice(0, 4), slice(0, 4))  # the view's top-left, past the frame's corner
    moved = refine_in_views(box, probs, 1.5, 1.0, (360, 640)).xyxy[0]
    assert moved.min() >= 0 and moved[2] <= 640 and moved[3] <= 360


def test_verify_refine_must_be_a_weight() -> None:
    with pytest.raises(ConfigError, match="verify_refine must be a number between 0 and 1"):
        Detector("streamdet/scenes-clip", ["a car"], verify_refine=1.5)
    with pytest.raises(ConfigError, match="verify_refine_second must be a number between 0 and 1"):
        Detector("streamdet/scenes-clip", ["a car"], verify_refine_second=-0.2)


def test_relative_maps_span_each_view_and_blank_the_views_not_taken() -> None:
    log_odds = np.stack(
        [
            np.linspace(-6.0, 12.0, 64, dtype=np.float32).reshape(8, 8),
            np.full((8, 8), 3.0, np.float32),  # flat: nothing stands out
            np.full((8, 8), np.nan, np.float32),  # not taken
        ]
    )
    maps = relative_maps(log_odds)
    assert maps[0].min() == 0.0 and maps[0].max() == 1.0
    np.testing.assert_allclose(maps[0, 4, 0], (log_odds[0, 4, 0] + 6.0) / 18.0, rtol=1e-6)
    assert not maps[1].any() and not maps[2].any()
    # views that show nothing leave their boxes where they are
    boxes = Detections(
        np.repeat(BOX.xyxy, 3, 0), np.full(3, 0.9, np.float32), np.zeros(3, np.int64)
    )
    moved = refine_in_views(boxes, maps, 1.5, 1.0, (360, 640)).xyxy
    np.testing.assert_array_equal(moved[1:], boxes.xyxy[1:])
    assert not np.allclose(moved[0], boxes.xyxy[0])


def test_a_partly_covered_token_puts_the_edge_inside_it() -> None:
    """An object over all of column 3 and a third of column 4 of its view (x 112.5-122.5): as
    probabilities both columns are near 1 and the box takes both; as log-odds the right edge
    falls inside column 4, and the box fits the object better."""
    log_odds = np.full((1, 8, 8), -6.0, np.float32)
    log_odds[0, 2:6, 3] = 12.0
    log_odds[0, 2:6, 4] = 3.0  # a third covered: lower, still far above the background
    probs = 1.0 / (1.0 + np.exp(-log_odds))
    assert probs[0, 3, 4] > 0.95
    x1p, _, x2p, _ = refine_in_views(BOX, probs, 1.5, 1.0, (360, 640)).xyxy[0]
    x1, _, x2, _ = refine_in_views(BOX, relative_maps(log_odds), 1.5, 1.0, (360, 640)).xyxy[0]
    assert x2p - x1p > 1.5 * 7.5  # the probabilities' box: both columns, nearly whole
    assert 120.0 < x2 < x2p - 3.0  # the log-odds' right edge: inside column 4, further in
    assert x1 == pytest.approx(x1p, abs=0.1)  # the clean left edge: the same either way
    truth = np.array([[112.5, 0.0, 122.5, 1.0]], np.float32)

    def fit(x_1: float, x_2: float) -> float:
        return float(box_iou(truth, np.array([[x_1, 0.0, x_2, 1.0]], np.float32))[0, 0])

    assert fit(x1, x2) > fit(x1p, x2p)


# the second view (margin 2.0) of BOX is 80 pixels from (80, 80), 10 pixels a token
def _second(rows: slice, cols: slice) -> tuple[np.ndarray, float]:
    return _map(rows, cols), 2.0


def test_a_box_seen_in_two_views_moves_towards_their_blend() -> None:
    first = _map(slice(1, 7), slice(2, 7))  # about 97-143 down, 105-143 across
    second = _second(slice(2, 6), slice(2, 6))  # pixels 100-140 both ways: the box itself
    only_first = refine_in_views(BOX, first, 1.5, 1.0, (360, 640)).xyxy
    seen_second = refine_in_views(BOX, second[0], 2.0, 1.0, (360, 640)).xyxy
    blended = refine_in_views(BOX, first, 1.5, 0.5, (360, 640), second, 0.25).xyxy
    target = 0.75 * only_first + 0.25 * seen_second
    np.testing.assert_allclose(blended, 0.5 * target + 0.5 * BOX.xyxy, atol=1e-4)
    assert not np.allclose(blended, refine_in_views(BOX, first, 1.5, 0.5, (360, 640)).xyxy)


def test_a_second_view_that_takes_in_a_neighbour_is_not_blended() -> None:
    """The wider view's box over twice the first's area (the neighbour of a crossing car or
    person joined to the object's region): the box follows its first view alone."""
    first = _map(slice(2, 6), slice(3, 7))
    wide = _second(slice(2, 6), slice(1, 8))  # 70 pixels across where the first saw 30
    alone = refine_in_views(BOX, first, 1.5, 0.5, (360, 640)).xyxy
    np.testing.assert_array_equal(
        refine_in_views(BOX, first, 1.5, 0.5, (360, 640), wide, 0.4).xyxy, alone
    )


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_a_box_not_seen_in_the_second_view_follows_the_first(fill: float) -> None:
    first = _map(slice(3, 5), slice(4, 7))
    missing = (np.full((1, 8, 8), fill, np.float32), 2.0)
    alone = refine_in_views(BOX, first, 1.5, 0.5, (360, 640)).xyxy
    np.testing.assert_array_equal(
        refine_in_views(BOX, first, 1.5, 0.5, (360, 640), missing, 0.4).xyxy, alone
    )
    # share 0: the second view is not looked at
    second = _second(slice(2, 6), slice(2, 6))
    np.testing.assert_array_equal(
        refine_in_views(BOX, first, 1.5, 0.5, (360, 640), second, 0.0).xyxy, alone
    )


def _circles() -> tuple[np.ndarray, np.ndarray]:
    """A frame of five small red circles placed off the frame heatmap's 16-pixel cells, and
    their true boxes."""
    frame = np.full((360, 640, 3), 128, np.uint8)
    truths = []
    for i, (x, y) in enumerate([(70, 90), (205, 247), (331, 101), (463, 262), (581, 170)]):
        r = 14 + 2 * i
        cv2.circle(frame, (x, y), r, (35, 30, 215), -1, cv2.LINE_AA)
        truths.append([x - r, y - r, x + r + 1, y + r + 1])
    return frame, np.array(truths, np.float32)


@needs_builtin
def test_moved_boxes_fit_small_objects_better(tmp_path) -> None:
    """The boxes moved towards their views' fit small circles better than the frame's do."""
    frame, truth = _circles()

    def fit(weight: float) -> float:
        det = Detector(
            "streamdet/scenes-clip",
            ["a red circle"],
            cache_dir=tmp_path,
            verify_refine=weight,
            verify_refine_second=0.0,
        )
        found = det.detect(frame).detections
        assert len(found) == len(truth)
        return float(box_iou(truth, found.xyxy).max(axis=1).mean())

    assert fit(0.4) > fit(0.0) + 0.02


@needs_builtin
@pytest.mark.parametrize("recheck", [0.0, 0.05])
def test_the_second_views_tokens_move_the_boxes_too(tmp_path, recheck) -> None:
    """With ``verify_refine_second`` the boxes move by both views' tokens, whether the second
    view was cut with the first or as a second opinion (``verify_recheck``), and still fit."""
    frame, truth = _circles()

    def found(share: float) -> np.ndarray:
        det = Detector(
            "streamdet/scenes-clip",
            ["a red circle"],
            cache_dir=tmp_path,
            verify_refine=0.5,
            verify_refine_second=share,
            verify_recheck=recheck,
        )
        boxes = det.detect(frame).detections.xyxy
        assert len(boxes) == len(truth)
        return boxes[np.argsort(boxes[:, 0])]

    first, both = found(0.0), found(0.4)
    assert np.abs(both - first).max() > 0.5
    assert box_iou(truth, both).max(axis=1).min() > 0.5
