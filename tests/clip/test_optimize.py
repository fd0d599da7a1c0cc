"""Derived image graphs (int8, fp16, fused), their cache, thread count and session options."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from streamdet.clip import optimize
from streamdet.clip.files import sha256_file
from streamdet.clip.meta import META_FILE, load_meta
from streamdet.clip.optimize import image_graph, physical_cores, session_options
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.detect.detector import Detector
from streamdet.errors import ConfigError, MissingDependencyError

onnx = pytest.importorskip("onnx")


def _pixels(n: int = 9, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, 32, 32, 3)).astype(np.float32)


def _run(path: Path, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        str(path), session_options(1), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"pixels": pixels})[0]


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1)))


# -- threads --------------------------------------------------------------------------------------


def _fake_cpu(sysfs: Path, cpu: int, package: int, core: int) -> None:
    topology = sysfs / f"cpu{cpu}" / "topology"
    topology.mkdir(parents=True)
    (topology / "physical_package_id").write_text(f"{package}\n")
    (topology / "core_id").write_text(f"{core}\n")


def test_physical_cores_counts_hyperthreads_once(tmp_path: Path) -> None:
    sysfs, cgroup = tmp_path / "cpu", tmp_path / "cgroup"
    cgroup.mkdir()
    for cpu, (package, core) in enumerate([(0, 0), (0, 1), (0, 0), (0, 1), (1, 0), (1, 0)]):
        _fake_cpu(sysfs, cpu, package, core)
    assert physical_cores({0, 1, 2, 3, 4, 5}, sysfs=sysfs, cgroup=cgroup) == 3
    assert physical_cores({0, 2}, sysfs=sysfs, cgroup=cgroup) == 1  # two threads of one core
    assert physical_cores({1, 4}, sysfs=sysfs, cgroup=cgroup) == 2
    # Without topology each CPU counts as a core.
    assert physical_cores({0, 7, 9}, sysfs=sysfs, cgroup=cgroup) == 3


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 CPUs -> 2 threads
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, 4),  # no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
        ({}, 4),
    ],
)
def test_physical_cores_respects_the_cgroup_quota(tmp_path: Path, files, expected) -> None:
    sysfs, cgroup = tmp_path / "cpu", tmp_path / "cgroup"
    for cpu in range(4):
        _fake_cpu(sysfs, cpu, 0, cpu)
    for name, text in files.items():
        (cgroup / name).parent.mkdir(parents=True, exist_ok=True)
        (cgroup / name).write_text(text)
    cgroup.mkdir(exist_ok=True)
    assert physical_cores({0, 1, 2, 3}, sysfs=sysfs, cgroup=cgroup) == expected


def test_physical_cores_of_this_process() -> None:
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_session_options() -> None:
    options = session_options(3)
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (
        session_options(1, spin=True).get_session_config_entry("session.intra_op.allow_spinning")
        == "1"
    )
    assert session_options().intra_op_num_threads == physical_cores()


def test_encoders_use_the_physical_cores(tiny_model_dir: Path) -> None:
    assert OrtEncoders(tiny_model_dir)._threads == physical_cores()
    assert OrtEncoders(tiny_model_dir, threads=1)._threads == 1


# -- derived graphs ---------------------------------------------------------------------------


def test_fp32_is_the_export_itself(tiny_model_dir: Path, tmp_path: Path) -> None:
    meta = load_meta(tiny_model_dir)
    assert image_graph(meta, "fp32", tmp_path) == meta.image_path
    assert not (tmp_path / optimize.GRAPHS_DIR).exists()


def test_fused_graph_equals_the_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    meta = load_meta(tiny_model_dir)
    assert optimize.attention_shape(onnx.load(str(meta.image_path))) == (2, 32)
    fused = image_graph(meta, "fp32", tmp_path, fuse=True)
    ops = [n.op_type for n in onnx.load(str(fused)).graph.node]
    assert ops.count("Attention") == 2  # one per layer of the tiny model
    assert "SkipLayerNormalization" in ops and "QuickGelu" in ops
    pixels = _pixels()
    np.testing.assert_allclose(_run(fused, pixels), _run(meta.image_path, pixels), atol=1e-5)


def test_int8_is_close_to_fp32_and_cached(tiny_model_dir: Path, tmp_path: Path, monkeypatch):
    meta = load_meta(tiny_model_dir)
    path = image_graph(meta, "int8", tmp_path)
    assert path.parent == tmp_path / optimize.GRAPHS_DIR / meta.files["image.onnx"]
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == sha256_file(path) and record["precision"] == "int8"
    assert record["onnxruntime"] == ort.__version__
    pixels = _pixels()
    assert _min_cosine(_run(path, pixels), _run(meta.image_path, pixels)) > 0.999

    def no_rebuild(*args):
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr(optimize, "_quantize", no_rebuild)
    assert image_graph(meta, "int8", tmp_path) == path
    encoders = OrtEncoders(tiny_model_dir, precision="int8", cache_dir=tmp_path, threads=1)
    assert encoders.precision == "int8" and encoders.image_path == path
    assert "int8" in repr(encoders)


@pytest.mark.parametrize("precision", ["fp32", "int8", "fp16"])
def test_embeddings_only_graph_drops_the_token_branch(
    tiny_model_dir: Path, tmp_path: Path, precision: str
) -> None:
    """The pruned graph has one output, fewer nodes, and gives the full graph's embeddings."""
    meta = load_meta(tiny_model_dir)
    full = image_graph(meta, precision, tmp_path)
    pruned = image_graph(meta, precision, tmp_path, embeddings_only=True)
    assert pruned.name == f"image-{precision}-embeddings.onnx"
    full_graph, pruned_graph = onnx.load(str(full)).graph, onnx.load(str(pruned)).graph
    assert [o.name for o in full_graph.output] == ["embeddings", "tokens"]
    assert [o.name for o in pruned_graph.output] == ["embeddings"]
    # The tiny model has 2 layers; the token branch re-runs the last one's attention.
    softmax = [[n for n in g.node if n.op_type == "Softmax"] for g in (full_graph, pruned_graph)]
    assert (len(softmax[0]), len(softmax[1])) == (3, 2)
    assert len(pruned_graph.node) < len(full_graph.node)
    record = json.loads(pruned.with_suffix(".json").read_text())
    assert record["embeddings_only"] is True and optimize.RECIPES["embeddings"] in record["recipe"]
    pixels = _pixels()
    np.testing.assert_array_equal(_run(pruned, pixels), _run(full, pixels))


def test_encoders_run_the_pruned_graph_only_for_calls_without_tokens(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    encoders = OrtEncoders(tiny_model_dir, cache_dir=tmp_path, threads=1, precision="int8")
    assert encoders.has_tokens and encoders._images == {}  # meta.json says; nothing opened yet
    pixels = _pixels(5)
    plain = encoders.encode_images(pixels)
    assert set(encoders._images) == {False}  # only the pruned graph was built and opened
    folder = tmp_path / optimize.GRAPHS_DIR / load_meta(tiny_model_dir).files["image.onnx"]
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["image-int8-embeddings.onnx"]
    pruned = encoders._images[False]
    assert [o.name for o in pruned.get_outputs()] == ["embeddings"]
    embeddings, _ = encoders.encode_images_dense(pixels)
    assert set(encoders._images) == {False, True}
    np.testing.assert_array_equal(plain, embeddings)
    frame = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    corners = np.array([[0, 0, 32, 32], [16, 8, 48, 40], [40, 20, 72, 52]], np.float32)
    dense = encoders.encode_windows(frame, corners, dense=True)
    windows = encoders.encode_windows(frame, corners, dense=False)
    assert len(dense) == 2 and len(windows) == 1
    np.testing.assert_array_equal(windows[0], dense[0])
    assert encoders._images[False] is pruned  # opened once


def test_an_export_without_image_outputs_in_meta_asks_its_graph(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Exports older than meta.json's image_outputs still load: the full graph is opened to see
    whether it has tokens (and is then used for dense calls)."""
    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    data = json.loads((old / META_FILE).read_text())
    del data["image_outputs"]
    (old / META_FILE).write_text(json.dumps(data))
    assert load_meta(old).image_outputs is None
    encoders = OrtEncoders(old, cache_dir=tmp_path / "cache", threads=1)
    assert encoders.has_tokens and set(encoders._images) == {True}
    pixels = _pixels(3)
    np.testing.assert_array_equal(encoders.encode_images(pixels), _run(old / "image.onnx", pixels))


def test_damaged_or_outdated_graphs_are_rebuilt(tiny_model_dir: Path, tmp_path: Path) -> None:
    meta = load_meta(tiny_model_dir)
    path = image_graph(meta, "int8", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a damaged graph
    assert image_graph(meta, "int8", tmp_path).read_bytes() == good
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "recipe": ["something older"]}))
    image_graph(meta, "int8", tmp_path)
    assert json.loads(record_path.read_text())["recipe"] == record["recipe"]
    record_path.unlink()  # a graph without its record (e.g. killed while writing)
    image_graph(meta, "int8", tmp_path)
    assert record_path.is_file()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def _changed_export(source: Path, target: Path) -> Path:
    """A copy of an export whose image.onnx has other weights (meta.json updated to match)."""
    shutil.copytree(source, target)
    model = onnx.load(str(target / "image.onnx"))
    weight = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = onnx.numpy_helper.to_array(weight)
    array = array + np.random.default_rng(0).normal(0, array.std() + 0.1, array.shape)
    weight.CopyFrom(onnx.numpy_helper.from_array(array.astype(np.float32), weight.name))
    onnx.save(model, str(target / "image.onnx"))
    meta = json.loads((target / META_FILE).read_text())
    meta["files"]["image.onnx"] = sha256_file(target / "image.onnx")
    (target / META_FILE).write_text(json.dumps(meta))
    return target


def test_a_changed_export_gets_its_own_graph(tiny_model_dir: Path, tmp_path: Path) -> None:
    meta = load_meta(tiny_model_dir)
    changed = load_meta(_changed_export(tiny_model_dir, tmp_path / "changed"))
    cache = tmp_path / "cache"
    first, second = image_graph(meta, "int8", cache), image_graph(changed, "int8", cache)
    assert first != second and first.parent != second.parent
    pixels = _pixels()
    assert _min_cosine(_run(second, pixels), _run(changed.image_path, pixels)) > 0.999
    assert np.abs(_run(second, pixels) - _run(first, pixels)).max() > 0.01


def test_fp16_graph(tiny_model_dir: Path, tmp_path: Path) -> None:
    meta = load_meta(tiny_model_dir)
    path = image_graph(meta, "fp16", tmp_path)
    pixels = _pixels()
    assert _min_cosine(_run(path, pixels), _run(meta.image_path, pixels)) > 0.999
    fp16_export = dataclasses.replace(meta, precision="fp16")
    assert image_graph(fp16_export, "fp16", tmp_path) == meta.image_path  # as exported
    for precision in ("int8", "fp32"):
        with pytest.raises(ConfigError, match=r"exported in fp16.*needs an fp32 export"):
            image_graph(fp16_export, precision, tmp_path)


def test_bad_precisions_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"precision must be one of fp32, fp16, int8.*'int4'"):
        OrtEncoders(tiny_model_dir, precision="int4", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"int8.*CPU only"):
        OrtEncoders(tiny_model_dir, device="cuda", precision="int8", cache_dir=tmp_path)


def test_missing_onnx_package_is_explained(tiny_model_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(MissingDependencyError, match="pip install onnx"):
        image_graph(load_meta(tiny_model_dir), "int8", tmp_path)


def test_detector_with_int8(tiny_model_dir: Path, tmp_path: Path) -> None:
    frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    prompts = ["a red car", "a person"]
    kwargs = {"patch": 16, "window": 2, "cache_dir": tmp_path, "threads": 1}
    fp32 = Detector(tiny_model_dir, prompts, **kwargs)
    int8 = Detector(tiny_model_dir, prompts, precision="int8", **kwargs)
    assert int8.model.encoders.precision == "int8"
    a, b = fp32.detect(frame), int8.detect(frame)
    assert a.heatmaps.shape == b.heatmaps.shape
    assert np.abs(a.heatmaps - b.heatmaps).max() < 0.05
