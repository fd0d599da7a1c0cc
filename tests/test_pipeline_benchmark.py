"""bench_pipeline runs end to end on a tiny setting and reports consistent numbers (no speed is
asserted: benchmarks are never timed tests), and builds its detector through the one
configuration."""

from __future__ import annotations

import argparse
import json

import pytest

import bench_pipeline  # benchmarks/, on pytest's path


def test_bench_pipeline_quick_writes_a_consistent_report(tmp_path, media_dir):
    clips = sorted(media_dir.glob("*.mp4"))
    out = tmp_path / "bp.json"
    args = ["--quick", "--clips", str(clips[0]), "--frames", "5", "--size", "160x96"]
    args += ["--codec", "libx264", "--stride", "2"]
    assert bench_pipeline.main([*args, "--live-seconds", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_pipeline.py --quick")
    assert report["settings"]["size"] == "160x96" and "onnxruntime" in report["machine"]
    assert report["settings"]["codec"] == "libx264"
    # the resolved configuration, with where each value came from
    config = report["config"]
    assert config["preset"] == "model" and config["grid"]["stride"] == 2
    assert config["sources"]["stride"] == "you" and config["sources"]["patch"] == "model"
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


def test_fast_is_the_fast_preset_and_flags_override_it(tiny_model_dir):
    parse = bench_pipeline.build_parser().parse_args
    argv = ["--model", str(tiny_model_dir), "--fast", "--token-scale", "2", "--precision", "fp32"]
    config = bench_pipeline.build_detector(parse(argv)).config
    assert config.preset == "fast"
    assert config.scoring.method == "dense" and config.sources["method"] == "preset fast"
    assert (config.grid.token_scale, config.sources["token_scale"]) == (2.0, "you")
    assert (config.runtime.precision, config.sources["precision"]) == ("fp32", "you")


def test_contradicting_flags_are_one_line_before_any_work(tmp_path, capsys):
    argv = ["--clips", str(tmp_path / "absent.mp4"), "--fast", "--preset", "writeup"]
    assert bench_pipeline.main([*argv, "--out", str(tmp_path / "bp.json")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--fast is --preset fast" in line
    assert not (tmp_path / "bp.json").exists()


def test_size_argument_is_checked():
    assert bench_pipeline.parse_size("640x360") == (640, 360)
    for bad in ("640", "0x10", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="size"):
            bench_pipeline.parse_size(bad)
