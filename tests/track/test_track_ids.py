"""Tracker behaviour on chosen boxes: crossings, short misses, min hits, smoothing, prompts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import box_at, crossing, id_of, result

from streamdet.errors import ConfigError
from streamdet.track import Tracker


def test_two_objects_of_one_prompt_keep_their_ids_through_a_crossing():
    tracker = Tracker()
    frames = crossing()
    ids: dict[int, set[int]] = {0: set(), 1: set()}
    for t, boxes in enumerate(frames):
        out = tracker.update(result(boxes))
        truth = (boxes[1], boxes[0]) if t % 2 else (boxes[0], boxes[1])  # (object 1, object 0)
        for obj, box in zip((1, 0), truth, strict=True):
            found = id_of(out, box)
            if found is not None:
                ids[obj].add(found)
    assert len(ids[0]) == 1 and len(ids[1]) == 1, ids
    assert ids[0] != ids[1]


def test_a_short_miss_keeps_the_id_and_a_held_box_bridges_it():
    tracker = Tracker(track_hold=2, track_max_missed=10)
    seen = []
    for t in range(20):
        box = box_at(100 + 5 * t, 150)
        boxes = [] if 8 <= t <= 11 else [box]  # four frames without a box
        out = tracker.update(result(boxes))
        seen.append(id_of(out, box))
    assert seen[:8] == [seen[0]] * 8 and seen[0] is not None
    assert seen[8] == seen[9] == seen[0]  # held two frames at the predicted box
    assert seen[10] is None and seen[11] is None  # then hidden
    assert seen[12:] == [seen[0]] * 8  # back with the same id


def test_a_long_miss_ends_the_track():
    tracker = Tracker(track_max_missed=3, track_min_hits=1)
    first = tracker.update(result([box_at(100, 100)])).detections.track_id[0]
    for _ in range(5):
        tracker.update(result([]))
    again = tracker.update(result([box_at(100, 100)])).detections.track_id[0]
    assert again != first


def test_min_hits_hides_a_one_frame_blip_and_delays_new_objects():
    tracker = Tracker(track_min_hits=3)
    shown = []
    for t in range(10):
        boxes = [box_at(100, 100)]  # there from the first frame: shown at once
        if t == 3:
            boxes.append(box_at(400, 200))  # a one-frame blip
        if t >= 5:
            boxes.append(box_at(300, 300))  # a new object from frame 5
        out = tracker.update(result(boxes))
        shown.append({round(float(x)) for x in (out.detections.xyxy[:, 0] + 20)})
    assert all(100 in s for s in shown)
    assert not any(400 in s for s in shown)
    assert [300 in s for s in shown] == [False] * 7 + [True] * 3  # from its third find


def test_ids_are_unique_and_increase_across_prompts_and_start_again_after_reset():
    tracker = Tracker(track_min_hits=1)
    prompts = ("a car", "a person")
    out = tracker.update(result([box_at(100, 100), box_at(100, 100)], prompts, classes=[0, 1]))
    first = sorted(out.detections.track_id.tolist())
    assert first == [1, 2]  # the same place, two prompts: two tracks
    out = tracker.update(
        result([box_at(100, 100), box_at(100, 100), box_at(500, 300)], prompts, classes=[0, 1, 0])
    )
    assert sorted(out.detections.track_id.tolist()) == [1, 2, 3]
    by_class = dict(
        zip(out.detections.track_id.tolist(), out.detections.class_id.tolist(), strict=True)
    )
    assert by_class[1] != by_class[2]  # each id stays with its prompt
    tracker.reset()
    assert tracker.update(result([box_at(10, 10)])).detections.track_id.tolist() == [1]


def test_boxes_of_one_prompt_never_continue_another_prompts_track():
    tracker = Tracker(track_min_hits=1)
    prompts = ("a car", "a person")
    a = tracker.update(result([box_at(100, 100)], prompts, classes=[0])).detections.track_id[0]
    out = tracker.update(result([box_at(102, 100)], prompts, classes=[1]))
    d = out.detections
    assert d.track_id[d.class_id == 0].tolist() == [a]  # the car, held where it was
    person = d.track_id[d.class_id == 1].tolist()
    assert person and person[0] != a


def test_a_prompt_change_keeps_remaining_prompts_ids_by_text_and_ends_removed_ones():
    tracker = Tracker(track_min_hits=1)
    out = tracker.update(result([box_at(100, 100), box_at(300, 200)], ("a", "b"), classes=[0, 1]))
    ids = dict(zip(out.detections.class_id.tolist(), out.detections.track_id.tolist(), strict=True))
    # "b" moves to index 0, "a" is gone, "c" is new at index 1
    out = tracker.update(result([box_at(302, 200), box_at(100, 100)], ("b", "c"), classes=[0, 1]))
    now = dict(zip(out.detections.class_id.tolist(), out.detections.track_id.tolist(), strict=True))
    assert now[0] == ids[1]  # "b" kept its id at its new index
    assert now[1] > max(ids.values())  # "c" at a's old place is a new track
    out = tracker.update(result([box_at(100, 100)], ("a",), classes=[0]))
    assert out.detections.track_id[0] > now[1]  # "a" again: its old track had ended


def test_smoothing_reduces_jitter_without_lagging_behind():
    rng = np.random.default_rng(0)
    truth = [box_at(100 + 6 * t, 150 + 2 * t, 60, 40) for t in range(60)]
    noisy = [list(np.asarray(b) + rng.normal(0, 3, 4)) for b in truth]

    def jitter_and_lag(smoothing: float) -> tuple[float, float]:
        tracker = Tracker(track_smoothing=smoothing, track_min_hits=1)
        errors = []
        for box, t in zip(noisy, truth, strict=True):
            out = tracker.update(result([box])).detections.xyxy[0]
            errors.append(out - np.asarray(t))
        errors = np.asarray(errors[10:])
        return float(np.abs(np.diff(errors, axis=0)).mean()), float(
            np.abs(errors.mean(axis=0)).max()
        )

    raw_jitter, _ = jitter_and_lag(0.0)
    jitter, lag = jitter_and_lag(0.5)
    assert jitter < 0.7 * raw_jitter
    assert lag < 2.0  # no steady offset behind the moving object (6 px a frame)


def test_without_smoothing_the_boxes_are_the_detectors():
    boxes = [box_at(100 + 7 * t, 100, 50 + t, 30) for t in range(5)]
    tracker = Tracker(track_smoothing=0.0, track_min_hits=1)
    for box in boxes:
        out = tracker.update(result([box], scores=[0.77]))
        np.testing.assert_allclose(out.detections.xyxy[0], box, atol=1e-3)
        assert out.detections.confidence[0] == pytest.approx(0.77)


def test_strong_boxes_are_matched_first_and_weak_ones_continue_the_tracks_just_seen():
    tracker = Tracker(track_high=0.5, track_min_hits=1, track_iou=0.2)
    out = tracker.update(result([box_at(100, 100)], scores=[0.9]))
    (track,) = out.detections.track_id.tolist()
    # a weak box on the object and a strong one overlapping it less: the strong one wins it...
    out = tracker.update(result([box_at(104, 100), box_at(118, 100)], scores=[0.3, 0.9]))
    ids = dict(
        zip(
            [round(float(c), 1) for c in out.detections.confidence],
            out.detections.track_id.tolist(),
            strict=True,
        )
    )
    assert ids[0.9] == track and ids[0.3] != track
    # ...and a weak box alone, where the object just was, continues it
    tracker = Tracker(track_high=0.5, track_min_hits=1)
    (track,) = tracker.update(result([box_at(100, 100)], scores=[0.9])).detections.track_id
    out = tracker.update(result([box_at(104, 100)], scores=[0.3]))
    assert out.detections.track_id.tolist() == [track]


def test_a_weak_box_where_a_lost_track_is_predicted_brings_that_track_back():
    """An object missed for a few frames and then found weakly (score under ``high``) keeps its
    id: the boxes are that object back, not a new object under a new id. Like a new object it
    is shown after ``min_hits`` finds in a row, so a lone weak box where it was stays hidden."""
    tracker = Tracker(track_high=0.5, track_min_hits=2, track_hold=0, track_max_missed=20)
    for t in range(5):
        out = tracker.update(result([box_at(100 + 5 * t, 100)], scores=[0.9]))
    (track,) = out.detections.track_id.tolist()
    for _ in range(3):  # missed: hidden (hold 0), still remembered
        assert len(tracker.update(result([])).detections) == 0
    assert len(tracker.update(result([box_at(140, 100)], scores=[0.2])).detections) == 0
    assert len(tracker.update(result([])).detections) == 0  # a lone weak box: never shown
    assert len(tracker.update(result([box_at(150, 100)], scores=[0.2])).detections) == 0
    out = tracker.update(result([box_at(155, 100)], scores=[0.2]))
    assert out.detections.track_id.tolist() == [track]  # two in a row: shown, the same id
    # a weak box far from every track is a new object, shown after min hits with a new id
    tracker.update(result([box_at(160, 100), box_at(400, 250)], scores=[0.9, 0.2]))
    out = tracker.update(result([box_at(165, 100), box_at(400, 250)], scores=[0.9, 0.2]))
    ids = out.detections.track_id.tolist()
    assert sorted(ids)[0] == track and len(set(ids)) == 2
    # a strong box where a lost track is predicted shows it at once (ByteTrack's rule)
    for _ in range(3):
        tracker.update(result([box_at(400, 250)], scores=[0.2]))
    out = tracker.update(result([box_at(400, 250), box_at(185, 100)], scores=[0.2, 0.9]))
    assert track in out.detections.track_id.tolist()


def test_boxes_of_any_score_can_start_tracks():
    """Every box the detector returns is above the user's threshold: none is hidden for its
    score alone (min hits still applies)."""
    tracker = Tracker(track_high=0.5, track_min_hits=2)
    for t in range(3):
        out = tracker.update(result([box_at(100, 100), box_at(400, 100 + t)], scores=[0.2, 0.9]))
    assert sorted([round(float(c), 1) for c in out.detections.confidence]) == [0.2, 0.9]


def test_bad_tracking_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="track_min_hits must be a positive whole number"):
        Tracker(track_min_hits=0)
    with pytest.raises(ConfigError, match="track_smoothing"):
        Tracker(track_smoothing=1.0)
    with pytest.raises(ConfigError, match="unknown tracking setting 'min_hits'"):
        Tracker(min_hits=2)
