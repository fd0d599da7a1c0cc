"""bench_pipeline runs end to end on a tiny setting and reports consistent numbers (no speed is
asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def test_bench_pipeline_quick_writes_a_consistent_report(tmp_path, load_benchmark):
    clips = sorted(MEDIA.glob("*.mp4"))
    if not clips:
        pytest.skip(f"no clips in {MEDIA}")
    bench = load_benchmark("bench_pipeline")
    out = tmp_path / "bp.json"
    args = ["--quick", "--clips", str(clips[0]), "--frames", "5", "--size", "160x96"]
    args += ["--codec", "libx264"]
    assert bench.main([*args, "--live-seconds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_pipeline.py --quick")
    assert report["settings"]["size"] == "160x96" and "onnxruntime" in report["machine"]
    assert report["settings"]["codec"] == "libx264"
    (f,) = report["files"]
    assert f["frames"] == 5 and f["clip"] == clips[0].name
    assert f["pipeline_fps"] > 0 and f["decode_fps"] > 0 and f["encode_fps"] > 0
    assert {"encode", "render", "write", "latency"} <= set(f["stages_ms"])
    live = report["live"]
    assert 1 <= live["frames_processed"] <= live["frames_captured"]
    assert live["frames_dropped"] <= live["frames_captured"] - live["frames_processed"]
    lat = live["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert set(report["render_1080p_ms"]) == {
        "boxes+overlay, heatmap none",
        "boxes+overlay, heatmap color",
        "boxes+overlay, heatmap dim",
    }


def test_size_argument_is_checked(load_benchmark):
    bench = load_benchmark("bench_pipeline")
    assert bench.parse_size("640x360") == (640, 360)
    for bad in ("640", "0x10", "axb"):
        with pytest.raises(Exception, match="size"):
            bench.parse_size(bad)
