"""Verification views larger than the model's input are averaged down, not sampled."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet.detect.verify import MAX_AVERAGED, box_views

FILL = (10.0, 20.0, 30.0)
SIZE = 64


def _stripes(h: int = 720, w: int = 1280) -> np.ndarray:
    """One-pixel black and white columns: every pixel differs from its neighbour."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, 1::2] = 255
    return frame


@pytest.mark.parametrize(
    ("box_side", "margin"),
    [
        (90, 1.5),  # a 135-pixel view: averaged over 3 x 3 of the warp
        (120, 1.5),  # 180 pixels: 3 x 3
        (200, 2.0),  # 400 pixels, more than MAX_AVERAGED x SIZE: cut from the frame halved
    ],
)
def test_a_large_view_of_fine_detail_is_its_mean_not_aliased_samples(
    box_side: int, margin: float
) -> None:
    frame = _stripes()
    x, y = 301.3, 157.8  # not on whole pixels
    boxes = np.array([[x, y, x + box_side, y + box_side]], np.float32)
    view = box_views(frame, boxes, SIZE, FILL, (margin,))[0]
    # sampled one pixel in k, the stripes came out as bands of black and white (moire: a
    # standard deviation of 73 grey levels in all three cases); averaged, they are grey
    assert abs(float(view.mean()) - 127.5) < 4.0
    assert float(view.std()) < 30.0


def test_a_view_of_a_whole_multiple_of_the_input_is_the_area_average() -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (360, 640, 3), np.uint8)
    # a 128-pixel box at margin 1.5: a 192-pixel view (3 x 64) from (68, 18)
    boxes = np.array([[100, 50, 228, 178]], np.float32)
    view = box_views(frame, boxes, SIZE, FILL, (1.5,))[0]
    crop = frame[18 : 18 + 192, 68 : 68 + 192].astype(np.float32)
    expected = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(view, expected, atol=1e-3)


def test_a_view_cut_from_the_halved_frame_keeps_its_place_and_colours() -> None:
    # a smooth frame: a view past MAX_AVERAGED x SIZE, cut from the halved frame, stays
    # within a grey level of the full-resolution area average, so it is not shifted
    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    frame = np.stack([xx / 1280 * 255, yy / 720 * 255, (xx + yy) / 2000 * 255], -1)
    frame = frame.round().astype(np.uint8)
    side = MAX_AVERAGED * SIZE * 2  # a 512-pixel view of a 256-pixel box at margin 2
    boxes = np.array([[512, 200, 768, 456]], np.float32)
    view = box_views(frame, boxes, SIZE, FILL, (2.0,))[0]
    crop = frame[72 : 72 + side, 384 : 384 + side].astype(np.float32)
    expected = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    assert float(np.abs(view - expected).max()) < 1.0


def test_an_averaged_view_over_the_frame_edge_is_padded_with_the_fill() -> None:
    frame = np.full((360, 640, 3), 200, np.uint8)
    # a 300-pixel view (margin 2) centred on the frame's corner: three quarters outside
    boxes = np.array([[-75, -75, 75, 75]], np.float32)
    view = box_views(frame, boxes, SIZE, FILL, (2.0,))[0]
    np.testing.assert_allclose(view[5, 5], FILL, atol=1e-3)  # above-left of the frame
    np.testing.assert_allclose(view[-5, -5], [200, 200, 200], atol=1e-3)  # inside it
    # the border between them is where the frame begins: halfway across the view
    inside = view[:, :, 0] > 105
    assert inside[SIZE // 2 + 2 :, SIZE // 2 + 2 :].all()
    assert not inside[: SIZE // 2 - 2].any() and not inside[:, : SIZE // 2 - 2].any()
