"""The speed benchmarks run end to end in --quick mode on the tiny model, and report consistently.

The benchmark scripts import as modules (pytest puts benchmarks/ on the path). Nothing here
asserts a speed: only that the JSON has its structure and that the ratios follow from the measured
milliseconds.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

# benchmarks/ (on pytest's path), imported after the skips: the scripts need torch
import _models
import _ways
import bench_model
import bench_reference


def test_sample_indices_spread_over_the_grid():
    idx = _ways.sample_indices(153, 8)
    assert list(idx[[0, -1]]) == [0, 152]
    assert len(idx) == 8 and len(set(idx.tolist())) == 8
    assert list(_ways.sample_indices(3, 8)) == [0, 1, 2]


def test_ratios_are_computed_from_the_milliseconds():
    way = _ways.WayResult
    results = [
        way("writeup", 1, 1000.0, "extrapolated", (), {}),
        way("torch-batch", 1, 500.0, "whole frames", (), {}),
        way("streamdet", 1, 250.0, "whole frames", (), {}),
    ]
    r = bench_reference.ratios(results)["1"]
    expected = {"writeup": 1.0, "torch-batch": 2.0, "streamdet": 4.0}
    assert r == {**expected, "streamdet_vs_torch_batch": 2.0}


def test_cached_export_is_redone_when_the_exporter_changes(tiny_hf_dir, tmp_path, monkeypatch):
    """A benchmark must measure the graph today's exporter writes, not one cached by older code."""
    out = tmp_path / "export"
    first = _models.export_cached(tiny_hf_dir, out)
    made = (first / "image.onnx").stat().st_mtime_ns
    assert _models.export_cached(tiny_hf_dir, out) == first
    assert (first / "image.onnx").stat().st_mtime_ns == made  # same source, same exporter: reused
    monkeypatch.setattr(_models, "exporter_checksum", lambda: "0" * 64)
    _models.export_cached(tiny_hf_dir, out)
    assert (out / "image.onnx").stat().st_mtime_ns != made
    assert (out / _models.EXPORTER_STAMP).read_text().strip() == "0" * 64


def test_bench_reference_quick(tmp_path, capsys, quick_argv):
    out = tmp_path / "ref.json"
    argv = [*quick_argv]
    argv += ["--sample-windows", "3", "--out", str(out)]
    assert bench_reference.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["benchmark"] == "bench_reference"
    assert report["command"].startswith("python benchmarks/bench_reference.py --quick")
    for key in ("python", "onnxruntime", "torch", "transformers", "usable_cpus"):
        assert key in report["machine"]
    settings = report["settings"]
    assert settings["quick"] and settings["windows"] > settings["sample_windows"] == 3
    # streamdet runs the write-up's preset on the command line's grid, and the JSON says so
    (config,) = report["configs"].values()
    assert config["preset"] == "writeup" and config["scoring"]["scoring"] == "reference"
    assert (config["grid"]["patch"], config["sources"]["patch"]) == (16, "you")
    assert config["sources"]["overhang"] == "preset writeup"
    assert settings["prompt_counts"] == [1, 8]
    results = report["results"]
    assert {(r["way"], r["prompts"]) for r in results} == {
        (w, k) for w in ("writeup", "torch-batch", "streamdet") for k in (1, 8)
    }
    for r in results:
        assert r["ms_per_frame"] > 0 and r["parts_ms"]
        if r["way"] == "writeup":  # extrapolated: mean per sampled window x windows per frame
            assert len(r["runs_ms"]) == 3
            expected = sum(r["runs_ms"]) / 3 * settings["windows"]
            rounding = 0.005 * settings["windows"]  # runs_ms are rounded to 0.01 ms
            assert r["ms_per_frame"] == pytest.approx(expected, rel=1e-3, abs=rounding)
        else:  # median of whole frames
            assert len(r["runs_ms"]) == settings["repeats"]
    for k in ("1", "8"):
        ms = {r["way"]: r["ms_per_frame"] for r in results if str(r["prompts"]) == k}
        ratio = report["ratios"][k]
        for way in ("writeup", "torch-batch", "streamdet"):
            assert ratio[way] == pytest.approx(ms["writeup"] / ms[way])
        assert ratio["streamdet_vs_torch_batch"] == pytest.approx(
            ms["torch-batch"] / ms["streamdet"]
        )
    table = capsys.readouterr().out
    assert table.startswith("| way | prompts | ms per frame |") and table.count("\n") >= 7


def test_bench_model_quick(tmp_path, capsys, quick_argv):
    out = tmp_path / "model.json"
    argv = [*quick_argv]
    argv += ["--out", str(out)]
    assert bench_model.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["benchmark"] == "bench_model"
    assert report["command"].startswith("python benchmarks/bench_model.py --quick")
    assert "onnxruntime" in report["machine"]
    rows = report["results"]
    settings = report["settings"]
    combos = {(r["resolution"], r["prompts"], r["backend"], r["precision"]) for r in rows}
    assert len(combos) == len(rows)
    assert {r["backend"] for r in rows} == {"onnxruntime", "torch"}
    assert {r["prompts"] for r in rows} == set(settings["prompt_counts"])
    for r in rows:
        assert r["windows"] > 0 and r["ms_per_frame"] > 0
        assert len(r["runs_ms"]) == settings["repeats"]
        assert r["ms_per_window"] == pytest.approx(r["ms_per_frame"] / r["windows"])
        base = next(
            b
            for b in rows
            if (b["resolution"], b["prompts"], b["backend"], b["precision"])
            == (r["resolution"], r["prompts"], "onnxruntime", "fp32")
        )
        assert r["vs_onnxruntime_fp32"] == pytest.approx(base["ms_per_frame"] / r["ms_per_frame"])
    assert capsys.readouterr().out.startswith("| resolution |")


def test_bench_model_times_streamdets_torch_backend(tmp_path, quick_argv):
    """The PyTorch backend's rows: timed beside ONNX Runtime, with the same embeddings."""
    out = tmp_path / "model.json"
    argv = [*quick_argv, "--backends", "onnxruntime,streamdet-torch", "--precisions", "fp32,fp16"]
    assert bench_model.main([*argv, "--prompts", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["results"]
    ours = [r for r in rows if r["backend"] == "streamdet-torch"]
    assert {r["precision"] for r in ours} == {"fp32"}  # fp16 is the GPU's (refused on the CPU)
    assert len(ours) == 2 and all(r["cosine_vs_fp32"] > 0.9999 for r in ours)
    assert all(r["ms_per_frame"] > 0 and r["vs_onnxruntime_fp32"] > 0 for r in ours)


def test_bench_reference_times_the_torch_backend_beside_onnx_runtime(tmp_path, quick_argv):
    out = tmp_path / "ref.json"
    argv = [*quick_argv, "--sample-windows", "2", "--prompts", "1", "--repeats", "1"]
    assert bench_reference.main([*argv, "--backends", "onnxruntime,torch", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["settings"]["backends"] == ["onnxruntime", "torch"]
    ratio = report["ratios"]["1"]
    assert {"streamdet", "streamdet-torch"} <= set(ratio)  # each against the write-up's way
    assert ratio["streamdet-torch_vs_torch_batch"] > 0
    assert bench_reference.streamdet_ways(["fp32", "int8", "fp16"], ["torch"], "cpu") == [
        ("torch", "fp32")
    ]
    assert bench_reference.streamdet_ways(["fp32", "fp16"], ["onnxruntime", "torch"], "cuda") == [
        ("onnxruntime", "fp32"),
        ("onnxruntime", "fp16"),
        ("torch", "fp32"),
        ("torch", "fp16"),
    ]
