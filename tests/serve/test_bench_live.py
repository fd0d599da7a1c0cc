"""``benchmarks/bench_live.py --quick`` runs end to end and reports consistently (no speed is
asserted: only that the page painted frames and the numbers follow from each other)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.network]


def test_bench_live_quick(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("/usr/bin/chromium is absent")
    import bench_live

    out, shot = tmp_path / "live.json", tmp_path / "page.png"
    argv = ["--quick", "--seconds", "2", "--out", str(out), "--screenshot", str(shot)]
    assert bench_live.main(argv) == 0
    report = json.loads(out.read_text())
    r = report["result"]
    assert report["settings"]["preset"] == "fast" and report["settings"]["size"] == "640x360"
    assert r["frames_painted"] == r["painted_ms"]["n"] >= 5
    assert 0 < r["painted_ms"]["p50"] <= r["painted_ms"]["p95"] <= r["painted_ms"]["max"]
    assert r["model_ms_per_frame"] > 0
    assert r["p95_over_model_ms"] == pytest.approx(
        r["painted_ms"]["p95"] - r["model_ms_per_frame"], abs=0.11
    )
    assert r["target_met"] == (r["p95_over_model_ms"] <= 150)
    assert shot.stat().st_size > 10_000
