"""The one-pass frame tower: its dense heads, its position interpolation against transformers' own,
and the exported frame graph against PyTorch (any frame size, every head, cached, int8)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from streamdet.clip.frame_graph import FRAMES_DIR, frame_file, frame_graph, frame_parity  # noqa: E402
from streamdet.clip.frame_tower import dense_last_layer, frame_tower  # noqa: E402
from streamdet.clip.meta import load_meta  # noqa: E402
from streamdet.clip.ort_encoders import FRAME_SESSIONS, OrtEncoders  # noqa: E402
from streamdet.clip.towers import load_clip, normalisation  # noqa: E402
from streamdet.config import DENSE_HEADS  # noqa: E402
from streamdet.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def clip(tiny_hf_dir: Path):
    return load_clip(torch, transformers, tiny_hf_dir)


def _mean_std(folder: Path) -> tuple[list[float], list[float]]:
    config = json.loads((folder / "preprocessor_config.json").read_text())
    return list(config["image_mean"]), list(config["image_std"])


@pytest.mark.parametrize("rows, cols", [(4, 4), (3, 6), (5, 2)])
@pytest.mark.parametrize("head", DENSE_HEADS)
def test_frame_tower_matches_transformers_interpolated_positions(
    clip, tiny_hf_dir: Path, head: str, rows: int, cols: int
) -> None:
    """At any grid, the folded, interpolated frame tower equals transformers' own vision model run
    with ``interpolate_pos_encoding`` on normalised RGB, followed by the same dense last layer."""
    mean, std = _mean_std(tiny_hf_dir)
    patch = clip.config.vision_config.patch_size
    tower = frame_tower(torch, clip, mean, std, head)
    frames = torch.rand(
        2, rows * patch, cols * patch, 3, generator=torch.Generator().manual_seed(1)
    )
    frames = frames * 255.0
    scale, shift = normalisation(torch, mean, std)
    rgb = frames.permute(0, 3, 1, 2)[:, [2, 1, 0]] * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)
    with torch.no_grad():
        got = tower(frames)
        out = clip.vision_model(
            pixel_values=rgb, output_hidden_states=True, interpolate_pos_encoding=True
        )
        layer = clip.vision_model.encoder.layers[-1]
        patches = dense_last_layer(torch, layer, out.hidden_states[-2], head, (rows, cols))
        expected = torch.nn.functional.normalize(
            clip.visual_projection(clip.vision_model.post_layernorm(patches)), dim=-1
        )
    assert got.shape == (2, rows, cols, clip.config.projection_dim)
    np.testing.assert_allclose(got.reshape(2, rows * cols, -1), expected, atol=2e-5)


def test_heads_differ_in_how_tokens_mix(clip) -> None:
    """MaskCLIP's value path keeps each token to itself; the attention heads mix them; SCLIP keeps
    the residual. Perturbing one token's input shows it."""
    layer = clip.vision_model.encoder.layers[-1]
    width = clip.config.vision_config.hidden_size
    hidden = torch.randn(1, 1 + 12, width, generator=torch.Generator().manual_seed(2))
    bumped = hidden.clone()
    bumped[0, 1 + 5] += torch.randn(width, generator=torch.Generator().manual_seed(3))  # token 5
    changed = {}
    with torch.no_grad():
        for head in DENSE_HEADS:
            a = dense_last_layer(torch, layer, hidden, head, (3, 4))
            b = dense_last_layer(torch, layer, bumped, head, (3, 4))
            changed[head] = (b - a).abs().amax(dim=-1)[0] > 1e-6  # (12,) tokens that moved
    assert changed["maskclip"].tolist() == [i == 5 for i in range(12)]
    for head in ("naclip", "clearclip", "sclip"):
        assert changed[head].sum() > 1, head


def test_naclip_prefers_neighbours(clip) -> None:
    """NACLIP's Gaussian prior: with identical token contents, a token's output is pulled more by
    a bumped neighbour than by a bumped far-away token."""
    layer = clip.vision_model.encoder.layers[-1]
    width = clip.config.vision_config.hidden_size
    base = torch.randn(width, generator=torch.Generator().manual_seed(4)).repeat(1, 1 + 5 * 8, 1)
    bump = torch.randn(width, generator=torch.Generator().manual_seed(5))
    near, far = base.clone(), base.clone()
    near[0, 1 + 1] += bump  # next to token 0
    far[0, 1 + 39] += bump  # the opposite corner
    with torch.no_grad():
        ref = dense_last_layer(torch, layer, base, "naclip", (5, 8))[0, 0]
        d_near = (dense_last_layer(torch, layer, near, "naclip", (5, 8))[0, 0] - ref).norm()
        d_far = (dense_last_layer(torch, layer, far, "naclip", (5, 8))[0, 0] - ref).norm()
    assert d_near > 2 * d_far


def test_export_writes_the_frame_graph_and_it_matches_pytorch(
    clip, tiny_hf_dir: Path, tiny_model_dir: Path
) -> None:
    meta = json.loads((tiny_model_dir / "meta.json").read_text())
    assert meta["frame_heads"] == [DENSE_HEADS[0]]
    path = tiny_model_dir / frame_file(DENSE_HEADS[0])
    assert meta["files"][path.name]
    assert meta["parity"]["frame_max_abs_diff"][DENSE_HEADS[0]] <= 1e-4
    mean, std = _mean_std(tiny_hf_dir)
    tower = frame_tower(torch, clip, mean, std, DENSE_HEADS[0])
    assert frame_parity(torch, tower, path, 8) <= 1e-4


def test_other_heads_are_made_from_the_weights_once_and_cached(
    tiny_hf_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    meta = load_meta(tiny_model_dir)
    cache = tmp_path / "cache"
    path = frame_graph(meta, "clearclip", "fp32", cache, lambda: tiny_hf_dir)
    assert path.is_relative_to(cache / FRAMES_DIR)
    made = path.stat().st_mtime_ns
    again = frame_graph(meta, "clearclip", "fp32", cache, lambda: None)  # cached: no weights needed
    assert again == path and path.stat().st_mtime_ns == made
    int8 = frame_graph(meta, "clearclip", "int8", cache, lambda: None)
    assert int8 != path and int8.is_file()
    # the shipped head is used as it is
    assert frame_graph(meta, DENSE_HEADS[0], "fp32", cache, lambda: None) == (
        tiny_model_dir / frame_file(DENSE_HEADS[0])
    )


def test_a_missing_head_without_weights_is_a_one_line_error(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    meta = load_meta(tiny_model_dir)
    with pytest.raises(ConfigError, match="streamdet export --dense-head sclip") as info:
        frame_graph(meta, "sclip", "fp32", tmp_path / "cache", lambda: None)
    assert "\n" not in str(info.value)


def test_encoders_run_the_frame_graph_at_any_size(tiny_model_dir: Path, tmp_path: Path) -> None:
    encoders = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1)
    patch = encoders.frame_patch(DENSE_HEADS[0])
    assert patch == 8
    rng = np.random.default_rng(0)
    for rows, cols in ((2, 3), (7, 4)):
        pixels = rng.uniform(0, 255, (1, rows * patch, cols * patch, 3)).astype(np.float32)
        tokens = encoders.encode_frame(pixels, DENSE_HEADS[0])
        assert tokens.shape == (1, rows, cols, encoders.embed_dim)
        np.testing.assert_allclose(np.linalg.norm(tokens, axis=-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="multiples of 8"):
        encoders.encode_frame(np.zeros((1, 20, 16, 3), np.float32), DENSE_HEADS[0])


def test_sessions_fixed_to_a_frame_size_equal_the_size_free_graph(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The runtime runs the frame graph with its input fixed per frame size (the position
    interpolation folded to a constant): same numbers as the graph that takes any size, one
    session per size, the oldest closed beyond FRAME_SESSIONS."""
    import onnxruntime as ort

    encoders = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1)
    head = DENSE_HEADS[0]
    path = frame_graph(encoders.meta, head, "fp32", tmp_path, lambda: None)
    free = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    sizes = [(1, 16, 40), (1, 56, 24), (2, 16, 40), (1, 32, 32), (1, 8, 8), (1, 16, 16)]
    sizes += [(1, 8, 8 * k) for k in range(3, 3 + FRAME_SESSIONS)]  # more than are kept
    distinct = [(*size, 3) for size in sizes[: FRAME_SESSIONS + 1]]
    # the first shape used again before the others push the oldest out: it stays
    shapes = [distinct[0], distinct[1], distinct[0], *distinct[2:]]
    for shape in shapes:
        pixels = rng.uniform(0, 255, shape).astype(np.float32)
        (expected,) = free.run(None, {"pixels": pixels})
        got = encoders.encode_frame(pixels, head)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert (head, shape) in encoders._frame_sessions
    assert len(encoders._frame_sessions) == FRAME_SESSIONS
    assert (head, distinct[1]) not in encoders._frame_sessions  # least recently used went first
    assert (head, distinct[0]) in encoders._frame_sessions


def test_int8_frame_graph_stays_close_to_fp32(tiny_model_dir: Path, tmp_path: Path) -> None:
    fp32 = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1)
    int8 = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1, precision="int8")
    pixels = np.random.default_rng(1).uniform(0, 255, (1, 40, 64, 3)).astype(np.float32)
    a = fp32.encode_frame(pixels, DENSE_HEADS[0])
    b = int8.encode_frame(pixels, DENSE_HEADS[0])
    cosine = (a * b).sum(-1)
    assert cosine.min() > 0.95 and not np.array_equal(a, b)


def test_a_model_folder_that_lost_its_frame_graph_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """meta.json lists the frame graph: a folder without it is damaged, not silently rebuilt."""
    from streamdet.errors import ModelFormatError

    moved = tmp_path / "moved"
    shutil.copytree(tiny_model_dir, moved)
    (moved / frame_file(DENSE_HEADS[0])).unlink()
    with pytest.raises(ModelFormatError, match=r"lacks frame-naclip\.onnx"):
        load_meta(moved)
