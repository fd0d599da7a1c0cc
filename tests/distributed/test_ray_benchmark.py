"""bench_ray runs its quick setting on a real local Ray (in a loopback-only namespace) and
reports every way writing every frame (no speed is asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json

import pytest
from netns import REPO, run_python_isolated

pytest.importorskip("ray")

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_bench_ray_quick_writes_a_consistent_report(tmp_path):
    out = tmp_path / "bench_ray.json"
    script = str(REPO / "benchmarks" / "bench_ray.py")
    proc = run_python_isolated([script, "--quick", "--out", str(out)], cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["command"] == "python benchmarks/bench_ray.py --quick --out " + str(out)
    ways = report["ways"]
    assert [w["way"] for w in ways] == ["single", "ray-2"]
    assert [w["workers"] for w in ways] == [1, 2]
    for way in ways:
        assert (way["files"], way["frames"]) == (4, 64)  # every frame of every clip
        assert way["mp4_frames_ok"]
        assert way["files_per_s"] == pytest.approx(4 / way["seconds"], rel=0.01)
    assert ways[1]["ratio_to_single"] == round(ways[1]["files_per_s"] / ways[0]["files_per_s"], 2)
    assert "| ray-2 | 2 | 4 | 64 |" in proc.stdout
