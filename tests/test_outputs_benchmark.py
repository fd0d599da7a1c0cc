"""bench_outputs runs on a generated clip and reports consistent files for every write rule (no
speed is asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json

import bench_outputs  # benchmarks/, on pytest's path


def test_bench_outputs_quick_writes_a_consistent_report(tmp_path, capsys):
    out = tmp_path / "bo.json"
    assert bench_outputs.main(["--quick", "--intervals", "0.5,1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_outputs.py --quick --intervals")
    (clip,) = report["clips"]
    assert (clip["clip"], clip["frames"], clip["fps"]) == ("generated", 48, 24.0)
    ways = clip["ways"]
    assert list(ways) == ["file", "live 0.5s", "live 1s"]
    assert all(row["frames"] == 48 for row in ways.values())  # every frame in every file
    assert [row["fragmented"] for row in ways.values()] == [False, True, True]
    assert ways["file"]["time_ratio"] == ways["file"]["size_ratio"] == 1.0
    # 2 s of video: a keyframe at least every interval
    assert ways["live 0.5s"]["keyframes"] >= 4 and ways["live 1s"]["keyframes"] >= 2
    assert "trail_frames_max" not in ways["file"]
    for way in ("live 0.5s", "live 1s"):
        row = ways[way]
        assert 0 < row["trail_frames_mean"] <= row["trail_frames_max"] < 48
        assert row["size_ratio"] == round(row["bytes"] / ways["file"]["bytes"], 2)
    assert "| generated | live 1s |" in capsys.readouterr().out
