"""The window grid covers the whole frame, and the vectorised crop equals cropping one by one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet.config import GridConfig
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.errors import ConfigError

FILL = (104.0, 117.0, 123.0)


@pytest.mark.parametrize(
    ("h", "w", "patch", "window", "stride"),
    [
        (720, 1280, 64, 4, 1),
        (721, 1283, 64, 4, 1),
        (100, 70, 16, 3, 2),
        (50, 300, 64, 4, 1),
        (37, 41, 8, 4, 3),
        (1, 1, 64, 4, 1),
    ],
)
def test_grid_covers_every_pixel_of_the_frame(h, w, patch, window, stride):
    grid = WindowGrid.build(h, w, GridConfig(patch=patch, window=window, stride=stride))
    assert grid.rows * patch >= h > (grid.rows - 1) * patch
    assert grid.cols * patch >= w > (grid.cols - 1) * patch
    assert grid.visits.min() >= 1  # every cell, including the partial last row/column
    boxes = grid.window_boxes()
    covered = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes.astype(int):
        covered[y1:y2, x1:x2] = True
    assert covered.all()


def test_reference_layout_of_720p():
    grid = WindowGrid.build(720, 1280, GridConfig(patch=64, window=4, stride=1))
    # 12 x 20 cells (the last row is 16 px tall), windows 9 x 17 = 153
    assert (grid.rows, grid.cols, len(grid)) == (12, 20, 153)
    assert grid.visits.max() == 16


def test_extra_scales_add_windows_of_other_sizes():
    spec = GridConfig(patch=32, window=4, stride=1, scales=(2, 4, 6))
    assert spec.sizes == (4, 2, 6)
    grid = WindowGrid.build(200, 300, spec)
    assert set(np.unique(grid.windows[:, 2])) == {2, 4, 6}


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patch=0),
        dict(window=-1),
        dict(stride=0),
        dict(patch=2.5),
        dict(window=2, stride=3),
        dict(scales=(0,)),
        dict(patch=5000, window=4),
        dict(patch=True),
    ],
)
def test_absurd_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        GridConfig(**kwargs)


def test_too_many_windows_is_refused():
    with pytest.raises(ConfigError, match="windows"):
        WindowGrid.build(4000, 4000, GridConfig(patch=4, window=1, stride=1))


def _one_by_one(frame, grid, size):
    """Crop each window from the padded frame and resize it on its own (the write-up's way)."""
    p = grid.patch
    out = []
    top, left = max(0, -grid.windows[:, 0].min()), max(0, -grid.windows[:, 1].min())
    frame = cv2.copyMakeBorder(frame, top * p, 0, left * p, 0, cv2.BORDER_CONSTANT, value=FILL)
    for r0, c0, cells in grid.windows + np.array([top, left, 0]):
        need_h, need_w = (r0 + cells) * p, (c0 + cells) * p
        padded = cv2.copyMakeBorder(
            frame,
            0,
            max(0, need_h - frame.shape[0]),
            0,
            max(0, need_w - frame.shape[1]),
            cv2.BORDER_CONSTANT,
            value=FILL,
        ).astype(np.float32)
        crop = padded[r0 * p : (r0 + cells) * p, c0 * p : (c0 + cells) * p]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


@pytest.mark.parametrize(
    ("h", "w", "patch", "window", "size"),
    [(150, 230, 16, 4, 32), (100, 100, 64, 4, 224), (90, 130, 20, 2, 32)],
)
def test_vectorised_crop_equals_per_window_resize(h, w, patch, window, size):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    grid = WindowGrid.build(h, w, GridConfig(patch=patch, window=window, stride=1))
    fast = crop_windows(frame, grid, size, FILL)
    assert fast.shape == (len(grid), size, size, 3) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, _one_by_one(frame, grid, size), atol=1e-3)


def test_overhanging_windows_see_every_cell_equally_and_crop_exactly():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    grid = WindowGrid.build(70, 90, GridConfig(patch=16, window=3, stride=1, overhang=True))
    assert grid.windows[:, :2].min() == -2
    assert np.all(grid.visits == 9)  # window**2 everywhere, corners included
    fast = crop_windows(frame, grid, 48, FILL)
    np.testing.assert_allclose(fast, _one_by_one(frame, grid, 48), atol=1e-3)
    boxes = grid.window_boxes()
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 90 and boxes[:, 3].max() <= 70


def test_crop_when_size_not_divisible_by_window_is_close():
    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8), (9, 9), 3)
    grid = WindowGrid.build(200, 260, GridConfig(patch=16, window=6, stride=1))
    fast = crop_windows(frame, grid, 64, FILL)
    slow = _one_by_one(frame, grid, 64)
    assert np.abs(fast - slow).mean() < 3.0  # origins rounded by at most half an output pixel


def test_padding_uses_the_fill_colour():
    frame = np.zeros((10, 10, 3), np.uint8)
    grid = WindowGrid.build(10, 10, GridConfig(patch=8, window=4, stride=1))  # 32 px window
    crops = crop_windows(frame, grid, 32, FILL)
    assert len(crops) == 1
    np.testing.assert_allclose(crops[0, -1, -1], FILL)
    np.testing.assert_allclose(crops[0, 0, 0], 0.0)


@pytest.mark.parametrize(
    ("window", "scales", "size"),
    [(4, (2,), 32), (6, (3,), 64), (4, (), 48)],  # 64 px for 6 cells: origins are rounded
)
def test_cropping_some_windows_gives_exactly_their_rows_of_cropping_all(window, scales, size):
    """Temporal reuse crops only the changed windows: their pixels must not depend on which
    others are cropped (the resize is laid out for the whole grid)."""
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    spec = GridConfig(patch=16, window=window, stride=1, scales=scales, overhang=True)
    grid = WindowGrid.build(90, 140, spec)
    every = crop_windows(frame, grid, size, FILL)
    for only in ([len(grid) - 1], [0, 3, len(grid) // 2], rng.choice(len(grid), 7, replace=False)):
        some = crop_windows(frame, grid, size, FILL, np.sort(np.asarray(only)))
        np.testing.assert_array_equal(some, every[np.sort(np.asarray(only))])
    assert crop_windows(frame, grid, size, FILL, np.zeros(0, np.int64)).shape == (0, size, size, 3)
