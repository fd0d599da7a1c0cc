"""bench_search runs on a tiny setting and reports consistent recall and timings (no speed is
asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json

import bench_search  # benchmarks/, on pytest's path


def test_bench_search_quick_writes_a_consistent_report(tmp_path, capsys):
    out = tmp_path / "bs.json"
    argv = ["--quick", "--videos", "2", "--seconds", "8", "--rows", "2500", "--repeats", "2"]
    assert bench_search.main([*argv, "--dims", "64,32", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_search.py --quick")
    recall = report["recall"]
    assert recall["videos"] == 2 and recall["size"] == "320x180"
    # 8 s sampled once a second: 8 frames per video, 22 rows per 320x180 frame
    assert recall["index_default"]["rows"] == 2 * 8 * 22
    assert recall["index_fine"]["rows"] > recall["index_default"]["rows"]
    variants = recall["variants"]
    assert {"default/calibrated-collapse5", "whole-frame-only/cosine-collapse1"} <= set(variants)
    for v in variants.values():
        assert 0.0 <= v["recall@10"] <= 1.0 and 0.0 <= v["top1"] <= 1.0
        asked = sum(g["appearances"] for g in v["per_prompt"].values())
        assert asked == recall["appearances"]
    query = report["query"]
    assert query["rows"] == 2500 and query["dim64"]["load_ms"] > 0
    assert query["dim64"]["search"]["median_ms"] > 0
    assert query["dim32"]["calibrated"]["median_ms"] > 0
    assert "| default/calibrated-collapse5 |" in capsys.readouterr().out
