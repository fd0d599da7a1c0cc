"""The PyTorch backend: the same answers as ONNX Runtime, its crops, its padded batches, its
refusals, and how a backend is chosen. Everything runs on the CPU; the CUDA-graph capture itself
is tested where a GPU is (skipped here)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamdet.clip.crops import crop_graph
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.clip.torch_crops import crop_windows
from streamdet.config import RuntimeConfig
from streamdet.detect.model import LoadedModel, choose_backend
from streamdet.errors import ConfigError, FrameError, ModelFormatError, ProviderError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

FILL = (104.0, 116.5, 122.7)
# windows inside the frame, over its edges, off the pixel grid, smaller and larger than S
BOXES = np.array(
    [
        [0, 0, 64, 64],
        [10, 5, 74, 69],
        [-20, -20, 44, 44],
        [120, 70, 184, 134],
        [3.5, 2.25, 50, 48.75],
        [0, 0, 151, 97],
        [100, 50, 132, 82],
        [-5, 40, 20, 65],
    ],
    np.float32,
)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1)


@pytest.mark.parametrize("size", [32, 64])
def test_torch_crops_equal_the_onnx_crop_graph(size: int) -> None:
    """Both backends cut the same windows: RoiAlign's bins, samples and edge padding."""
    frame = np.random.default_rng(0).integers(0, 256, (97, 151, 3)).astype(np.float32)
    loaded = ort.InferenceSession(crop_graph(size, FILL), providers=["CPUExecutionProvider"])
    expected = loaded.run(["pixels"], {"frame": frame, "boxes": BOXES})[0]
    got = crop_windows(torch, torch.from_numpy(frame), BOXES, size, FILL).numpy()
    assert got.shape == expected.shape == (len(BOXES), size, size, 3)
    assert np.abs(got - expected).max() < 0.01  # grey levels (0..255)
    # a window wholly outside the frame is the padding colour
    outside = crop_windows(
        torch, torch.from_numpy(frame), np.array([[400, 400, 464, 464]]), size, FILL
    )
    assert np.allclose(outside.numpy(), np.asarray(FILL, np.float32), atol=1e-4)


@pytest.fixture(scope="module")
def both(tiny_model_dir: Path, tiny_hf_dir: Path):
    from streamdet.clip.torch_encoders import TorchEncoders

    return OrtEncoders(tiny_model_dir), TorchEncoders(tiny_model_dir, tiny_hf_dir)


def test_torch_backend_answers_as_onnx_runtime(both) -> None:
    onnx, torch_enc = both
    assert torch_enc.provider == "torch-cpu" and torch_enc.device == "cpu" and torch_enc.has_tokens
    size = onnx.image_size
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (37, size, size, 3)).astype(np.float32)
    emb = torch_enc.encode_images(pixels)
    assert emb.shape == (37, onnx.embed_dim) and emb.dtype == np.float32
    assert _cosines(emb, onnx.encode_images(pixels)).min() > 0.9999
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    (e1, t1), (e2, t2) = torch_enc.encode_images_dense(pixels), onnx.encode_images_dense(pixels)
    assert t1.shape == t2.shape and _cosines(t1, t2).min() > 0.9999
    assert _cosines(e1, e2).min() > 0.9999
    texts = ["a red car", "x", "a person on a bike"]
    assert _cosines(torch_enc.encode_texts(texts), onnx.encode_texts(texts)).min() > 0.9999
    frame = rng.integers(0, 256, (70, 110, 3)).astype(np.uint8)
    corners = np.array([[0, 0, 32, 32], [-8, -8, 24, 24], [60, 30, 124, 94]], np.float32)
    w1, w2 = (
        torch_enc.encode_windows(frame, corners, dense=True),
        onnx.encode_windows(frame, corners, dense=True),
    )
    assert _cosines(w1[0], w2[0]).min() > 0.9999 and _cosines(w1[1], w2[1]).min() > 0.9999


def test_torch_backend_empty_and_bad_inputs_as_onnx_runtime(both) -> None:
    onnx, torch_enc = both
    size = onnx.image_size
    empty = np.zeros((0, size, size, 3), np.float32)
    assert torch_enc.encode_images(empty).shape == onnx.encode_images(empty).shape
    assert [a.shape for a in torch_enc.encode_images_dense(empty)] == [
        a.shape for a in onnx.encode_images_dense(empty)
    ]
    frame = np.zeros((40, 40, 3), np.uint8)
    assert torch_enc.encode_windows(frame, np.zeros((0, 4)))[0].shape == (0, onnx.embed_dim)
    with pytest.raises(FrameError, match=r"must have shape \(N, 32, 32, 3\)"):
        torch_enc.encode_images(np.zeros((2, 16, 16, 3), np.float32))


def test_padded_batches_pad_to_the_bucket_and_drop_the_padding() -> None:
    from streamdet.clip.torch_encoders import PaddedBatches

    calls: list[int] = []

    def fn(x):  # a per-row function, as the image tower is
        calls.append(len(x))
        return (x.sum(dim=1), x * 2)

    runner = PaddedBatches(torch, fn, bucket=16, capture=False)
    rng = np.random.default_rng(2)
    for n in (1, 16, 17, 40, 3):
        x = torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32))
        summed, doubled = runner(x)
        assert summed.shape == (n,) and doubled.shape == (n, 5)
        assert torch.allclose(summed, x.sum(dim=1)) and torch.equal(doubled, x * 2)
    assert calls == [16, 16, 32, 48, 16]  # every call ran on a padded batch
    assert runner.sizes == [16, 32, 48]  # one static buffer (one graph on a GPU) per size


def test_compile_mode_gives_the_eager_embeddings(tiny_model_dir: Path, tiny_hf_dir: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    from streamdet.clip.torch_encoders import TorchEncoders

    compiled = TorchEncoders(tiny_model_dir, tiny_hf_dir, mode="compile")
    eager = TorchEncoders(tiny_model_dir, tiny_hf_dir)
    pixels = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3)).astype(np.float32)
    assert _cosines(compiled.encode_images(pixels), eager.encode_images(pixels)).min() > 0.9999


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "int8"}, "int8 is ONNX Runtime's"),
        ({"precision": "fp16"}, "fp16 on CUDA only"),
        ({"mode": "cudagraph"}, "needs device 'cuda'"),
        ({"mode": "fast"}, "mode must be one of eager, compile, cudagraph"),
        ({"device": "tensorrt"}, "use --backend onnxruntime for TensorRT"),
        ({"max_batch": 0}, "max_batch must be a positive integer"),
    ],
)
def test_torch_backend_refuses_what_it_cannot_run(
    tiny_model_dir: Path, tiny_hf_dir: Path, kwargs: dict, message: str
) -> None:
    from streamdet.clip.torch_encoders import TorchEncoders

    with pytest.raises(ConfigError, match=message):
        TorchEncoders(tiny_model_dir, tiny_hf_dir, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_one_line_or_falls_back(
    tiny_hf_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from streamdet.clip.torch_encoders import TorchEncoders

    with pytest.raises(ProviderError, match="sees no CUDA GPU; install a CUDA build of torch"):
        TorchEncoders(tiny_hf_dir, tiny_hf_dir, device="cuda")
    with caplog.at_level(logging.WARNING, logger="streamdet"):
        loaded = LoadedModel.open(
            tiny_hf_dir,
            RuntimeConfig(
                device="cuda", backend="torch", allow_fallback=True, cache_dir=str(tmp_path)
            ),
        )
    assert isinstance(loaded.encoders, OrtEncoders) and loaded.encoders.device == "cpu"
    assert "falling back to ONNX Runtime" in caplog.text


def test_choose_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamdet.detect.model as model_module

    monkeypatch.setattr(model_module, "torch_cuda_ready", lambda: True)
    assert choose_backend("auto", "cuda") == "torch"  # the faster GPU backend on the figures
    assert choose_backend("auto", "cuda", "int8") == "onnxruntime"
    assert choose_backend("auto", "cpu") == "onnxruntime"  # ORT int8 is the CPU's fastest
    assert choose_backend("auto", "tensorrt") == "onnxruntime"
    assert choose_backend("onnxruntime", "cuda") == "onnxruntime"
    assert choose_backend("torch", "cpu") == "torch"
    monkeypatch.setattr(model_module, "torch_cuda_ready", lambda: False)
    assert choose_backend("auto", "cuda") == "onnxruntime"
    with pytest.raises(ConfigError, match="backend must be one of auto, onnxruntime, torch"):
        choose_backend("tensorflow", "cpu")


def test_session_opens_the_torch_backend_from_an_hf_folder(
    tiny_hf_dir: Path, tmp_path: Path
) -> None:
    from streamdet.clip.torch_encoders import TorchEncoders

    loaded = LoadedModel.open(tiny_hf_dir, RuntimeConfig(backend="torch", cache_dir=str(tmp_path)))
    assert isinstance(loaded.encoders, TorchEncoders)
    assert loaded.encoders.meta.folder.parent == tmp_path / "exports"  # exported once, as ever
    assert loaded.texts.embed(["a red car"]).shape == (1, loaded.encoders.embed_dim)


def test_torch_backend_finds_the_weights_an_export_was_made_from(
    tiny_hf_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export folder has no weights: the backend takes those of the folder it was made from
    while that folder is unchanged; else one line (and "auto" runs ONNX Runtime)."""
    from streamdet.clip.export import export_model
    from streamdet.clip.torch_encoders import TorchEncoders

    source = tmp_path / "hf"
    shutil.copytree(tiny_hf_dir, source)
    exported = export_model(source, tmp_path / "export").out_dir
    loaded = LoadedModel.open(
        exported, RuntimeConfig(backend="torch", cache_dir=str(tmp_path / "cache"))
    )
    assert isinstance(loaded.encoders, TorchEncoders)
    assert loaded.encoders.meta.folder == exported.resolve()

    config = source / "config.json"
    config.write_text(config.read_text() + " ")  # the source changed since the export
    with pytest.raises(ModelFormatError, match="whose source folder is gone or changed; pass"):
        LoadedModel.open(
            exported, RuntimeConfig(backend="torch", cache_dir=str(tmp_path / "cache"))
        )
    shutil.rmtree(source)
    with pytest.raises(ModelFormatError, match="whose source folder is gone or changed; pass"):
        LoadedModel.open(
            exported, RuntimeConfig(backend="torch", cache_dir=str(tmp_path / "cache"))
        )
    import streamdet.detect.model as model_module

    monkeypatch.setattr(model_module, "torch_cuda_ready", lambda: True)
    loaded = LoadedModel.open(
        exported,
        RuntimeConfig(
            device="cuda", backend="auto", allow_fallback=True, cache_dir=str(tmp_path / "cache")
        ),
    )
    assert isinstance(loaded.encoders, OrtEncoders)


def test_detector_finds_the_same_boxes_with_either_backend() -> None:
    """The built-in model on a generated street frame: same boxes, same scores."""
    from streamdet.demo import demo_frames
    from streamdet.detect.detector import Detector

    frame = demo_frames(13, 360, 640, 0)[12]
    prompts = ["a red car", "a person"]
    results = [
        Detector(prompts=prompts, backend=b, precision="fp32").detect(frame)
        for b in ("onnxruntime", "torch")
    ]
    onnx, torch_run = (r.to_records() for r in results)
    assert onnx, "the frame should have boxes"
    assert [r["label"] for r in torch_run] == [r["label"] for r in onnx]
    for a, b in zip(onnx, torch_run, strict=True):
        assert np.abs(np.subtract(a["box"], b["box"])).max() <= 1.0
        assert abs(a["score"] - b["score"]) < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graphs_give_the_cpu_embeddings(
    tiny_model_dir: Path, tiny_hf_dir: Path, precision: str
) -> None:
    from streamdet.clip.torch_encoders import GRAPH_BUCKET, TorchEncoders

    gpu = TorchEncoders(tiny_model_dir, tiny_hf_dir, device="cuda", precision=precision)
    assert gpu.mode == "cudagraph" and gpu.provider == "torch-cuda"
    cpu = OrtEncoders(tiny_model_dir)
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (70, 110, 3)).astype(np.uint8)
    corners = np.array([[0, 0, 32, 32], [-8, -8, 24, 24], [60, 30, 124, 94]], np.float32)
    floor = 0.9999 if precision == "fp32" else 0.999
    for n in (1, GRAPH_BUCKET, GRAPH_BUCKET + 3, 5):
        pixels = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.float32)
        assert _cosines(gpu.encode_images(pixels), cpu.encode_images(pixels)).min() > floor
    assert gpu._runs[False].sizes == [GRAPH_BUCKET, 2 * GRAPH_BUCKET]  # two graphs captured
    got, want = (
        gpu.encode_windows(frame, corners, dense=True),
        cpu.encode_windows(frame, corners, dense=True),
    )
    assert _cosines(got[0], want[0]).min() > floor and _cosines(got[1], want[1]).min() > floor


def test_the_onnx_runtime_path_never_imports_torch() -> None:
    """The default CPU path (backend "auto") runs without torch or transformers loaded."""
    import subprocess
    import sys

    code = (
        "import sys; from streamdet.detect.detector import Detector; "
        "d = Detector(prompts=['a red car']); d.detect(__import__('numpy').zeros((90, 160, 3), "
        "'uint8')); print(d.provider, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["CPUExecutionProvider", "False", "False"]
