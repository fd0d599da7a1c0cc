"""bench_reuse runs on a tiny setting and reports consistent counts and differences (no speed is
asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json

import bench_reuse  # benchmarks/, on pytest's path


def test_bench_reuse_quick_writes_a_consistent_report(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "br.json"
    argv = ["--quick", "--clips", "synthetic", "--frames", "5", "--size", "160x96"]
    argv += ["--model", str(tiny_model_dir), "--patch", "16", "--window", "2"]
    argv += ["--tolerances", "0,0.02", "--reuse-motion", "1", "--cache-dir", str(tmp_path / "c")]
    assert bench_reuse.main([*argv, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_reuse.py --quick")
    (clip,) = report["clips"]
    assert clip["clip"] == "synthetic" and clip["frames"] == 5
    assert clip["config"]["reuse"]["threshold"] is False  # the baseline computes everything
    base = clip["no_reuse"]
    assert base["windows_reused"] == 0 and base["windows_computed"] > 0
    exact, loose = clip["reuse"]
    assert (exact["tolerance"], loose["tolerance"]) == (0.0, 0.02)
    for row in (exact, loose):
        # every window of every frame is either computed or reused
        assert row["windows_computed"] + row["windows_reused"] == base["windows_computed"]
        assert row["windows_ratio"] == round(base["windows_computed"] / row["windows_computed"], 2)
    # sensor noise on every frame: exact reuse keeps nothing, a tolerance keeps the background
    assert exact["windows_reused"] == 0 and loose["windows_reused"] > 0
    assert exact["heatmap_max_abs_diff"] <= 1e-5 and exact["box_agreement"] == 1.0
    assert "| synthetic | 0.0 |" in capsys.readouterr().out


def test_bad_tolerances_are_refused(capsys):
    import pytest

    with pytest.raises(SystemExit):
        bench_reuse.main(["--tolerances", "0.5,2"])
    assert "tolerances must be numbers in 0..1" in capsys.readouterr().err
