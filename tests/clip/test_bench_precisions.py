"""The speed benchmarks' precision and backend rows (int8, fp16, fused, torch.compile, CUDA)
in --quick mode on the tiny model.

Nothing here asserts a speed: only that the rows exist, agree with fp32 and that the best way and
the ratios follow from the measured milliseconds.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnx")

import _ways  # noqa: E402  (benchmarks/, after the skips: the scripts need torch)
import bench_model  # noqa: E402
import bench_reference  # noqa: E402


def test_best_streamdet_and_ratios_follow_from_the_ms():
    ref = bench_reference
    way = _ways.WayResult
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


def test_bench_reference_quick_with_int8(tmp_path, capsys, quick_argv):
    ref = bench_reference
    out = tmp_path / "ref.json"
    argv = [*quick_argv]
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


def test_bench_model_quick_precisions(tmp_path, quick_argv):
    bench = bench_model
    out = tmp_path / "model.json"
    argv = [*quick_argv]
    argv += ["--resolutions", "64x48", "--prompts", "1", "--repeats", "1"]
    argv += ["--precisions", "fp32,int8,fp16", "--fused", "--overhang", "--spin"]
    argv += ["--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = {(r["backend"], r["precision"]): r for r in report["results"]}
    expected = {("onnxruntime", p) for p in ("fp32", "int8", "fp16", "fp32-fused", "fp16-fused")}
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


def test_bench_model_compiled_torch_on_cpu(tmp_path, quick_argv):
    """torch.compile's tower gives the eager tower's embeddings (it needs a C compiler on CPU)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    bench = bench_model
    out = tmp_path / "model.json"
    argv = [*quick_argv]
    argv += ["--resolutions", "64x48", "--prompts", "1", "--repeats", "1", "--precisions", "fp32"]
    argv += ["--backends", "torch,torch-compile", "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    rows = {(r["backend"], r["precision"]): r for r in report["results"]}
    assert set(rows) == {("torch", "fp32"), ("torch-compile", "fp32")}
    assert report["settings"]["cosine_reference"] == "torch fp32"
    assert report["settings"]["device"] == "cpu"
    assert rows["torch-compile", "fp32"]["cosine_vs_fp32"] > 0.9999


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cuda", "--precisions", "fp32,int8"], "int8 .* CPU only"),
        (["--backends", "torch-cudagraph"], "needs --device cuda"),
        (["--cuda-graph"], "--cuda-graph needs --device cuda"),
        (["--backends", "onnxruntime,tensorflow"], "--backends must be among"),
    ],
)
def test_bench_model_refuses_what_cannot_run(capsys, extra, message):
    bench = bench_model
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", *extra])
    assert re.search(message, capsys.readouterr().err)


def test_cuda_graph_tower_needs_cuda():
    bench = bench_model
    with pytest.raises(ValueError, match="CUDA graphs need --device cuda"):
        bench.torch_tower(None, (0.5,) * 3, (0.5,) * 3, mode="cudagraph", device="cpu")


def _run_on_cuda(bench, argv: list[str], out) -> dict:
    """Benchmark module `bench` run with ``--device cuda`` and `argv`; its JSON report. Skips
    without a CUDA GPU that both torch and onnxruntime-gpu can use."""
    import onnxruntime as ort

    cuda_ort = "CUDAExecutionProvider" in ort.get_available_providers()
    if not torch.cuda.is_available() or not cuda_ort:
        pytest.skip("needs a CUDA GPU with torch and onnxruntime-gpu")
    assert bench.main([*argv, "--device", "cuda", "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.gpu
def test_bench_model_on_cuda(tmp_path, quick_argv):
    """Every GPU tower runs and agrees with ONNX Runtime fp32 on the GPU."""
    argv = [*quick_argv, "--resolutions", "64x48", "--prompts", "1", "--repeats", "1"]
    argv += ["--precisions", "fp32,fp16", "--fused", "--cuda-graph"]
    argv += ["--backends", "onnxruntime,torch,torch-compile,torch-cudagraph"]
    rows = _run_on_cuda(bench_model, argv, tmp_path / "model.json")["results"]
    assert len(rows) == 2 * 6
    assert all(r["cosine_vs_fp32"] is None or r["cosine_vs_fp32"] > 0.99 for r in rows)


def test_bench_reference_device_options(capsys):
    ref = bench_reference
    assert ref.parse_args(["--quick"]).device == "cpu"
    assert ref.parse_args(["--device", "cuda"]).precisions == ("fp32", "fp16")
    with pytest.raises(SystemExit):
        ref.parse_args(["--device", "cuda", "--precisions", "int8"])
    assert "int8 (dynamic quantisation) is CPU-only" in capsys.readouterr().err


@pytest.mark.gpu
def test_bench_reference_on_cuda(tmp_path, quick_argv):
    """All three ways run on the GPU, and the report says so."""
    argv = [*quick_argv, "--sample-windows", "2", "--prompts", "1"]
    report = _run_on_cuda(bench_reference, argv, tmp_path / "ref.json")
    assert report["settings"]["device"] == "cuda"
    ways = {r["way"] for r in report["results"]}
    assert ways == {"writeup", "torch-batch", "streamdet", "streamdet-fp16"}
