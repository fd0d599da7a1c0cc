"""OrtEncoders: batching, tokenisation identical to transformers, devices and fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from streamdet.clip.meta import load_meta
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.errors import ConfigError, FrameError, FrameTypeError, PromptError, ProviderError

PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT",
    "  a   red car,parked   outside!! ",
    "don't stop: the café's 3 dogs (and 12.5 cats)",
    "x",
    "a\tcat\non a mat",
]


@pytest.fixture(scope="module")
def encoders(tiny_model_dir: Path) -> OrtEncoders:
    return OrtEncoders(tiny_model_dir, threads=1)


def test_attributes(encoders: OrtEncoders) -> None:
    assert encoders.provider == "CPUExecutionProvider"
    assert (encoders.image_size, encoders.embed_dim) == (32, 16)
    assert encoders.logit_scale == encoders.meta.logit_scale > 0
    assert encoders.max_batch == 32
    assert encoders.precision == "fp32" and encoders.image_path == encoders.meta.image_path


@pytest.mark.parametrize("n", [1, 5])
def test_dynamic_batch_sizes_agree_with_single_images(encoders: OrtEncoders, n: int) -> None:
    pixels = np.random.default_rng(n).uniform(0, 255, (n, 32, 32, 3)).astype(np.float32)
    batch = encoders.encode_images(pixels)
    assert batch.shape == (n, 16) and batch.dtype == np.float32
    singles = np.concatenate([encoders.encode_images(pixels[i : i + 1]) for i in range(n)])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_large_batches_are_split(tiny_model_dir: Path) -> None:
    small = OrtEncoders(tiny_model_dir, max_batch=2, threads=1)
    pixels = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    whole = OrtEncoders(tiny_model_dir, threads=1).encode_images(pixels)
    np.testing.assert_allclose(small.encode_images(pixels), whole, atol=1e-5)
    texts = small.encode_texts(PROMPTS)
    assert texts.shape == (len(PROMPTS), 16)


def test_uint8_and_empty_inputs(encoders: OrtEncoders) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(
        encoders.encode_images(pixels), encoders.encode_images(pixels.astype(np.float32)), atol=1e-6
    )
    assert encoders.encode_images(np.zeros((0, 32, 32, 3), np.float32)).shape == (0, 16)
    assert encoders.encode_texts([]).shape == (0, 16)


def test_wrong_pixels_are_refused(encoders: OrtEncoders) -> None:
    with pytest.raises(FrameError, match=r"\(N, 32, 32, 3\).*\(2, 3, 32, 32\)"):
        encoders.encode_images(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(FrameTypeError, match="numpy array"):
        encoders.encode_images([[0.0]])  # type: ignore[arg-type]


def test_token_ids_equal_transformers(encoders: OrtEncoders, clip_tokenizer_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.CLIPTokenizerFast.from_pretrained(clip_tokenizer_dir)
    expected = reference(PROMPTS, padding="max_length", max_length=77, return_tensors="np")
    ids, mask = encoders.tokenize(PROMPTS)
    assert ids.dtype == np.int64 and mask.dtype == np.int64 and ids.shape == (len(PROMPTS), 77)
    np.testing.assert_array_equal(ids, expected["input_ids"])
    np.testing.assert_array_equal(mask, expected["attention_mask"])
    # openai/clip-vit-base-patch32's ids for "a photo of a cat"
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert (ids[0, 7:] == encoders.meta.pad_id).all()


def test_shipped_tokenizer_is_vit_b32s(clip_tokenizer_dir: Path, shared_clip_dir: Path) -> None:
    """The tiny models take their tokenizer from the built-in model: the ViT-B/32 files, byte for
    byte (the processor config differs only in its image size)."""
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (clip_tokenizer_dir / name).read_bytes() == (shared_clip_dir / name).read_bytes()


def test_case_and_spacing_do_not_change_the_prompt(encoders: OrtEncoders) -> None:
    ids, _ = encoders.tokenize(["a photo of a cat", "  A   PHOTO of a Cat "])
    np.testing.assert_array_equal(ids[0], ids[1])


def test_over_long_prompt_is_refused(encoders: OrtEncoders) -> None:
    long = " ".join(["cat"] * 90)
    with pytest.raises(PromptError, match=r"is 92 tokens; the model reads at most 77: shorten it"):
        encoders.encode_texts(["a dog", long])
    encoders.tokenize([" ".join(["cat"] * 75)])  # exactly 77 with start and end: accepted


@pytest.mark.parametrize("bad", [["   "], ["ok", 3], "a single string"])
def test_blank_or_non_string_prompts_are_refused(encoders: OrtEncoders, bad) -> None:
    with pytest.raises(PromptError):
        encoders.tokenize(bad)


def test_unknown_device_is_a_config_error(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"\['cpu', 'cuda', 'tensorrt'\].*'gpu'"):
        OrtEncoders(tiny_model_dir, device="gpu")


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA"
)
def test_cuda_without_gpu_raises_then_falls_back_when_allowed(tiny_model_dir, caplog) -> None:
    with pytest.raises(ProviderError, match="CUDA was requested but onnxruntime offers only"):
        OrtEncoders(tiny_model_dir, device="cuda")
    with pytest.raises(ProviderError, match="TensorRT was requested"):
        OrtEncoders(tiny_model_dir, device="tensorrt")
    with caplog.at_level(logging.INFO, logger="streamdet"):
        encoders = OrtEncoders(tiny_model_dir, device="cuda", allow_fallback=True)
    assert encoders.provider == "CPUExecutionProvider"
    assert encoders.encode_images(np.zeros((1, 32, 32, 3), np.float32)).shape == (1, 16)
    assert any(r.levelno == logging.WARNING and "CUDA" in r.message for r in caplog.records)
    assert any("CPUExecutionProvider" in r.message for r in caplog.records)


def test_silent_provider_fallback_is_detected(tiny_model_dir, monkeypatch) -> None:
    # onnxruntime claims CUDA, but the session cannot start it and runs on the CPU instead.
    available = [*ort.get_available_providers(), "CUDAExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    real_session = ort.InferenceSession

    def cpu_only_session(path, sess_options=None, providers=None, **kwargs):
        return real_session(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", cpu_only_session)
    with pytest.raises(ProviderError, match="fell back"):
        OrtEncoders(tiny_model_dir, device="cuda")
    encoders = OrtEncoders(tiny_model_dir, device="cuda", allow_fallback=True)
    assert encoders.provider == "CPUExecutionProvider"


def test_io_binding_path_gives_the_same_embeddings(tiny_model_dir: Path) -> None:
    # The GPU path binds inputs and outputs; bound to the CPU it must agree with session.run.
    plain = OrtEncoders(tiny_model_dir, threads=1)
    bound = OrtEncoders(tiny_model_dir, threads=1)
    bound._io_device = "cpu"
    pixels = np.random.default_rng(3).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(bound.encode_images(pixels), plain.encode_images(pixels), atol=1e-6)
    np.testing.assert_allclose(bound.encode_texts(PROMPTS), plain.encode_texts(PROMPTS), atol=1e-6)
    for got, want in zip(
        bound.encode_images_dense(pixels), plain.encode_images_dense(pixels), strict=True
    ):  # both outputs bound
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_meta_can_be_passed_in(tiny_model_dir: Path) -> None:
    meta = load_meta(tiny_model_dir)
    assert OrtEncoders(tiny_model_dir, meta=meta).meta is meta


@pytest.mark.gpu
@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(), reason="no CUDA provider"
)
def test_cuda_matches_cpu(tiny_model_dir: Path) -> None:
    pixels = np.random.default_rng(0).uniform(0, 255, (7, 32, 32, 3)).astype(np.float32)
    cpu = OrtEncoders(tiny_model_dir)
    gpu = OrtEncoders(tiny_model_dir, device="cuda")
    assert gpu.provider == "CUDAExecutionProvider"
    np.testing.assert_allclose(gpu.encode_images(pixels), cpu.encode_images(pixels), atol=1e-4)
    np.testing.assert_allclose(gpu.encode_texts(PROMPTS), cpu.encode_texts(PROMPTS), atol=1e-4)
    # windows cut on the GPU (the frame crosses once) and both outputs, against the CPU
    frame = np.random.default_rng(1).integers(0, 256, (48, 80, 3)).astype(np.float32)
    corners = np.array([[0, 0, 32, 32], [16, 8, 80, 72], [-8, -8, 24, 24]], np.float32)
    for got, want in zip(
        gpu.encode_windows(frame, corners, dense=True),
        cpu.encode_windows(frame, corners, dense=True),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, atol=1e-4)
