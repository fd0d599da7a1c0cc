"""The quality benchmark's metrics on constructed inputs, its dataset, and one tiny end-to-end
run of its command line (``streamdet.quality``, run by benchmarks/quality.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from streamdet.quality import cli
from streamdet.quality.dataset import (
    FRAME_KINDS,
    PROMPT_SETS,
    FrameInfo,
    GtBox,
    Track,
    build_dataset,
    near_misses,
)
from streamdet.quality.metrics import (
    DetBox,
    best_cell_box,
    coco_ap,
    false_boxes,
    stability,
)
from streamdet.synth.scenes import parse_prompt

pytest.importorskip("pycocotools")

REPO = Path(__file__).resolve().parent.parent


PROMPTS = ("a red circle", "a blue star")


def frames(n: int) -> list:
    return [FrameInfo(i, PROMPTS, "single", PROMPTS[0], 640, 360) for i in range(1, n + 1)]


def test_perfect_detections_give_ap_one():
    truths = [
        GtBox(1, "a red circle", (10.0, 20.0, 110.0, 120.0)),
        GtBox(1, "a blue star", (300.0, 50.0, 360.0, 110.0)),
        GtBox(2, "a red circle", (200.0, 200.0, 260.0, 280.0)),
    ]
    dets = [DetBox(t.image_id, t.prompt, t.box, 0.9) for t in truths]
    ap = coco_ap(frames(2), truths, dets, PROMPTS)
    assert ap.ap50 == pytest.approx(1.0)
    assert ap.ap50_95 == pytest.approx(1.0)
    assert ap.per_prompt["a blue star"] == pytest.approx((1.0, 1.0))


def test_box_with_iou_04_misses_and_others_are_unaffected():
    circle, star = (0.0, 0.0, 100.0, 100.0), (300.0, 0.0, 400.0, 100.0)
    # Shifted right by s: IoU = (100 - s) / (100 + s) = 0.4 for s = 300/7.
    s = 300.0 / 7.0
    shifted = (300.0 + s, 0.0, 400.0 + s, 100.0)
    truths = [GtBox(1, "a red circle", circle), GtBox(1, "a blue star", star)]
    dets = [DetBox(1, "a red circle", circle, 0.8), DetBox(1, "a blue star", shifted, 0.8)]
    ap = coco_ap(frames(1), truths, dets, PROMPTS)
    assert ap.per_prompt["a red circle"][0] == pytest.approx(1.0)
    assert ap.per_prompt["a blue star"][0] == 0.0
    assert ap.ap50 == pytest.approx(0.5)


def test_ignored_truth_neither_hits_nor_misses():
    truths = [
        GtBox(1, "a red circle", (0.0, 0.0, 100.0, 100.0)),
        GtBox(1, "a red circle", (500.0, 0.0, 640.0, 40.0), ignore=True),
    ]
    hit = DetBox(1, "a red circle", (0.0, 0.0, 100.0, 100.0), 0.9)
    on_ignored = DetBox(1, "a red circle", (500.0, 0.0, 640.0, 40.0), 0.95)
    assert coco_ap(frames(1), truths, [hit], PROMPTS).ap50 == pytest.approx(1.0)
    assert coco_ap(frames(1), truths, [hit, on_ignored], PROMPTS).ap50 == pytest.approx(1.0)
    # A frame with only an ignored object is not a frame without the target.
    assert false_boxes(frames(1), truths, [on_ignored]).per_prompt == {"a blue star": 0.0}


def test_no_detections_give_zero_ap_and_prompts_without_truth_none():
    truths = [GtBox(1, "a red circle", (0.0, 0.0, 50.0, 50.0))]
    ap = coco_ap(frames(1), truths, [], PROMPTS)
    assert ap.ap50 == 0.0
    assert ap.per_prompt["a blue star"] == (None, None)


def test_false_box_on_negative_frame_is_counted():
    truths = [GtBox(1, "a red circle", (0.0, 0.0, 50.0, 50.0))]
    dets = [
        DetBox(1, "a red circle", (0.0, 0.0, 50.0, 50.0), 0.9),  # a hit, not false
        DetBox(2, "a red circle", (100.0, 100.0, 150.0, 150.0), 0.9),  # frame 2 has none
    ]
    fb = false_boxes(frames(2), truths, dets)
    # Negative (frame, prompt) pairs: (1, star), (2, circle), (2, star); one false box among them.
    assert fb.frames == 3
    assert fb.boxes == 1
    assert fb.per_frame == pytest.approx(1 / 3)
    assert fb.per_prompt == {"a red circle": 1.0, "a blue star": 0.0}


def track_and_dets(truth_step: float, det_step: float, n: int = 5):
    ids = tuple(range(1, n + 1))
    truths = tuple((10.0 + truth_step * t, 10.0, 60.0 + truth_step * t, 60.0) for t in range(n))
    dets = [
        DetBox(i, "a red circle", (12.0 + det_step * t, 8.0, 62.0 + det_step * t, 58.0), 0.9)
        for t, i in enumerate(ids)
    ]
    return Track("a red circle", ids, truths), dets


def test_jitter_of_constant_box_is_zero():
    track, dets = track_and_dets(0.0, 0.0)
    st = stability([track], dets)
    assert st.jitter == 0.0
    assert st.blink == 0.0
    assert st.found == 1.0
    assert st.pairs == 4


def test_jitter_of_box_moving_5px_per_frame():
    # The object stands still and its box drifts 5 px per frame: jitter = 5 / sqrt(50 * 50).
    track, dets = track_and_dets(0.0, 5.0)
    st = stability([track], dets)
    assert st.jitter == pytest.approx(0.1)
    assert st.centre_jitter == pytest.approx(0.1)
    assert st.size_jitter == 0.0
    # A box that follows a moving object exactly does not jitter.
    track, dets = track_and_dets(5.0, 5.0)
    assert stability([track], dets).jitter == pytest.approx(0.0)


def test_blink_counts_appearing_and_disappearing_boxes():
    track, dets = track_and_dets(0.0, 0.0)
    # Frames 1..5; drop frame 3: found, found, lost, found, found -> 2 blinks in 4 pairs.
    st = stability([track], [d for d in dets if d.image_id != 3])
    assert st.blink == pytest.approx(0.5)
    assert st.found == pytest.approx(0.8)
    assert st.jitter == 0.0  # only pairs with a box in both frames


def test_best_cell_box_snaps_to_the_grid():
    assert best_cell_box((32.0, 64.0, 96.0, 128.0), 32, 640, 360) == (32, 64, 96, 128)
    assert best_cell_box((30.0, 60.0, 100.0, 130.0), 32, 640, 360) == (32, 64, 96, 128)
    assert best_cell_box((600.0, 340.0, 640.0, 360.0), 32, 640, 360)[2:] == (640, 360)


def test_dataset_truth_follows_the_prompt_and_is_deterministic():
    sets = {"s": ("a red circle", "a triangle")}
    ds = build_dataset(sets, frames_per_kind=1, videos_per_set=1, video_frames=3, seed=5)
    again = build_dataset(sets, frames_per_kind=1, videos_per_set=1, video_frames=3, seed=5)
    assert ds.truths == again.truths
    assert all(np.array_equal(ds.images[i], again.images[i]) for i in ds.images)
    assert len(ds.stills) == 2 * len(FRAME_KINDS) and len(ds.videos) == 3
    present = {(t.image_id, t.prompt) for t in ds.truths}
    for f in ds.stills:
        if f.kind == "negative":
            assert not any((f.image_id, p) in present for p in f.prompts)
        else:
            assert (f.image_id, f.target) in present
    multi = [f for f in ds.stills if f.kind == "multi"]
    for f in multi:
        assert sum(t.image_id == f.image_id and t.prompt == f.target for t in ds.truths) >= 2


def test_near_misses_differ_in_one_attribute():
    query = parse_prompt("a small red circle")
    texts = near_misses(np.random.default_rng(0), query, [query])
    assert len(texts) == 3
    for text in texts:
        miss = parse_prompt(text)
        assert not query.matches_attributes(miss.kind, miss.colour, miss.size)
        same = (miss.kind == "circle") + (miss.colour == "red") + (miss.size == "small")
        assert same == 2


def test_quick_run_writes_the_json(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "quality.json"
    argv = [
        "--quick",
        "--model",
        str(tiny_model_dir),
        "--sets",
        "shapes",
        "--kinds",
        "single,negative",
        "--videos",
        "1",
        "--video-frames",
        "3",
        "--frame-size",
        "160x96",
        "--patch",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0  # targets missed by a random model, but not checked
    report = json.loads(out.read_text())
    assert {"command", "machine", "model", "settings", "generators", "gap", "targets"} <= set(
        report
    )
    assert report["model"]["checksum"]
    assert report["machine"]["onnxruntime"]
    assert list(report["generators"]) == ["train", "heldout"]
    train, heldout = report["generators"]["train"], report["generators"]["heldout"]
    assert list(train["configs"]) == ["calibrated", "reference"]
    assert list(heldout["configs"]) == ["calibrated"]  # quick: the default setting only
    assert train["dataset"]["generator"] == "train" and heldout["dataset"]["generator"] == "heldout"
    for g in (train, heldout):
        assert g["dataset"]["still_frames"] == 3 * 2 and g["dataset"]["true_boxes"] > 0
        for result in g["configs"].values():
            for key in ("ap50", "ap50_95", "false_boxes_per_frame", "blink"):
                assert result[key] is None or 0.0 <= result[key] <= 1.0 + 1e-9, key
            assert result["false_boxes_per_frame"] is not None and result["ms_per_frame"] > 0
            assert set(result["per_prompt"]) == set(PROMPT_SETS["shapes"])
            # the resolved configuration, with the layer each value came from
            assert result["config"]["grid"]["patch"] == 16
            assert result["config"]["sources"]["patch"] == "you"
        analysis = g["configs"]["calibrated"]["analysis"]
        bins = analysis["calibration"]
        assert sum(b["boxes"] for b in bins) == analysis["right"] + analysis["wrong"]
        assert sum(b["right"] for b in bins) == analysis["right"]
        assert analysis["boxes"] == analysis["right"] + analysis["wrong"] + analysis["on_ignored"]
        true = sum(v["true"] for v in analysis["recall_by_size"].values())
        assert true == g["dataset"]["true_boxes"]
        assert "analysis" not in g["configs"].get("reference", {})
    reference = train["configs"]["reference"]["config"]
    assert reference["scoring"]["scoring"] == "reference"
    assert reference["grid"]["overhang"] is False
    assert train["configs"]["calibrated"]["config"]["scoring"]["scoring"] == "calibrated"
    gap = report["gap"]["calibrated"]["ap50"]
    assert gap == pytest.approx(
        train["configs"]["calibrated"]["ap50"] - heldout["configs"]["calibrated"]["ap50"], abs=1e-3
    )
    assert set(report["targets"]) == {
        "calibrated_ap50",
        "calibrated_over_reference_ap50",
        "calibrated_false_boxes_per_frame",
        "heldout_ap50",
        "heldout_min_prompt_ap50",
        "heldout_false_boxes_per_frame",
        "heldout_gap_ap50",
    }
    assert report["targets"]["heldout_gap_ap50"]["value"] == pytest.approx(gap, abs=1e-3)
    printed = capsys.readouterr().out
    assert "| calibrated |" in printed and "## Side by side" in printed
    assert "Calibration" in printed and "Recall by object size" in printed
    if not report["passed"]:
        assert cli.main([*argv, "--check-targets"]) == 1


def test_one_generator_runs_alone_and_the_others_targets_fail(tiny_model_dir, tmp_path):
    out = tmp_path / "train.json"
    argv = ["--quick", "--generator", "train", "--model", str(tiny_model_dir)]
    argv += ["--configs", "calibrated", "--sets", "shapes", "--kinds", "single"]
    argv += ["--videos", "0", "--frame-size", "160x96", "--patch", "16"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert cli.main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report["generators"]) == ["train"] and report["gap"] == {}
    assert report["targets"]["heldout_ap50"] == {"value": None, "min": 0.7, "passed": False}


def test_the_script_runs_the_package_and_refuses_an_unknown_setting(tiny_model_dir, tmp_path):
    out = tmp_path / "never.json"
    argv = ["--model", str(tiny_model_dir), "--configs", "calibrated,no-such", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "quality.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "unknown config no-such" in line and "calibrated-fast" in line
    assert not out.exists()
