"""Fine heatmaps from patch tokens: resampling, the max over windows, and the Detector's use."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet import Detector
from streamdet.config import GridConfig
from streamdet.detect.dense import DenseGrid, area_weights, fine_factor
from streamdet.detect.scoring import prompt_vs_background
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.errors import ConfigError


def test_area_weights_repeat_on_whole_ratios_and_average_otherwise():
    w = area_weights(2, 4)
    np.testing.assert_allclose(w, [[1, 0], [1, 0], [0, 1], [0, 1]])
    w = area_weights(7, 8)  # ViT-B/32: 7 patches onto 8 fine cells
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    assert w[0, 0] == 1.0 and w[-1, -1] == 1.0
    assert 0 < w[1, 0] < 1 and 0 < w[1, 1] < 1  # the 2nd fine cell straddles two patches
    ramp = np.arange(7, dtype=np.float32)
    assert np.all(np.diff(w @ ramp) >= 0)  # order is kept


@pytest.mark.parametrize(
    ("tokens", "sizes", "patch", "factor"),
    [(8, (4,), 32, 2), (8, (4, 2), 32, 4), (7, (4,), 64, 2), (8, (4,), 30, 2), (8, (4,), 25, 1)],
)
def test_fine_factor_is_a_patch_per_cell_and_divides_the_cell(tokens, sizes, patch, factor):
    assert fine_factor(tokens, sizes, patch) == factor
    assert patch % factor == 0


def _grid(h=96, w=128, patch=16, window=2, scales=(), overhang=False):
    return WindowGrid.build(h, w, GridConfig(patch, window, 1, scales, overhang))


def test_a_sure_window_puts_its_score_on_the_patch_that_matches():
    grid = _grid()
    dense = DenseGrid.build(grid, token_side=4)
    assert dense.factor == 2 and dense.patch == 8 and dense.shape == (12, 16)
    n = len(grid)
    window_probs = np.zeros((n, 1), np.float32)
    token_probs = np.zeros((n, 4, 4, 1), np.float32)
    target = int(np.flatnonzero((grid.windows[:, 0] == 2) & (grid.windows[:, 1] == 3))[0])
    window_probs[target] = 0.9
    token_probs[target, 1, 2] = 1.0  # patch (1, 2) of the window at cell (2, 3)
    maps = dense.heatmaps(np.arange(n), window_probs, token_probs, 1)
    assert maps.shape == (1, 12, 16)
    hot = np.argwhere(maps[0] > 0)
    # the window starts at fine cell (4, 6), one fine cell a patch: patch (1, 2) is fine (5, 8)
    np.testing.assert_array_equal(hot, [[5, 8]])
    assert maps[0, 5, 8] == pytest.approx(0.9)


def test_each_cell_keeps_the_largest_score_of_the_windows_covering_it():
    grid = _grid()
    dense = DenseGrid.build(grid, token_side=4)
    n = len(grid)
    window_probs = np.linspace(0.1, 0.9, n, dtype=np.float32)[:, None]
    token_probs = np.ones((n, 4, 4, 1), np.float32)
    maps = dense.heatmaps(np.arange(n), window_probs, token_probs, 1)[0]
    # the last window covers the bottom-right cells: they carry its (largest) probability
    assert maps[-1, -1] == pytest.approx(0.9)
    # a mean would be lower than the max anywhere several windows overlap
    assert maps[4, 4] == pytest.approx(
        max(
            window_probs[i, 0]
            for i in range(n)
            if (
                grid.windows[i, 0] <= 2 < grid.windows[i, 0] + 2
                and grid.windows[i, 1] <= 2 < grid.windows[i, 1] + 2
            )
        )
    )
    # windows left out (too unlikely) contribute nothing
    none = dense.heatmaps(np.zeros(0, np.int64), window_probs[:0], token_probs[:0], 1)
    assert none.shape == maps[None].shape and not none.any()


def test_windows_over_the_frame_edge_and_several_scales():
    grid = _grid(scales=(1,), overhang=True)
    dense = DenseGrid.build(grid, token_side=4)
    assert dense.factor == 4 and dense.shape == (24, 32)
    n = len(grid)
    corner = int(
        np.flatnonzero((grid.windows[:, :2] == -1).all(axis=1) & (grid.windows[:, 2] == 2))[0]
    )
    window_probs = np.zeros((n, 1), np.float32)
    token_probs = np.zeros((n, 4, 4, 1), np.float32)
    window_probs[corner] = 1.0
    token_probs[corner, 3, 3] = 1.0  # the only patch of that window inside the frame's corner
    maps = dense.heatmaps(np.arange(n), window_probs, token_probs, 1)[0]
    # window of 2 cells = 8 fine cells from fine (-4, -4); its last patch covers fine 2..3
    assert np.argwhere(maps > 0).tolist() == [[2, 2], [2, 3], [3, 2], [3, 3]]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)


def test_detector_dense_heatmaps_are_fine_and_match_the_window_scores(
    tiny_model_dir, frame, tmp_path
):
    kwargs = dict(patch=16, window=4, threshold=0.5, cache_dir=tmp_path)
    coarse = Detector(tiny_model_dir, ["a red circle", "a dog"], dense=False, **kwargs)
    fine = Detector(tiny_model_dir, ["a red circle", "a dog"], dense=True, **kwargs)
    a, b = coarse.detect(frame), fine.detect(frame)
    side = 4  # the tiny model: 32 px input, 8 px patches
    factor = fine_factor(side, (4,), 16)
    assert a.patch == 16 and b.patch == 16 // factor
    assert b.heatmaps.shape == (2, a.heatmaps.shape[1] * factor, a.heatmaps.shape[2] * factor)
    assert b.heatmaps.min() >= 0 and b.heatmaps.max() <= 1
    # a fine cell never scores above the most likely window covering it
    grid = coarse.grid(*frame.shape[:2])
    session = coarse.model
    emb = session.embed_images(crop_windows(frame, grid, session.image_size, session.fill))
    texts = session.texts.embed(["a red circle", "a dog"])
    background = session.texts.embed(coarse.config.scoring.background_prompts)
    probs = prompt_vs_background(emb, texts, background, session.logit_scale)
    assert b.heatmaps.max() <= probs.max() + 1e-6
    for box in b.detections.xyxy:
        assert 0 <= box[0] < box[2] <= frame.shape[1] and 0 <= box[1] < box[3] <= frame.shape[0]


def test_dense_needs_calibrated_windows_and_a_tokens_export(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="calibrated"):
        Detector(tiny_model_dir, ["a cat"], dense=True, scoring="reference", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="method='windows', but method='occlusion'"):
        Detector(tiny_model_dir, ["a cat"], dense=True, method="occlusion", cache_dir=tmp_path)
    # the model does not suggest it: off unless asked for
    assert not Detector(tiny_model_dir, ["a cat"], cache_dir=tmp_path).config.scoring.dense


def test_a_small_window_counts_only_as_far_as_the_larger_ones_around_it_agree():
    grid = _grid(h=64, w=64, patch=16, window=4, scales=(2,))
    dense = DenseGrid.build(grid, token_side=4)
    sizes = grid.windows[:, 2]
    probs = np.where(sizes == 2, 0.9, 0.5).astype(np.float32)[:, None]
    big = int(np.flatnonzero(sizes == 4)[0])  # the only 4-cell window of a 4x4-cell frame
    gated = dense.context_gate(probs)
    np.testing.assert_allclose(gated[sizes == 4], probs[sizes == 4])  # the largest: unchanged
    np.testing.assert_allclose(gated[sizes == 2], 0.9 * 0.5)  # every small one inside `big`
    probs[big] = 0.0  # the context says no: no small window may say yes
    assert not dense.context_gate(probs)[sizes == 2].any()
    # one window size: nothing to gate against
    single = DenseGrid.build(_grid(), token_side=4)
    values = np.random.default_rng(0).random((len(single.grid), 2)).astype(np.float32)
    np.testing.assert_array_equal(single.context_gate(values), values)


def test_the_gate_uses_the_best_of_the_larger_windows_containing_it():
    grid = _grid(h=160, w=160, patch=16, window=4, scales=(2,))
    dense = DenseGrid.build(grid, token_side=4)
    w = grid.windows
    probs = np.zeros((len(w), 1), np.float32)
    small = int(np.flatnonzero((w[:, 0] == 2) & (w[:, 1] == 2) & (w[:, 2] == 2))[0])
    probs[small] = 1.0
    containing = (w[:, 2] == 4) & (w[:, 0] <= 2) & (w[:, 0] >= 0) & (w[:, 1] <= 2) & (w[:, 1] >= 0)
    outside = int(np.flatnonzero((w[:, 2] == 4) & ~containing)[0])
    probs[outside] = 1.0  # a larger window elsewhere does not vouch for it
    assert dense.context_gate(probs)[small, 0] == 0.0
    probs[int(np.flatnonzero(containing)[-1])] = 0.7
    assert dense.context_gate(probs)[small, 0] == pytest.approx(0.7)


def test_windows_cut_on_the_device_give_the_same_detections(tiny_model_dir, frame, tmp_path):
    """The GPU path's cropping (RoiAlign in ONNX Runtime) run on the CPU, with and without the IO
    binding the GPU uses: the same boxes and heatmaps as cutting on the host."""
    kwargs = dict(patch=16, window=4, scales=(2,), overhang=True, threshold=0.5, cache_dir=tmp_path)
    host = Detector(tiny_model_dir, ["a red circle", "a dog"], dense=True, **kwargs)
    device = Detector(
        tiny_model_dir, ["a red circle", "a dog"], dense=True, crop_on_device=True, **kwargs
    )
    assert not host.crop_on_device and device.crop_on_device  # CPU default: host slicing
    a = host.detect(frame)
    for io_device in (None, "cpu"):  # plain run, then the IO-bound GPU code on the CPU
        device.model.encoders._io_device = io_device
        device.reset()  # the same frame again: without this, reuse would skip the tower
        b = device.detect(frame)
        assert b.work.windows_computed == len(device.grid(*frame.shape[:2]))
        # whole-factor downscales: the same pixels but for the padding, which the host rounds
        # to whole grey levels (uint8 frame) and the device does not
        np.testing.assert_allclose(b.heatmaps, a.heatmaps, atol=0.03)
        assert np.abs(b.heatmaps - a.heatmaps).mean() < 0.005
    with pytest.raises(ConfigError, match="crop_on_device"):
        Detector(tiny_model_dir, ["a cat"], method="occlusion", crop_on_device=True)
