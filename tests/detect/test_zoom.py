"""The dense method's second, finer pass over the first pass's candidates (``detect.zoom``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamdet import Detector
from streamdet.config import GridConfig, resolve_config
from streamdet.detect.zoom import STEP, TRIM, ZoomRegion, paste, plan_regions, resample
from streamdet.errors import ConfigError
from streamdet.synth.scenes import Placement, render_scene


def test_resample_takes_the_coarse_cell_under_each_fine_centre() -> None:
    coarse = np.arange(6, dtype=np.float32).reshape(1, 2, 3)  # cells of 24 px: 48 x 72 px
    fine = resample(coarse, 24, 12, (4, 6))
    np.testing.assert_array_equal(fine[0], np.repeat(np.repeat(coarse[0], 2, 0), 2, 1))
    # 16 px cells onto 12 px: fine centres at 6, 18, 30, 42 px fall in coarse cells 0, 1, 1, 2
    odd = resample(np.arange(3, dtype=np.float32).reshape(1, 1, 3), 16, 12, (1, 4))
    np.testing.assert_array_equal(odd[0, 0], [0, 1, 1, 2])


def _marks(shape: tuple[int, int], *cells: tuple[int, int], value: float = 0.9) -> np.ndarray:
    heat = np.zeros((2, *shape), np.float32)
    for r, c in cells:
        heat[1, r, c] = value
    return heat


def test_a_candidate_becomes_one_crop_with_context_trimmed_where_it_faces_the_frame() -> None:
    # marked cell 15, 25 grown by 4: rows 11-19, cols 21-29 -> sides of one STEP about the centre
    (region,) = plan_regions(_marks((30, 50), (15, 25)), level=0.3, margin=4)
    assert STEP == 16
    assert (region.top, region.left, region.bottom, region.right) == (11 - 3, 21 - 3, 24, 34)
    assert region.keep == (8 + TRIM, 18 + TRIM, 24 - TRIM, 34 - TRIM)
    # at the frame's corner the crop moves inside the frame, and nothing is trimmed at its edge
    (corner,) = plan_regions(_marks((30, 50), (0, 49)), level=0.3, margin=4)
    assert (corner.top, corner.left, corner.bottom, corner.right) == (0, 34, 16, 50)
    assert corner.keep == (0, 34 + TRIM, 16 - TRIM, 50)
    assert region.pixels(12, (360, 600)) == (96, 216, 288, 408)
    assert corner.pixels(12, (355, 597)) == (0, 408, 192, 597)  # cut at the frame's edge


def _sees_around(region: ZoomRegion, r: int, c: int, shape: tuple[int, int], margin: int) -> bool:
    """Whether cell (r, c) lies in the region's kept part with ``margin`` cells of the crop
    around it on every side that is not the frame's edge."""
    rows, cols = shape
    top, left, bottom, right = region.keep
    return (
        top <= r < bottom
        and left <= c < right
        and (region.top == 0 or r - region.top >= margin)
        and (region.bottom == rows or region.bottom - 1 - r >= margin)
        and (region.left == 0 or c - region.left >= margin)
        and (region.right == cols or region.right - 1 - c >= margin)
    )


def _overlap(a: ZoomRegion, b: ZoomRegion) -> bool:
    return a.top < b.bottom and b.top < a.bottom and a.left < b.right and b.left < a.right


def test_every_candidate_is_zoomed_with_its_context_in_few_shapes_without_overlaps() -> None:
    heat = _marks((60, 100), (5, 5), (5, 80), (50, 40), value=0.5)
    assert plan_regions(heat, level=0.6, margin=3) == ()
    assert len(plan_regions(heat, level=0.5, margin=3)) == 3
    # candidates whose context touches share one crop
    assert len(plan_regions(_marks((30, 50), (10, 10), (10, 16)), level=0.3, margin=3)) == 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        noisy = rng.random((2, 30, 50)).astype(np.float32) ** 8
        regions = plan_regions(noisy, level=0.5, margin=2)
        assert regions
        for i, a in enumerate(regions):
            assert (a.bottom - a.top) % STEP == 0 or (a.top, a.bottom) == (0, 30)
            assert (a.right - a.left) % STEP == 0 or (a.left, a.right) == (0, 50)
            assert not any(_overlap(a, b) for b in regions[i + 1 :])
        for r, c in zip(*np.nonzero(noisy.max(axis=0) >= 0.5), strict=True):
            assert any(_sees_around(a, r, c, (30, 50), 2) for a in regions)


def test_paste_writes_only_the_kept_part() -> None:
    fine = np.zeros((1, 10, 10), np.float32)
    region = ZoomRegion(2, 3, 8, 9, keep=(4, 5, 6, 7))
    heat = np.arange(36, dtype=np.float32).reshape(1, 6, 6) + 1
    paste(fine, region, heat)
    assert np.count_nonzero(fine) == 4
    np.testing.assert_array_equal(fine[0, 4:6, 5:7], heat[0, 2:4, 2:4])


def test_zoom_settings_are_checked_and_run_only_when_finer() -> None:
    assert GridConfig(token_scale=1.5, zoom_scale=0.75).zooms
    assert not GridConfig(token_scale=0.75, zoom_scale=0.75).zooms
    assert not GridConfig(token_scale=1.5).zooms  # off by default
    for bad in ({"zoom_scale": -1}, {"zoom_level": 2}, {"zoom_margin": -3}, {"zoom_margin": 1.5}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve_config(bad)


def _detector(model: Path, tmp: Path, **settings) -> Detector:
    settings = {"precision": "fp32", **settings}
    return Detector(model, ["a red circle", "a dog"], method="dense", cache_dir=tmp, **settings)


def _level(model: Path, tmp: Path, frame: np.ndarray) -> float:
    """A level that the coarse pass's best cell reaches and the others do not."""
    coarse = _detector(model, tmp, token_scale=1.5, zoom_scale=0.0).detect(frame)
    return float(coarse.heatmaps.max()) - 1e-6


def test_everything_marked_gives_the_fine_single_pass(tiny_model_dir: Path, tmp_path) -> None:
    frame = np.random.default_rng(3).integers(0, 255, (100, 130, 3), np.uint8)
    zoom = _detector(tiny_model_dir, tmp_path, token_scale=1.5, zoom_scale=0.75, zoom_level=0.0)
    fine = _detector(tiny_model_dir, tmp_path, token_scale=0.75, zoom_scale=0.0)
    result, single = zoom.detect(frame), fine.detect(frame)
    assert result.patch == single.patch < zoom.frame_grid(100, 130).token_px
    assert result.work.zoom_computed == 1  # the whole frame is one crop
    np.testing.assert_allclose(result.heatmaps, single.heatmaps, atol=1e-5)


def test_nothing_marked_keeps_the_coarse_heatmaps(tiny_model_dir: Path, tmp_path) -> None:
    frame = np.random.default_rng(4).integers(0, 255, (100, 130, 3), np.uint8)
    zoom = _detector(tiny_model_dir, tmp_path, token_scale=1.5, zoom_scale=0.75, zoom_level=1.0)
    coarse = _detector(tiny_model_dir, tmp_path, token_scale=1.5, zoom_scale=0.0)
    result, first = zoom.detect(frame), coarse.detect(frame)
    assert result.work.zoom_computed == 0 and result.patch < first.patch
    rows, cols = result.heatmaps.shape[1:]
    expected = resample(first.heatmaps, first.patch, result.patch, (rows, cols))
    np.testing.assert_array_equal(result.heatmaps, expected)


def test_a_zoomed_region_differs_from_the_coarse_pass_only_inside(tiny_model_dir, tmp_path):
    frame = np.random.default_rng(6).integers(0, 255, (480, 800, 3), np.uint8)
    level = _level(tiny_model_dir, tmp_path, frame)
    zoom = _detector(
        tiny_model_dir, tmp_path, token_scale=1.5, zoom_scale=0.75, zoom_margin=1, zoom_level=level
    )
    coarse = _detector(tiny_model_dir, tmp_path, token_scale=1.5, zoom_scale=0.0)
    result, first = zoom.detect(frame), coarse.detect(frame)
    rows, cols = result.heatmaps.shape[1:]
    base = resample(first.heatmaps, first.patch, result.patch, (rows, cols))
    regions = plan_regions(base, level, 1)
    inside = np.zeros((rows, cols), bool)
    for r in regions:
        inside[r.keep[0] : r.keep[2], r.keep[1] : r.keep[3]] = True
    assert result.work.zoom_computed == len(regions) >= 1
    assert 0 < inside.mean() < 1
    np.testing.assert_array_equal(result.heatmaps[:, ~inside], base[:, ~inside])
    assert not np.allclose(result.heatmaps[:, inside], base[:, inside], atol=1e-3)


def test_zoom_reuse_and_batching_give_the_same_heatmaps(tiny_model_dir: Path, tmp_path) -> None:
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (96, 128, 3), np.uint8) for _ in range(2)]
    level = _level(tiny_model_dir, tmp_path, frames[0])
    settings = {"token_scale": 1.5, "zoom_scale": 0.75, "zoom_level": level}
    det = _detector(tiny_model_dir, tmp_path, reuse=0.0, **settings)
    plain = _detector(tiny_model_dir, tmp_path, reuse=False, **settings)
    first, again = det.detect(frames[0]), det.detect(frames[0])
    assert first.work.zoom_computed >= 1 and first.work.zoom_reused == 0
    assert again.work.frames_reused == 1
    assert (again.work.zoom_computed, again.work.zoom_reused) == (0, first.work.zoom_computed)
    np.testing.assert_array_equal(again.heatmaps, first.heatmaps)
    np.testing.assert_array_equal(first.heatmaps, plain.detect(frames[0]).heatmaps)
    both = plain.detect_many(frames, streams=["a", "b"])
    for frame, result in zip(frames, both, strict=True):
        np.testing.assert_allclose(result.heatmaps, plain.detect(frame).heatmaps, atol=1e-6)


def _iou(a: np.ndarray, b: tuple[float, ...]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_the_fine_preset_boxes_small_objects_with_the_built_in_model(tmp_path) -> None:
    prompts = {"circle": "a red circle", "star": "a blue star", "triangle": "a yellow triangle"}
    det = Detector(prompts=list(prompts.values()), preset="fine", cache_dir=str(tmp_path))
    assert det.config.grid.zooms and det.config.sources["zoom_scale"] == "preset fine"
    colours = {"circle": "red", "star": "blue", "triangle": "yellow"}
    for shape, prompt in prompts.items():
        for centre in ((320.0, 180.0), (100.0, 300.0), (600.0, 60.0)):  # middle, near edges
            background = np.full((360, 640, 3), 90, np.uint8)
            scene = render_scene(
                background, [Placement(shape, colours[shape], "small", centre, 24.0)]
            )
            result = det.detect(scene.image)
            assert result.work.zoom_computed >= 1 and result.patch == 8
            found = [
                b
                for b, label in zip(result.detections.xyxy, result.labels(), strict=True)
                if label == prompt
            ]
            assert max((_iou(b, scene.objects[0].box) for b in found), default=0) >= 0.6, (
                shape,
                centre,
            )
