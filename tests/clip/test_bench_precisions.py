"""The speed benchmarks' precision rows (int8, fp16, fused) in --quick mode on the tiny model.

Nothing here asserts a speed: only that the rows exist, agree with fp32 and that the best way and
the ratios follow from the measured milliseconds.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")


def test_best_streamdet_and_ratios_follow_from_the_ms(load_benchmark):
    ref = load_benchmark("bench_reference")
    way = ref.WayResult
    results = [
        way("writeup", 1, 1200.0, "extrapolated", (), {}),
        way("torch-batch", 1, 600.0, "whole frames", (), {}),
        way("streamdet", 1, 400.0, "whole frames", (), {}),
        way("streamdet-int8", 1, 150.0, "whole frames", (), {}),
    ]
    r = ref.ratios(results)["1"]
    assert r["streamdet-int8"] == 8.0 and r["streamdet-int8_vs_torch_batch"] == 4.0
    assert r["streamdet_vs_torch_batch"] == 1.5
    best = ref.best_streamdet(results)["1"]
    assert best == {
        "way": "streamdet-int8",
        "ms_per_frame": 150.0,
        "vs_writeup": 8.0,
        "vs_torch_batch": 4.0,
    }


def test_bench_reference_quick_with_int8(tiny_hf_dir, tmp_path, capsys, load_benchmark):
    ref = load_benchmark("bench_reference")
    out = tmp_path / "ref.json"
    argv = ["--quick", "--source", str(tiny_hf_dir), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--sample-windows", "2", "--prompts", "1", "--precisions", "fp32,int8"]
    assert ref.main([*argv, "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["settings"]["precisions"] == ["fp32", "int8"]
    ms = {r["way"]: r["ms_per_frame"] for r in report["results"]}
    assert set(ms) == {"writeup", "torch-batch", "streamdet", "streamdet-int8"}
    ratio = report["ratios"]["1"]
    assert ratio["streamdet-int8"] == pytest.approx(ms["writeup"] / ms["streamdet-int8"])
    assert ratio["streamdet-int8_vs_torch_batch"] == pytest.approx(
        ms["torch-batch"] / ms["streamdet-int8"]
    )
    best = report["best_streamdet"]["1"]
    assert best["way"] == min(("streamdet", "streamdet-int8"), key=ms.__getitem__)
    assert "best streamdet way, 1 prompt(s)" in capsys.readouterr().out
    graphs = tmp_path / "cache" / "streamdet" / "graphs"
    # made once, cached with the benchmark's models; reference scoring needs no tokens, so only
    # the graph pruned to its embeddings is built
    assert len(list(graphs.rglob("image-int8-embeddings.onnx"))) == 1
    assert list(graphs.rglob("image-int8.onnx")) == []


def test_bench_model_quick_precisions(tiny_hf_dir, tmp_path, load_benchmark):
    bench = load_benchmark("bench_model")
    out = tmp_path / "model.json"
    argv = ["--quick", "--source", str(tiny_hf_dir), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--resolutions", "64x48", "--prompts", "1", "--repeats", "1"]
    argv += ["--precisions", "fp32,int8,fp16", "--fused", "--overhang", "--spin"]
    argv += ["--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = {(r["backend"], r["precision"]): r for r in report["results"]}
    expected = {("onnxruntime", p) for p in ("fp32", "int8", "fp16", "fp32-fused")}
    expected |= {("onnxruntime-spin", p) for p in ("fp32", "int8", "fp16")}
    expected |= {("torch", p) for p in ("fp32", "int8", "fp16")}
    assert set(rows) == expected
    assert report["settings"]["cosine_reference"] == "onnxruntime fp32"
    assert report["settings"]["overhang"] is True
    for key, row in rows.items():
        if key == ("onnxruntime", "fp32"):
            assert row["cosine_vs_fp32"] is None and row["vs_onnxruntime_fp32"] == 1.0
        else:
            assert row["cosine_vs_fp32"] > 0.99, key
