"""The tracker's parts: exact assignment, the Kalman filter, and track ids in the data types,
records, labels and supervision."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from helpers import box_at, result

from streamdet.quality.tracking import id_churn
from streamdet.render import Renderer, box_label
from streamdet.track import Tracker
from streamdet.track.kalman import BoxKalman
from streamdet.track.match import assign, match
from streamdet.types import Detections


def test_assign_finds_the_least_total_cost():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        pairs = assign(cost)
        assert len(pairs) == min(n, m)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        small = cost if n <= m else cost.T  # rows <= columns: every row gets a column
        best = min(
            sum(small[r, c] for r, c in enumerate(cols))
            for cols in itertools.permutations(range(small.shape[1]), small.shape[0])
        )
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(best)


def test_match_prefers_the_pairing_with_most_total_overlap():
    # greedy would pair track 0 with box 0 (the single best IoU) and leave track 1 unmatched
    tracks = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], float)
    boxes = np.array([[3, 0, 13, 10], [-4, 0, 6, 10]], float)
    pairs, left_tracks, left_boxes = match(tracks, boxes, 0.2)
    assert sorted(pairs) == [(0, 1), (1, 0)] and not left_tracks and not left_boxes
    pairs, left_tracks, left_boxes = match(tracks, boxes[:0], 0.2)
    assert pairs == [] and left_tracks == [0, 1] and left_boxes == []


def test_the_kalman_filter_learns_a_constant_velocity():
    kalman = BoxKalman(np.array(box_at(100, 100, 40, 30)))
    for t in range(1, 15):
        kalman.predict()
        kalman.update(np.array(box_at(100 + 5 * t, 100 - 2 * t, 40, 30)))
    np.testing.assert_allclose(kalman.velocity[:2], [5, -2], atol=0.3)
    kalman.predict()
    np.testing.assert_allclose(kalman.box, box_at(175, 70, 40, 30), atol=1.5)


def test_track_ids_survive_merge_indexing_and_supervision():
    sv = pytest.importorskip("supervision")
    a = Detections(
        np.tile(np.float32([0, 0, 5, 5]), (2, 1)),
        np.ones(2, np.float32),
        np.zeros(2, np.int64),
        np.array([3, 4]),
    )
    b = Detections(
        np.float32([[1, 1, 6, 6]]),
        np.ones(1, np.float32),
        np.ones(1, np.int64),
        np.array([9]),
    )
    merged = Detections.merge([a, Detections.empty(), b])
    assert merged.track_id.tolist() == [3, 4, 9]
    assert merged[np.array([False, True, True])].track_id.tolist() == [4, 9]
    assert merged[2].track_id.tolist() == [9]
    assert Detections.merge([Detections.empty(), Detections.empty()]).track_id is None
    with pytest.raises(ValueError, match="tracked and untracked"):
        Detections.merge([a, Detections(a.xyxy, a.confidence, a.class_id)])
    converted = merged.to_supervision()
    assert isinstance(converted, sv.Detections) and converted.tracker_id.tolist() == [3, 4, 9]
    assert Detections.from_supervision(converted).track_id.tolist() == [3, 4, 9]
    untracked = Detections(a.xyxy, a.confidence, a.class_id)
    assert untracked.to_supervision().tracker_id is None
    assert Detections.from_supervision(untracked.to_supervision()).track_id is None
    with pytest.raises(ValueError, match="track_id must have shape"):
        Detections(a.xyxy, a.confidence, a.class_id, np.array([1]))


def test_records_and_labels_carry_the_track_id(monkeypatch):
    plain = result([box_at(100, 100)], scores=[0.82])
    tracked = Tracker(track_min_hits=1).update(plain)
    assert "track_id" not in plain.to_records()[0]
    record = tracked.to_records()[0]
    assert record["track_id"] == int(tracked.detections.track_id[0]) == 1
    assert record["label"] == "a car"
    assert box_label("a red car", 0.82, 7) == "#7 a red car 0.82"
    assert box_label("a red car", 0.82) == "a red car 0.82"
    drawn: list[str] = []
    import streamdet.render as render

    real = render.cv2.putText
    monkeypatch.setattr(
        render.cv2,
        "putText",
        lambda img, text, *a, **k: (drawn.append(text), real(img, text, *a, **k)),
    )
    frame = np.zeros((360, 640, 3), np.uint8)
    Renderer().render(frame, tracked)
    Renderer().render(frame, plain)
    assert drawn == ["#1 a car 0.82", "a car 0.82"]


def _tracked(boxes, ids, classes=None):
    """A result of prompts ("a car", "a person") with these boxes carrying these track ids."""
    r = result(boxes, prompts=("a car", "a person"), classes=classes)
    d = r.detections
    tracked = Detections(d.xyxy, d.confidence, d.class_id, np.array(ids, np.int64))
    return dataclasses.replace(r, detections=tracked)


def test_id_churn_counts_ids_short_lived_ids_and_id_changes_in_place():
    steady = [_tracked([box_at(100 + 2 * t, 100)], [1]) for t in range(6)]
    assert id_churn(steady) == {"frames": 6, "ids": 1, "short_ids": 0, "boxes": 6, "id_changes": 0}
    # the same object under a new id from frame 3, a one-frame blip elsewhere, and a person on
    # the car's place (another prompt: not an id change)
    frames = [_tracked([box_at(100 + 2 * t, 100)], [1 if t < 3 else 2]) for t in range(6)]
    frames[4] = _tracked([box_at(108, 100), box_at(400, 300)], [2, 3])
    frames[5] = _tracked([box_at(110, 100), box_at(110, 100)], [2, 4], classes=[0, 1])
    churn = id_churn(frames)
    assert churn["ids"] == 4 and churn["boxes"] == 8 and churn["id_changes"] == 1
    assert churn["short_ids"] == 4  # 1: 3 frames, 2: 3 frames, 3 and 4: one frame each
    with pytest.raises(ValueError, match="tracked results"):
        id_churn([result([box_at(100, 100)])])
