"""The quality benchmark's failure analysis and calibration (``streamdet.quality.analysis``) on
constructed boxes, and its tables (``streamdet.quality.tables``)."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.quality.analysis import (
    CAUSES,
    analyse,
    calibration,
    cause,
    match,
    size_bucket,
)
from streamdet.quality.dataset import Dataset, FrameInfo, FrameScene, GtBox, ObjectInfo
from streamdet.quality.metrics import DetBox
from streamdet.quality.tables import analysis_tables
from streamdet.synth.vocabulary import parse_prompt

PROMPTS = ("a red circle", "a blue star")
CIRCLE = (10.0, 10.0, 60.0, 60.0)  # 50 px
STAR = (200.0, 100.0, 340.0, 240.0)  # 140 px
SQUARE = (400.0, 50.0, 440.0, 90.0)  # a red square: same colour as "a red circle"


def dataset() -> Dataset:
    """Frame 1: a red circle and a blue star; frame 2: only a red square (no target at all)."""
    stills = (
        FrameInfo(1, PROMPTS, "single", PROMPTS[0], 640, 360),
        FrameInfo(2, PROMPTS, "negative", PROMPTS[0], 640, 360),
    )
    truths = (GtBox(1, "a red circle", CIRCLE), GtBox(1, "a blue star", STAR))
    scenes = {
        1: FrameScene(
            "brick",
            (
                ObjectInfo("circle", "red", "small", CIRCLE),
                ObjectInfo("star", "blue", "large", STAR),
            ),
        ),
        2: FrameScene("sky", (ObjectInfo("square", "red", "small", SQUARE),)),
    }
    images = {i: np.zeros((360, 640, 3), np.uint8) for i in (1, 2)}
    return Dataset(stills, (), truths, (), images, scenes=scenes)


def test_match_labels_hits_misses_duplicates_and_ignored_boxes():
    truths = [
        GtBox(1, "a red circle", CIRCLE),
        GtBox(1, "a red circle", (500.0, 0.0, 640.0, 40.0), ignore=True),
    ]
    dets = [
        DetBox(1, "a red circle", CIRCLE, 0.9),  # hit
        DetBox(1, "a red circle", (12.0, 12.0, 62.0, 62.0), 0.8),  # duplicate: wrong
        DetBox(1, "a red circle", (510.0, 5.0, 630.0, 35.0), 0.7),  # on the ignore region
        DetBox(1, "a blue star", CIRCLE, 0.95),  # another prompt's object: wrong
    ]
    labels, found = match(truths, dets)
    assert labels == ["tp", "fp", "ignored", "fp"]
    assert found == {0: True}


def test_calibration_bins_add_up_to_the_boxes_and_hits():
    scores = [0.05, 0.3, 0.35, 0.41, 0.95, 1.0, 0.99]
    labels = ["fp", "tp", "fp", "ignored", "tp", "tp", "fp"]
    dets = [DetBox(1, "a red circle", CIRCLE, s) for s in scores]
    rows = calibration(dets, labels)
    assert sum(r["boxes"] for r in rows) == 6  # the ignored box is left out
    assert sum(r["right"] for r in rows) == 3
    by_bin = {r["bin"]: r for r in rows}
    assert by_bin["0.0-0.3"] == {"bin": "0.0-0.3", "boxes": 1, "right": 0, "precision": 0.0}
    assert by_bin["0.3-0.4"]["precision"] == 0.5
    assert by_bin["0.9-1.0"]["boxes"] == 3  # 1.0 falls in the last bin
    assert by_bin["0.4-0.5"]["precision"] is None


def test_causes_name_what_the_object_shares_with_the_prompt():
    q = parse_prompt("a small red circle")
    assert cause(q, ObjectInfo("square", "red", "small", SQUARE)) == "same colour"
    assert cause(q, ObjectInfo("circle", "blue", "small", SQUARE)) == "same kind"
    assert cause(q, ObjectInfo("circle", "red", "large", SQUARE)) == "other size"
    assert cause(q, ObjectInfo("car", "green", "large", SQUARE)) == "other object"
    assert cause(q, ObjectInfo("circle", "red", "small", SQUARE)) == "target, loose or twice"
    assert cause(q, None) == "background"
    cross = parse_prompt("a large white cross")
    assert cause(cross, ObjectInfo("cross", "white", "small", SQUARE)) == "other size"
    assert cause(cross, ObjectInfo("cross", "black", "large", SQUARE)) == "same kind"
    assert cause(parse_prompt("a triangle"), ObjectInfo("star", "red", "small", SQUARE)) == (
        "other object"
    )


def test_size_buckets():
    assert size_bucket((0.0, 0.0, 20.0, 20.0)) == "0-32 px"
    assert size_bucket(CIRCLE) == "32-64 px"
    assert size_bucket((0.0, 0.0, 100.0, 100.0)) == "64-128 px"
    assert size_bucket(STAR) == ">=128 px"


def test_analysis_counts_recall_and_false_boxes_by_cause_and_background():
    dets = [
        DetBox(1, "a red circle", CIRCLE, 0.92),  # found
        DetBox(2, "a red circle", SQUARE, 0.6),  # on the red square: a colour-only false box
        DetBox(2, "a blue star", (0.0, 300.0, 40.0, 340.0), 0.35),  # on nothing
    ]
    a = analyse(dataset(), dets)
    assert (a["boxes"], a["right"], a["wrong"], a["on_ignored"]) == (3, 1, 2, 0)
    assert a["recall"] == 0.5
    assert a["recall_by_prompt"]["a red circle"]["recall"] == 1.0
    assert a["recall_by_prompt"]["a blue star"] == {"true": 1, "found": 0, "recall": 0.0}
    assert a["recall_by_size"] == {
        "32-64 px": {"true": 1, "found": 1, "recall": 1.0},
        ">=128 px": {"true": 1, "found": 0, "recall": 0.0},
    }
    assert a["recall_by_background"] == {"brick": {"true": 2, "found": 1, "recall": 0.5}}
    assert a["false_boxes_by_cause"] == dict.fromkeys(CAUSES, 0) | {
        "same colour": 1,
        "background": 1,
    }
    assert a["false_boxes_by_background"]["sky"] == {"frames": 2, "boxes": 2, "per_frame": 1.0}
    calibrated = a["calibration"]
    assert sum(r["boxes"] for r in calibrated) == a["right"] + a["wrong"]
    table = analysis_tables({"train": {"configs": {"calibrated": {"analysis": a}}}}, "calibrated")
    assert "| same colour | 1 | 1 |" in table
    assert "| 0.9-1.0 | 1.000 (1/1) |" in table


@pytest.mark.parametrize("setting", ["calibrated", "missing"])
def test_tables_without_analysis_are_empty(setting):
    generators = {"train": {"configs": {"calibrated": {}}}}
    assert analysis_tables(generators, setting) == ""
