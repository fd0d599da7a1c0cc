"""bench_streams runs its quick setting against real RTSP test servers and reports both ways
(one process for every stream; one process per stream) with numbers from the runs' own reports."""

from __future__ import annotations

import json

import pytest

import bench_streams  # benchmarks/, on pytest's path
from _rtsp import rtsp_server_problem

pytestmark = pytest.mark.network


def test_quick_run_reports_both_ways(tmp_path):
    problem = rtsp_server_problem()
    if problem is not None:
        pytest.skip(problem)
    out = tmp_path / "streams.json"
    assert bench_streams.main(["--quick", "--seconds", "8", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_streams.py --quick")
    ways = {r["way"]: r for r in report["rounds"]}
    assert ways["together"]["processes"] == 1 and ways["separate"]["processes"] == 2
    for r in ways.values():
        assert r["streams_reported"] == 2 and not r["problems"]
        assert r["frames_processed"] > 0 and r["aggregate_fps"] > 0
        assert r["aggregate_fps"] == pytest.approx(sum(r["per_stream_fps"]), abs=0.05)
    ratio = report["aggregate_fps"]["together"] / report["aggregate_fps"]["separate"]
    assert report["together_over_separate"] == pytest.approx(ratio, abs=0.01)
