"""Boxes from constructed heatmaps: every instance, confidences, NMS."""

from __future__ import annotations

import numpy as np

from streamdet.detect.boxes import box_iou, heatmaps_to_detections, nms, region_boxes, single_box
from streamdet.types import Detections


def _blobs(*cells, shape=(6, 8), value=0.9):
    hm = np.zeros(shape, np.float32)
    for r0, c0, r1, c1 in cells:
        hm[r0 : r1 + 1, c0 : c1 + 1] = value
    return hm


def test_two_separate_blobs_give_two_boxes():
    hm = _blobs((0, 0, 1, 1), (3, 5, 4, 7))
    hm[4, 6] = 0.95
    det = region_boxes(hm, 0.5, 10, (60, 75), class_id=2)
    order = np.argsort(det.xyxy[:, 0])
    np.testing.assert_array_equal(det.xyxy[order], [[0, 0, 20, 20], [50, 30, 75, 50]])
    np.testing.assert_allclose(det.confidence[order], [0.9, 0.95])
    assert det.class_id.tolist() == [2, 2]


def test_one_blob_gives_one_box_and_diagonal_cells_connect():
    hm = _blobs((1, 1, 2, 2), (3, 3, 3, 3))
    det = region_boxes(hm, 0.5, 16, (96, 128), class_id=0)
    assert len(det) == 1
    np.testing.assert_array_equal(det.xyxy, [[16, 16, 64, 64]])


def test_nothing_above_threshold_gives_no_box():
    hm = _blobs((1, 1, 2, 2), value=0.5)
    assert len(region_boxes(hm, 0.5, 16, (96, 128), 0)) == 0
    assert len(single_box(hm, 0.5, 16, (96, 128), 0)) == 0
    dets = heatmaps_to_detections(np.stack([hm, hm * 0]), np.array([0.5, 0.5]), 16, (96, 128))
    assert len(dets) == 0


def test_boxes_are_clipped_to_the_frame():
    hm = _blobs((4, 6, 5, 7))
    det = region_boxes(hm, 0.5, 16, (90, 120), 0)  # grid is 6 x 8 cells = 96 x 128 px
    np.testing.assert_array_equal(det.xyxy, [[96, 64, 120, 90]])


def test_single_box_is_the_write_ups_rule():
    hm = _blobs((0, 0, 0, 0), (4, 6, 4, 6))
    det = single_box(hm, 0.5, 10, (60, 80), 1)
    np.testing.assert_array_equal(det.xyxy, [[0, 0, 70, 50]])


def test_nms_drops_overlapping_boxes_of_the_same_prompt_only():
    det = Detections(
        xyxy=np.array(
            [[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32
        ),
        confidence=np.array([0.6, 0.9, 0.7, 0.8], np.float32),
        class_id=np.array([0, 0, 1, 0]),
    )
    kept = nms(det, 0.5)
    got = sorted(zip(kept.class_id.tolist(), kept.confidence.tolist(), strict=True))
    assert [k for k, _ in got] == [0, 0, 1]
    np.testing.assert_allclose([c for _, c in got], [0.8, 0.9, 0.7])
    assert list(kept.confidence) == sorted(kept.confidence, reverse=True)


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0.0]])


def test_peak_ratio_tightens_a_blurred_blob_to_its_core():
    # A one-cell object seen through 3x3-cell windows: mean scores fall off around it.
    hm = np.zeros((7, 7), np.float32)
    hm[1:6, 1:6] = 0.55
    hm[2:5, 2:5] = 0.75
    hm[3, 3] = 1.0
    loose = region_boxes(hm, 0.5, 10, (70, 70), 0)
    tight = region_boxes(hm, 0.5, 10, (70, 70), 0, peak_ratio=0.8)
    np.testing.assert_array_equal(loose.xyxy, [[10, 10, 60, 60]])
    np.testing.assert_array_equal(tight.xyxy, [[30, 30, 40, 40]])
    np.testing.assert_allclose(tight.confidence, [1.0])


def test_peak_ratio_separates_two_objects_merged_in_one_region():
    hm = np.full((3, 9), 0.6, np.float32)
    hm[1, 1] = hm[1, 7] = 0.95
    assert len(region_boxes(hm, 0.5, 10, (30, 90), 0)) == 1
    two = region_boxes(hm, 0.5, 10, (30, 90), 0, peak_ratio=0.8)
    np.testing.assert_array_equal(
        two.xyxy[np.argsort(two.xyxy[:, 0])], [[10, 10, 20, 20], [70, 10, 80, 20]]
    )


def test_the_threshold_decides_detection_and_the_peak_ratio_the_extent():
    hm = np.zeros((7, 7), np.float32)
    hm[1:4, 1:4] = 0.85
    hm[2, 2] = 0.97
    hm[6, 6] = 0.9  # a separate, weaker blob: its peak does not pass the threshold
    det = region_boxes(hm, 0.95, 10, (70, 70), 0, peak_ratio=0.8)
    np.testing.assert_array_equal(det.xyxy, [[10, 10, 40, 40]])  # 0.85 >= 0.8 * 0.97
    np.testing.assert_allclose(det.confidence, [0.97])
    assert len(region_boxes(hm, 0.98, 10, (70, 70), 0, peak_ratio=0.8)) == 0


def test_refined_edges_sit_where_the_heatmap_crosses_the_regions_level():
    from streamdet.detect.boxes import region_boxes

    heat = np.zeros((3, 6), np.float32)
    heat[1] = [0.0, 0.2, 1.0, 1.0, 0.6, 0.0]
    plain = region_boxes(heat, 0.9, 32, (96, 192), 0, peak_ratio=0.8)
    assert plain.xyxy.tolist() == [[64.0, 32.0, 128.0, 64.0]]  # whole cells 2..3 of row 1
    fine = region_boxes(heat, 0.9, 32, (96, 192), 0, peak_ratio=0.8, refine=True)
    # level 0.8: left crossing 3/4 of the way from 0.2 to 1.0; right exactly halfway (0.6 -> 1.0);
    # top and bottom 0.8 of the way from 0 to 1.0.
    np.testing.assert_allclose(fine.xyxy, [[72.0, 41.6, 128.0, 54.4]], atol=1e-4)
    assert fine.confidence.tolist() == plain.confidence.tolist()


def test_refined_edges_on_the_frame_border_stay_on_it():
    from streamdet.detect.boxes import region_boxes

    heat = np.full((2, 2), 1.0, np.float32)
    fine = region_boxes(heat, 0.5, 32, (50, 60), 0, refine=True)
    assert fine.xyxy.tolist() == [[0.0, 0.0, 60.0, 50.0]]
