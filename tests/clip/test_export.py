"""Export: parity with PyTorch, the NHWC/BGR input contract, fp16, and safe publishing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from streamdet.clip import parity as parity_module
from streamdet.clip import towers as towers_module
from streamdet.clip.export import export_model
from streamdet.clip.files import sha256_file
from streamdet.clip.meta import load_meta
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.clip.parity import FP16_TOLERANCE, FP32_TOLERANCE
from streamdet.errors import (
    ConfigError,
    ExportError,
    MissingDependencyError,
    ModelFormatError,
    ModelNotFoundError,
    OutputExistsError,
    ParityError,
    PromptError,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def torch_model(tiny_hf_dir: Path):
    return transformers.CLIPModel.from_pretrained(tiny_hf_dir).eval()


def _torch_image_embeddings(model, rgb_nhwc_0_255: np.ndarray, meta) -> np.ndarray:
    """CLIP image embeddings computed the textbook way: RGB, /255, mean/std, NCHW."""
    mean = np.asarray(meta.image_mean, np.float32)
    std = np.asarray(meta.image_std, np.float32)
    x = (rgb_nhwc_0_255 / 255.0 - mean) / std  # (N, S, S, 3)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))  # (N, 3, S, S)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=x)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out).numpy()


def _torch_text_embeddings(model, tokenizer_dir: Path, prompts: list[str]) -> np.ndarray:
    tok = transformers.CLIPTokenizerFast.from_pretrained(tokenizer_dir)
    batch = tok(prompts, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(**batch)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out).numpy()


def test_meta_records_parity_within_tolerance(tiny_model_dir: Path) -> None:
    data = json.loads((tiny_model_dir / "meta.json").read_text())
    assert data["parity"]["tolerance"] == FP32_TOLERANCE
    assert 0 <= data["parity"]["image_max_abs_diff"] <= FP32_TOLERANCE
    assert 0 <= data["parity"]["text_max_abs_diff"] <= FP32_TOLERANCE
    assert data["precision"] == "fp32"
    assert data["embed_dim"] == 16 and data["image_size"] == 32 and data["context_length"] == 77
    assert data["pad_id"] == 49407
    assert data["input_layout"] == "NHWC BGR float32 0-255"
    assert set(data["files"]) >= {
        "image.onnx",
        "text.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert "special_tokens_map.json" in data["files"]
    assert len(data["background_prompts"]) >= 3


def test_onnx_matches_pytorch_and_treats_input_as_bgr(tiny_model_dir: Path, torch_model) -> None:
    encoders = OrtEncoders(tiny_model_dir)
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    expected = _torch_image_embeddings(torch_model, rgb, encoders.meta)
    got = encoders.encode_images(rgb[..., ::-1].copy())  # the BGR copy of the RGB images
    assert got.shape == (4, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=FP32_TOLERANCE)
    # Feeding RGB as if it were BGR must give something else: the channel order matters.
    assert np.abs(encoders.encode_images(rgb) - expected).max() > 1e-3


def test_logit_scale_is_exponentiated(tiny_model_dir: Path, torch_model) -> None:
    meta = load_meta(tiny_model_dir)
    assert meta.logit_scale == pytest.approx(
        float(torch_model.logit_scale.detach().exp()), rel=1e-6
    )


def test_text_embeddings_match_pytorch(tiny_model_dir: Path, torch_model, tiny_hf_dir) -> None:
    prompts = ["a photo of a cat", "  A   red CAR, at night!  ", "dog"]
    got = OrtEncoders(tiny_model_dir).encode_texts(prompts)
    expected = _torch_text_embeddings(torch_model, tiny_hf_dir, prompts)
    np.testing.assert_allclose(got, expected, atol=FP32_TOLERANCE)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_fp16_export_passes_its_tolerance(tiny_hf_dir: Path, tmp_path: Path, torch_model) -> None:
    # export_model itself refuses an export past the tolerance; the check here is independent:
    # the published graphs against transformers' textbook path, on other inputs.
    report = export_model(tiny_hf_dir, tmp_path / "fp16", fp16=True)
    assert report.precision == "fp16" and report.tolerance == FP16_TOLERANCE
    encoders = OrtEncoders(report.out_dir)
    assert encoders.meta.precision == "fp16"
    rgb = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    got = encoders.encode_images(rgb[..., ::-1].copy())
    assert got.dtype == np.float32
    expected = _torch_image_embeddings(torch_model, rgb, encoders.meta)
    np.testing.assert_allclose(got, expected, atol=FP16_TOLERANCE)
    prompts = ["a red car", "a photo of a dog at night"]
    expected_texts = _torch_text_embeddings(torch_model, tiny_hf_dir, prompts)
    np.testing.assert_allclose(encoders.encode_texts(prompts), expected_texts, atol=FP16_TOLERANCE)


def test_patch_embedding_is_one_matmul_on_raw_pixels(tiny_model_dir: Path, torch_model) -> None:
    """The exported graph cuts patches from the NHWC input and embeds them with a MatMul (which
    int8 quantisation covers), with the normalisation folded in: no Conv, no per-pixel scaling."""
    import onnx

    graph = onnx.load(str(tiny_model_dir / "image.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert "Conv" not in ops and "MatMul" in ops
    first = [node for node in graph.node if "pixels" in node.input]
    assert [node.op_type for node in first] == ["Reshape"]  # straight into the patch cut
    # The folded module gives transformers' embeddings of the normalised RGB NCHW image.
    meta = load_meta(tiny_model_dir)
    vision = torch_model.vision_model
    folded = towers_module.folded_embeddings(
        torch, vision, list(meta.image_mean), list(meta.image_std)
    )
    bgr = np.random.default_rng(5).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    rgb = bgr[..., ::-1]
    x = (rgb / 255.0 - np.asarray(meta.image_mean)) / np.asarray(meta.image_std)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    with torch.no_grad():
        expected = vision.embeddings(x).numpy()
        got = folded(torch.from_numpy(bgr)).numpy()
    assert got.shape == expected.shape == (3, 1 + 16, 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_wrong_fold_is_caught_by_parity(tiny_hf_dir, tmp_path, monkeypatch) -> None:
    """Parity compares the exported graph with transformers' own path, not with the folded
    module it was traced from, so a mistake in the folding cannot be published."""
    fold = towers_module.folded_embeddings

    def swapped_channels(torch_, vision, mean, std):
        return fold(torch_, vision, mean[::-1], std[::-1])

    monkeypatch.setattr(towers_module, "folded_embeddings", swapped_channels)
    out = tmp_path / "out"
    with pytest.raises(ParityError, match="image graph differs"):
        export_model(tiny_hf_dir, out)
    assert not out.exists()


def test_failed_parity_leaves_no_folder(tiny_hf_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(parity_module, "measure", lambda *args: (0.5, 0.0))
    out = tmp_path / "out"
    with pytest.raises(ParityError, match=r"image graph .* 0\.5 .* tolerance 0\.0001"):
        export_model(tiny_hf_dir, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind either


def test_refuses_to_overwrite_a_folder_that_is_not_an_export(tiny_hf_dir, tmp_path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a streamdet export"):
        export_model(tiny_hf_dir, mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_existing_export_needs_overwrite_then_is_replaced(tiny_hf_dir, tmp_path) -> None:
    out = tmp_path / "out"
    export_model(tiny_hf_dir, out)
    with pytest.raises(OutputExistsError, match="overwrite"):
        export_model(tiny_hf_dir, out)
    (out / "stale.txt").write_text("old")
    report = export_model(tiny_hf_dir, out, overwrite=True)
    assert report.out_dir == out.resolve()
    assert not (out / "stale.txt").exists()
    load_meta(out)  # complete and verified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_export_into_the_hf_folder_itself_keeps_its_files(tiny_hf_dir, tmp_path) -> None:
    folder = tmp_path / "scenes-clip"
    shutil.copytree(tiny_hf_dir, folder)
    (folder / "README.md").write_text("model card")
    (folder / "streamdet.json").write_text(
        json.dumps({"background_prompts": ["an empty table"], "threshold": 0.4})
    )
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    export_model(folder, folder, overwrite=True)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(after) == set(before) | {"image.onnx", "text.onnx", "frame-naclip.onnx", "meta.json"}
    assert all(after[name] == content for name, content in before.items())
    meta = load_meta(folder)
    assert meta.background_prompts == ("an empty table",)
    assert meta.defaults == {"threshold": 0.4}
    assert "model.safetensors" in meta.files and "README.md" in meta.files
    # A second in-place export replaces its own files and still keeps the rest.
    export_model(folder, folder, overwrite=True)
    assert set(p.name for p in folder.iterdir()) == set(after)
    load_meta(folder)


def test_inplace_export_without_overwrite_refuses_a_second_time(tiny_hf_dir, tmp_path) -> None:
    folder = tmp_path / "hf"
    shutil.copytree(tiny_hf_dir, folder)
    export_model(folder, folder)
    with pytest.raises(OutputExistsError, match="overwrite"):
        export_model(folder, folder)


def test_fp16_weights_in_the_source_are_exported_in_fp32(tiny_hf_dir, tmp_path) -> None:
    half = tmp_path / "half"
    transformers.CLIPModel.from_pretrained(tiny_hf_dir).half().save_pretrained(half)
    for p in tiny_hf_dir.iterdir():
        if p.suffix in {".json", ".txt"} and p.name != "config.json":
            shutil.copyfile(p, half / p.name)
    report = export_model(half, tmp_path / "out")
    assert report.precision == "fp32"
    import onnx

    graph = onnx.load(str(report.out_dir / "image.onnx")).graph
    weights = [w for w in graph.initializer if len(w.dims) == 2]  # the MatMul weights
    assert weights and {w.data_type for w in weights} == {onnx.TensorProto.FLOAT}
    # the graph computes what the half weights give in fp32
    upcast = transformers.CLIPModel.from_pretrained(half).float().eval()
    encoders = OrtEncoders(report.out_dir)
    rgb = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    expected = _torch_image_embeddings(upcast, rgb, encoders.meta)
    np.testing.assert_allclose(
        encoders.encode_images(rgb[..., ::-1].copy()), expected, atol=FP32_TOLERANCE
    )


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: d / "missing", ModelNotFoundError, "does not exist"),
        (lambda d: (d / "f.txt").write_text("x") and d / "f.txt", ModelFormatError, "is a file"),
        (lambda d: d, ModelFormatError, "no config.json"),
    ],
)
def test_bad_sources_raise_one_line_errors(tmp_path, make, error, match) -> None:
    with pytest.raises(error, match=match) as info:
        export_model(make(tmp_path), tmp_path / "out")
    assert "\n" not in str(info.value)


def test_malformed_config_and_missing_weights(tiny_hf_dir, tmp_path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        export_model(bad, tmp_path / "out")
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFormatError, match="'bert'"):
        export_model(bad, tmp_path / "out")
    shutil.copyfile(tiny_hf_dir / "config.json", bad / "config.json")
    with pytest.raises(ModelFormatError, match="no weights"):
        export_model(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_negative_tolerance_is_refused(tiny_hf_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match="tolerance"):
        export_model(tiny_hf_dir, tmp_path / "out", tolerance=-1.0)


def test_missing_torch_or_transformers_names_the_extra(tiny_hf_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'streamdet\[export\]'"):
        export_model(tiny_hf_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_replacing_a_folder_that_contains_the_source_is_refused(tiny_hf_dir, tmp_path) -> None:
    out = tmp_path / "out"
    export_model(tiny_hf_dir, out)
    source = out / "hf"
    shutil.copytree(tiny_hf_dir, source)
    with pytest.raises(ExportError, match="would delete the source"):
        export_model(source, out, overwrite=True)
    assert (source / "model.safetensors").is_file()


def test_short_context_model_exports_and_tokenizes(tiny_hf_dir, tmp_path) -> None:
    # A small trained model may read fewer than 77 tokens: export, pad and refuse to match.
    source = tmp_path / "short"
    config = transformers.CLIPConfig.from_pretrained(tiny_hf_dir)
    config.text_config.max_position_embeddings = 16
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(source)
    for path in tiny_hf_dir.iterdir():
        if path.suffix in {".json", ".txt"} and path.name != "config.json":
            shutil.copyfile(path, source / path.name)
    report = export_model(source, tmp_path / "out")
    encoders = OrtEncoders(report.out_dir)
    assert encoders.meta.context_length == 16
    got = encoders.encode_texts(["a red square", "a dog"])
    tok = transformers.CLIPTokenizerFast.from_pretrained(source)
    batch = tok(["a red square", "a dog"], padding="max_length", max_length=16, return_tensors="pt")
    with torch.no_grad():
        out = transformers.CLIPModel.from_pretrained(source).eval().get_text_features(**batch)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        expected = torch.nn.functional.normalize(out).numpy()
    assert got.shape == (2, 16)
    np.testing.assert_allclose(got, expected, atol=FP32_TOLERANCE)
    with pytest.raises(PromptError, match="is 17 tokens; the model reads at most 16"):
        encoders.tokenize([" ".join(["cat"] * 15)])


def _torch_dense_tokens(model, rgb_nhwc_0_255: np.ndarray, meta) -> np.ndarray:
    """Patch tokens written out by hand: the last layer re-run with key-key attention, no
    residual and no MLP, then the final layer norm, the projection and L2 normalisation."""
    mean = np.asarray(meta.image_mean, np.float32)
    std = np.asarray(meta.image_std, np.float32)
    x = (rgb_nhwc_0_255 / 255.0 - mean) / std
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))
    vision = model.vision_model
    with torch.no_grad():
        h = vision.pre_layrnorm(vision.embeddings(x))
        for layer in vision.encoder.layers[:-1]:
            out = layer(h, None)
            h = out[0] if isinstance(out, tuple) else out
        last = vision.encoder.layers[-1]
        a = last.self_attn
        y = last.layer_norm1(h)
        n, t, width = y.shape
        d = width // a.num_heads
        k = a.k_proj(y).view(n, t, a.num_heads, d).transpose(1, 2)
        v = a.v_proj(y).view(n, t, a.num_heads, d).transpose(1, 2)
        w = torch.softmax(k @ k.transpose(-1, -2) / d**0.5, dim=-1)
        o = a.out_proj((w @ v).transpose(1, 2).reshape(n, t, width))[:, 1:]
        tokens = model.visual_projection(vision.post_layernorm(o))
        return torch.nn.functional.normalize(tokens, dim=-1).numpy()


def test_image_graph_also_gives_patch_tokens(tiny_model_dir: Path, torch_model) -> None:
    """One run gives the window embedding (as before) and one embedding per patch."""
    encoders = OrtEncoders(tiny_model_dir)
    meta = load_meta(tiny_model_dir)
    rgb = np.random.default_rng(3).integers(0, 256, (2, meta.image_size, meta.image_size, 3))
    rgb = rgb.astype(np.float32)
    assert encoders.has_tokens
    emb, tokens = encoders.encode_images_dense(rgb[..., ::-1].copy())  # the graph takes BGR
    side = meta.image_size // torch_model.config.vision_config.patch_size
    assert tokens.shape == (2, side, side, meta.embed_dim)
    np.testing.assert_allclose(emb, encoders.encode_images(rgb[..., ::-1].copy()), atol=1e-6)
    np.testing.assert_allclose(emb, _torch_image_embeddings(torch_model, rgb, meta), atol=1e-4)
    expected = _torch_dense_tokens(torch_model, rgb, meta).reshape(tokens.shape)
    np.testing.assert_allclose(tokens, expected, atol=1e-4)
    # patches differ from each other and from the window embedding
    assert np.abs(tokens[0, 0, 0] - tokens[0, -1, -1]).max() > 1e-3
    empty_emb, empty_tokens = encoders.encode_images_dense(
        np.zeros((0, *rgb.shape[1:]), np.float32)
    )
    assert empty_emb.shape == (0, meta.embed_dim) and empty_tokens.shape == (0, *tokens.shape[1:])


def test_an_export_without_tokens_still_loads_and_says_what_to_do(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Exports made before the tokens output keep working for window scores."""
    import onnx

    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    graph = onnx.load(str(old / "image.onnx"))
    del graph.graph.output[1]  # as exported before: the window embedding only
    onnx.save(graph, str(old / "image.onnx"))
    meta = json.loads((old / "meta.json").read_text())
    meta["files"]["image.onnx"] = sha256_file(old / "image.onnx")
    del meta["image_outputs"]  # written by exporters since; older exports lack it
    (old / "meta.json").write_text(json.dumps(meta))
    encoders = OrtEncoders(old)
    assert not encoders.has_tokens
    size = encoders.image_size
    assert encoders.encode_images(np.zeros((1, size, size, 3), np.float32)).shape == (1, 16)
    with pytest.raises(ModelFormatError, match="export the model again"):
        encoders.encode_images_dense(np.zeros((1, size, size, 3), np.float32))


#: The torch release that traced the built-in model's shipped graphs (the README's pinned CPU
#: build); another release may write equivalent graphs with different bytes.
BUILTIN_TRACED_WITH = "2.13.0"


def test_re_exporting_the_built_in_model_reproduces_its_shipped_files(tmp_path) -> None:
    """The exporter still writes, byte for byte, the graphs and tokenizer files the built-in
    model ships (a refactoring of the exporter or the towers must not change them)."""
    from streamdet.clip.hub import BUILTIN_MODELS

    folder = BUILTIN_MODELS["streamdet/scenes-clip"]
    if not (folder / "model.safetensors").is_file() or not (folder / "meta.json").is_file():
        pytest.skip(f"the built-in model's weights and export are not in {folder}")
    if torch.__version__.split("+")[0] != BUILTIN_TRACED_WITH:
        pytest.skip(f"the built-in graphs were traced with torch {BUILTIN_TRACED_WITH}")
    shipped = load_meta(folder)
    report = export_model(folder, tmp_path / "again", source_name="streamdet/scenes-clip")
    again = load_meta(report.out_dir)
    written = {p.name for p in report.out_dir.iterdir() if p.name != "meta.json"}
    assert {"image.onnx", "text.onnx", "tokenizer.json"} <= written
    assert {name: sha256_file(report.out_dir / name) for name in written} == {
        name: shipped.files[name] for name in written
    }
    assert (again.image_outputs, again.logit_scale, again.defaults) == (
        shipped.image_outputs,
        shipped.logit_scale,
        shipped.defaults,
    )
