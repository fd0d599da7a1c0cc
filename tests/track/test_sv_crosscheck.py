"""Our tracker beside supervision 0.30's ``sv.ByteTrack`` on the same synthetic boxes.

supervision is an optional extra (pinned below 0.31, which dropped ByteTrack), so streamdet ships
its own tracker (``streamdet.track``); this check runs both on crossings and a short miss and
expects the same identities: one id per object, the same grouping of boxes into tracks.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import box_at, crossing, result

from streamdet.track import Tracker
from streamdet.types import Detections

sv = pytest.importorskip("supervision")
if not hasattr(sv, "ByteTrack"):  # pragma: no cover - supervision >= 0.31
    pytest.skip("this supervision has no ByteTrack (removed in 0.31)", allow_module_level=True)


def _scenario() -> list[tuple[list[list[float]], list[int]]]:
    """Per frame: boxes and the true object of each. Two objects cross head on; a third moves
    down, is missed for two frames, and comes back."""
    frames = []
    for t, pair in enumerate(crossing(30, speed=14.0)):
        objects = [1, 0] if t % 2 else [0, 1]
        boxes = list(pair)
        if not 12 <= t <= 13:
            boxes.append(box_at(500, 40 + 6 * t))
            objects.append(2)
        frames.append((boxes, objects))
    return frames


def _groups(ids_per_frame: list[list[int | None]], objects: list[list[int]]) -> dict[int, set]:
    """For each true object, the set of ids it was given (None: not shown in that frame)."""
    out: dict[int, set] = {}
    for ids, objs in zip(ids_per_frame, objects, strict=True):
        for i, o in zip(ids, objs, strict=True):
            if i is not None:
                out.setdefault(o, set()).add(i)
    return out


def _ids_for(boxes: list[list[float]], xyxy: np.ndarray, ids: np.ndarray) -> list[int | None]:
    """The id of the output box that overlaps each input box most (None when none does)."""
    out: list[int | None] = []
    for box in boxes:
        if not len(xyxy):
            out.append(None)
            continue
        b = np.asarray(box)
        tl = np.maximum(xyxy[:, :2], b[:2])
        br = np.minimum(xyxy[:, 2:], b[2:])
        inter = np.prod(np.clip(br - tl, 0, None), axis=1)
        best = int(np.argmax(inter))
        out.append(int(ids[best]) if inter[best] > 0.5 * np.prod(b[2:] - b[:2]) else None)
    return out


def test_ours_and_supervisions_bytetrack_give_the_same_identities():
    frames = _scenario()
    objects = [objs for _, objs in frames]
    ours, theirs = (
        Tracker(track_min_hits=1, track_hold=0, track_smoothing=0.0),
        sv.ByteTrack(minimum_consecutive_frames=1, frame_rate=30),
    )
    our_ids, their_ids = [], []
    for boxes, _ in frames:
        mine = ours.update(result(boxes, scores=[0.9] * len(boxes))).detections
        our_ids.append(_ids_for(boxes, mine.xyxy, mine.track_id))
        plain = Detections(
            np.array(boxes, np.float32),
            np.full(len(boxes), 0.9, np.float32),
            np.zeros(len(boxes), np.int64),
        )
        out = theirs.update_with_detections(plain.to_supervision())
        their_ids.append(_ids_for(boxes, out.xyxy, out.tracker_id))
    ours_by_object = _groups(our_ids, objects)
    theirs_by_object = _groups(their_ids, objects)
    # both: every object is found and keeps exactly one id, through the crossing and the miss
    assert set(ours_by_object) == set(theirs_by_object) == {0, 1, 2}
    assert all(len(ids) == 1 for ids in ours_by_object.values()), ours_by_object
    assert all(len(ids) == 1 for ids in theirs_by_object.values()), theirs_by_object
    # and the same frames are shown: after the start both output every object in every frame
    # it was found (neither holds a box through the miss with these settings)
    shown_ours = [[i is not None for i in f] for f in our_ids]
    shown_theirs = [[i is not None for i in f] for f in their_ids]
    assert shown_ours[2:] == shown_theirs[2:]
