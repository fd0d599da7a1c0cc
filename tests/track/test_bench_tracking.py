"""bench_tracking --quick runs the built-in model on a few small clips and reports sane metrics
(no number is asserted as a target here: benchmarks are never timed or scored tests)."""

from __future__ import annotations

import json

import pytest

import bench_tracking  # benchmarks/, on pytest's path

pytest.importorskip("motmetrics")
pytest.importorskip("pycocotools")


def test_bench_tracking_quick_writes_a_consistent_report(tmp_path, capsys):
    out = tmp_path / "bt.json"
    argv = ["--quick", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert bench_tracking.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_tracking.py --quick")
    assert report["data"]["clips"] == ["cross-same", "leave-return"]
    assert report["config"]["track"]["enabled"] is True
    mot = report["tracked"]["mot"]
    assert 0 < mot["idf1"] <= 1 and mot["mota"] <= 1 and 0 <= mot["recall"] <= 1
    assert mot["num_unique_objects"] >= 4  # two cars, a person; a person and a car
    untracked, tracked = report["untracked"], report["tracked"]["steadiness"]
    for row in (untracked, tracked):
        assert 0 <= row["blink"] <= 1 and row["jitter"] >= 0 and 0 < row["found"] <= 1
        assert 0 < row["ap50"] <= 1 and row["boxes"] > 0
    expected = round(tracked["blink"] / untracked["blink"], 4) if untracked["blink"] else None
    assert report["blink_ratio"] == expected
    assert set(report["targets"]) == {"idf1_at_least_0.8", "blink_at_most_half", "ap50_not_lower"}
    assert report["targets"]["blink_at_most_half"] is (tracked["blink"] <= 0.5 * untracked["blink"])
    assert report["tracked"]["track_ms_per_frame"] > 0 and report["model_ms_per_frame"] > 0
    assert "| tracked |" in capsys.readouterr().out


def test_unknown_clips_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench_tracking.main(["--clips", "cross-same,nope"])
    assert "unknown clip 'nope'" in capsys.readouterr().err


def test_real_clips_are_tracked_and_their_id_churn_reported(tmp_path, capsys, media_dir):
    out = tmp_path / "bt.json"
    argv = ["--quick", "--clips", "leave-return", "--real-frames", "6", "--out", str(out)]
    assert bench_tracking.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads(out.read_text())
    real = report["tracked"]["real"]
    assert list(real) == [c for c in bench_tracking.REAL_CLIPS if (media_dir / c).is_file()]
    for name, churn in real.items():
        assert churn["frames"] == 6 and churn["ids"] >= 0 and churn["short_ids"] <= churn["ids"]
        assert report["untracked"]["real_boxes"][name] >= 0
    assert report["data"]["real_frames"] == 6
    assert "| real clip |" in capsys.readouterr().out


def test_real_clips_are_skipped_when_the_media_folder_is_missing(tmp_path, capsys):
    out = tmp_path / "bt.json"
    argv = ["--quick", "--clips", "leave-return", "--real-frames", "3", "--out", str(out)]
    argv += ["--media", str(tmp_path / "nowhere"), "--cache-dir", str(tmp_path / "cache")]
    assert bench_tracking.main(argv) == 0
    assert json.loads(out.read_text())["tracked"]["real"] == {}
    assert "skipped" in capsys.readouterr().err
