"""CUDA-graph replay of the image tower: the fixed-batch graph and the runner that binds its buffers
once. Their logic runs on the CPU here (no capture); the GPU test compares capture with the plain
CUDA path and skips without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from streamdet.clip.cudagraph import FixedBatchRunner
from streamdet.clip.meta import load_meta
from streamdet.clip.optimize import image_graph, session_options
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.errors import ConfigError

pytest.importorskip("onnx")


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def _pixels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype(np.float32)


def test_fixed_batch_graph_has_static_shapes_and_the_same_outputs(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import onnx

    meta = load_meta(tiny_model_dir)
    fixed = image_graph(meta, "fp32", tmp_path, embeddings_only=True, batch=4)
    assert fixed.name == "image-fp32-embeddings-b4.onnx"
    graph = onnx.load(str(fixed)).graph
    for value in [*graph.input, *graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_value == 4
    dynamic = image_graph(meta, "fp32", tmp_path, embeddings_only=True)
    pixels = _pixels(4)
    np.testing.assert_allclose(
        _session(fixed).run(None, {"pixels": pixels})[0],
        _session(dynamic).run(None, {"pixels": pixels})[0],
        atol=1e-6,
    )
    with pytest.raises(ConfigError, match="batch must be a positive integer"):
        image_graph(meta, "fp32", tmp_path, batch=0)


@pytest.mark.parametrize("n", [1, 4, 9])
def test_runner_pads_chunks_and_keeps_its_buffers(
    tiny_model_dir: Path, tmp_path: Path, n: int
) -> None:
    meta = load_meta(tiny_model_dir)
    session = _session(image_graph(meta, "fp32", tmp_path, embeddings_only=True, batch=4))
    runner = FixedBatchRunner(session, batch=4, output="embeddings", device="cpu")
    buffers = runner.buffers
    pixels = _pixels(n, seed=n)
    expected = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1).encode_images(pixels)
    got = runner(pixels)
    assert got.shape == (n, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(runner(pixels[::-1]), expected[::-1], atol=1e-5)
    assert runner.buffers == buffers  # the same memory every run, as a CUDA graph needs


def test_runner_refuses_a_graph_without_a_fixed_batch(tiny_model_dir: Path, tmp_path: Path):
    meta = load_meta(tiny_model_dir)
    session = _session(image_graph(meta, "fp32", tmp_path, embeddings_only=True))
    with pytest.raises(ValueError, match=r"must be \(4, S, S, 3\)"):
        FixedBatchRunner(session, batch=4, output="embeddings", device="cpu")


def test_cuda_graph_needs_the_cuda_device(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="needs device 'cuda'"):
        OrtEncoders(tiny_model_dir, cuda_graph=True)


@pytest.mark.gpu
def test_cuda_graph_replay_matches_the_plain_cuda_path(tiny_model_dir: Path, tmp_path: Path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu and a CUDA GPU")
    plain = OrtEncoders(tiny_model_dir, device="cuda", cache_dir=tmp_path, max_batch=8)
    graph = OrtEncoders(
        tiny_model_dir, device="cuda", cache_dir=tmp_path, max_batch=8, cuda_graph=True
    )
    for n in (3, 8, 19):  # one chunk padded, one exact, three chunks
        pixels = _pixels(n, seed=n)
        expected = plain.encode_images(pixels)
        np.testing.assert_allclose(graph.encode_images(pixels), expected, atol=1e-4)
