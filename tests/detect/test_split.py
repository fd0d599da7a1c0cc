"""Touching objects, one box each: regions cut where erosion breaks them (``split``), and no
piece of an object left inside its box (``drop_contained``)."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.config import get_preset
from streamdet.demo import demo_frames
from streamdet.detect import verifier
from streamdet.detect.boxes import box_iou, region_boxes, regions, split_regions
from streamdet.detect.verify import drop_contained
from streamdet.errors import ConfigError
from streamdet.types import Detections

needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)


def _mask(shape: tuple[int, int], *blocks: tuple[int, int, int, int]) -> np.ndarray:
    """Cells (r0, c0, r1, c1 inclusive) set in a boolean mask."""
    mask = np.zeros(shape, bool)
    for r0, c0, r1, c1 in blocks:
        mask[r0 : r1 + 1, c0 : c1 + 1] = True
    return mask


def _sorted_cells(cells: np.ndarray) -> list[list[int]]:
    return sorted(cells.tolist(), key=lambda c: (c[1], c[0]))


def test_blocks_touching_at_a_corner_are_two_regions() -> None:
    mask = _mask((8, 8), (1, 1, 3, 3), (4, 4, 6, 6))
    heat = mask.astype(np.float32)
    assert len(regions(mask, heat)[0]) == 1  # 8-connected: one region, as before
    cells, _, _ = split_regions(mask, heat, 2)
    assert _sorted_cells(cells) == [[1, 1, 3, 3], [4, 4, 6, 6]]


def test_a_neck_one_cell_wide_is_cut_and_each_cell_goes_to_its_own_side() -> None:
    mask = _mask((7, 12), (1, 1, 4, 4), (2, 5, 2, 6), (1, 7, 4, 10))
    heat = mask.astype(np.float32)
    heat[2, 2], heat[3, 9] = 0.9, 0.7
    heat[mask & (heat == 1)] = 0.6
    cells, peaks, labels = split_regions(mask, heat, 2)
    assert _sorted_cells(cells) == [[1, 1, 4, 5], [1, 6, 4, 10]]  # the neck's two cells shared
    assert sorted(peaks[1:].tolist()) == pytest.approx([0.7, 0.9])
    # every cell of the region is in exactly one piece, and nothing else is
    assert ((labels > 0) == mask).all() and len(np.unique(labels)) == 3


def test_a_waist_is_cut_a_few_cells_deep() -> None:
    # two 6x5 blocks joined by a waist 4 cells high: the outline of two touching discs
    mask = _mask((8, 14), (1, 1, 6, 5), (1, 8, 6, 12), (2, 6, 5, 7))
    cells, _, _ = split_regions(mask, mask.astype(np.float32), 2)
    assert _sorted_cells(cells) == [[1, 1, 6, 6], [1, 7, 6, 12]]
    assert len(regions(mask, mask.astype(np.float32))[0]) == 1


@pytest.mark.parametrize(
    "blocks",
    [
        [(0, 0, 7, 7)],  # a square filling the whole mask: no background at all
        [(1, 3, 8, 4), (3, 1, 6, 6)],  # a plus sign: arms as wide as its middle
        [(1, 1, 8, 3), (6, 1, 8, 8)],  # an L
        [(1, 1, 5, 5), (3, 6, 3, 6)],  # a square with a one-cell bump
    ],
)
def test_one_object_of_any_shape_stays_one_region(blocks: list) -> None:
    shape = (8, 8) if blocks[0] == (0, 0, 7, 7) else (10, 10)
    mask = _mask(shape, *blocks)
    cells, peaks, labels = split_regions(mask, mask.astype(np.float32), 2)
    assert cells.tolist() == regions(mask, mask.astype(np.float32), 4)[0].tolist()
    assert len(cells) == 1 and len(peaks) == 2 and ((labels > 0) == mask).all()


def test_cores_smaller_than_the_setting_do_not_cut() -> None:
    # two 3x3 blocks joined at their top rows: erosion leaves one cell of each
    mask = _mask((5, 10), (1, 1, 3, 3), (1, 4, 1, 5), (1, 6, 3, 8))
    heat = mask.astype(np.float32)
    assert len(split_regions(mask, heat, 2)[0]) == 1
    assert len(split_regions(mask, heat, 1)[0]) == 2


def test_region_boxes_cut_touching_objects_only_when_asked() -> None:
    heat = _mask((7, 12), (1, 1, 4, 4), (2, 5, 2, 6), (1, 7, 4, 10)).astype(np.float32) * 0.9
    one = region_boxes(heat, 0.5, 10, (70, 120), 0)
    two = region_boxes(heat, 0.5, 10, (70, 120), 0, peak_ratio=0.7, refine=True, split=2)
    assert len(one) == 1 and len(two) == 2
    assert sorted(two.xyxy[:, 0].tolist()) == pytest.approx([10, 60], abs=5)


def _two_touching_discs() -> tuple[np.ndarray, np.ndarray]:
    """A grey frame with two red discs of radius 40 six pixels apart, and their boxes."""
    frame = np.full((360, 640, 3), 128, np.uint8)
    truths = []
    for x in (277, 363):
        cv2.circle(frame, (x, 180), 40, (0, 0, 220), -1, cv2.LINE_AA)
        truths.append([x - 40, 140, x + 40, 220])
    return frame, np.array(truths, np.float32)


@needs_builtin
def test_the_builtin_model_boxes_two_touching_discs_apart(tmp_path) -> None:
    frame, truths = _two_touching_discs()
    make = lambda **kw: Detector(  # noqa: E731
        "streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path, threads=1, **kw
    )
    detector = make()
    assert detector.config.boxes.split == 2
    apart = detector.detect(frame).detections
    assert len(apart) == 2
    assert (box_iou(truths, apart.xyxy).max(axis=1) >= 0.5).all()
    together = make(split=0).detect(frame).detections
    assert len(together) == 1 and (box_iou(truths, together.xyxy) < 0.5).all()


def test_split_is_a_flag_a_checked_setting_and_off_in_the_writeup_preset() -> None:
    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    assert settings_from_args(parser.parse_args(["--split", "3"])).overrides["split"] == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--split", "two"])
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="split must be a whole number of 0 or more"):
            Detector("streamdet/scenes-clip", ["a car"], split=bad)
    assert get_preset("writeup").settings["split"] == 0


def test_a_box_mostly_inside_a_stronger_one_of_its_prompt_goes() -> None:
    boxes = Detections(
        np.array(
            [
                [0, 0, 100, 50],  # strong
                [60, 5, 100, 45],  # weaker, wholly inside the strong one: a piece of it
                [60, 5, 100, 45],  # the same box, another prompt: kept
                [80, 0, 160, 50],  # weaker, a quarter inside: another object
                [10, 10, 20, 20],  # stronger than the box it lies in
                [0, 0, 200, 100],  # weakest, around everything: not inside anything
            ],
            np.float32,
        ),
        np.array([0.9, 0.5, 0.4, 0.6, 0.95, 0.1], np.float32),
        np.array([0, 0, 1, 0, 0, 0], np.int64),
    )
    kept = drop_contained(boxes)
    assert kept.confidence.tolist() == pytest.approx([0.95, 0.9, 0.6, 0.4, 0.1])
    assert kept.class_id.tolist() == [0, 0, 0, 1, 0]
    assert len(drop_contained(boxes[:1])) == 1 and len(drop_contained(boxes[:0])) == 0


def _nested_pairs(detections: Detections) -> int:
    """Pairs of one prompt's boxes with one at least 0.8 inside the other."""
    count = 0
    for i in range(len(detections)):
        for j in range(len(detections)):
            a, b = detections.xyxy[i], detections.xyxy[j]
            if i == j or detections.class_id[i] != detections.class_id[j]:
                continue
            inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
            count += int(inter >= 0.8 * np.prod(a[2:] - a[:2]))
    return count


@needs_builtin
def test_no_box_is_left_inside_another_of_its_prompt_on_the_demo_clip(
    tmp_path, monkeypatch
) -> None:
    frames = demo_frames(48, 360, 640, 0)
    prompts = ["a red car", "a green car", "a person"]

    def nested() -> int:
        detector = Detector("streamdet/scenes-clip", prompts, cache_dir=tmp_path, threads=1)
        return sum(_nested_pairs(detector.detect(f).detections) for f in frames)

    assert nested() == 0
    # without the rule the demo's cars leave pieces inside their own boxes
    monkeypatch.setattr(verifier, "drop_contained", lambda detections: detections)
    assert nested() > 0
