"""resolve_model: exported folders, HF folders exported once, built-ins and hub ids offline."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import streamdet
from streamdet.clip import hub
from streamdet.clip.hub import BUILTIN_MODELS, hf_source_folder, resolve_model
from streamdet.clip.meta import load_meta
from streamdet.errors import ModelFormatError, ModelNotFoundError, ModelUnavailableError

REPO_ID = "someone/tiny-clip"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def count_exports(monkeypatch) -> list[Path]:
    """Record every export resolve_model starts (the real export still runs)."""
    calls: list[Path] = []
    real = hub.export_model

    def counting(source, out_dir, **kwargs):
        calls.append(Path(source))
        return real(source, out_dir, **kwargs)

    monkeypatch.setattr(hub, "export_model", counting)
    return calls


@pytest.fixture
def offline_hf_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def test_exported_folder_is_returned_as_is(tiny_model_dir: Path, tmp_path, count_exports) -> None:
    assert resolve_model(tiny_model_dir, cache_dir=tmp_path) == tiny_model_dir.resolve()
    assert resolve_model(str(tiny_model_dir), cache_dir=tmp_path) == tiny_model_dir.resolve()
    assert count_exports == []


def test_hf_folder_is_exported_once_then_reused(tiny_hf_dir, tmp_path, count_exports) -> None:
    source = tmp_path / "hf"
    shutil.copytree(tiny_hf_dir, source)
    cache = tmp_path / "cache"
    first = resolve_model(source, cache_dir=cache)
    assert first.parent == cache / "exports" and len(first.name) == 16
    assert load_meta(first).source == str(source.resolve())
    mtime = (first / "meta.json").stat().st_mtime_ns
    assert resolve_model(str(source), cache_dir=cache) == first
    assert len(count_exports) == 1
    assert (first / "meta.json").stat().st_mtime_ns == mtime
    # A changed source is a different model: exported again, beside the first.
    config = json.loads((source / "preprocessor_config.json").read_text())
    config["image_mean"] = [0.5, 0.5, 0.5]
    (source / "preprocessor_config.json").write_text(json.dumps(config))
    second = resolve_model(source, cache_dir=cache)
    assert second != first and len(count_exports) == 2
    assert load_meta(second).image_mean == (0.5, 0.5, 0.5)


def test_hub_id_offline_fails_fast(tmp_path, offline_hf_home, count_exports) -> None:
    started = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="could not download 'openai/clip-vit-base-pa"):
        resolve_model("openai/clip-vit-base-patch32", cache_dir=tmp_path / "cache")
    assert time.perf_counter() - started < 5
    assert count_exports == []


def test_hub_id_unreachable_is_unavailable(tmp_path, offline_hf_home, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def unreachable(self, repo_id, **kwargs):
        assert kwargs["timeout"] == hub.HUB_TIMEOUT_S
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", unreachable)
    with pytest.raises(ModelUnavailableError, match=r"offline or unreachable.*--model instead"):
        resolve_model("openai/clip-vit-base-patch32", cache_dir=tmp_path / "cache")


def test_hub_id_in_the_hf_cache_resolves_offline(tiny_hf_dir, tmp_path, offline_hf_home) -> None:
    repo = offline_hf_home / "hub" / ("models--" + REPO_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(tiny_hf_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    folder = resolve_model(REPO_ID, cache_dir=tmp_path / "cache")
    meta = load_meta(folder)
    assert meta.source == f"hf://{REPO_ID}" and meta.embed_dim == 16


def test_nonexistent_path_lists_what_is_accepted(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model .*streamdet/scenes-clip") as info:
        resolve_model(str(tmp_path / "no" / "such" / "model"), cache_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_folder_that_is_no_model(tmp_path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ModelFormatError, match=r"neither meta\.json"):
        resolve_model(tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelFormatError, match="is a file"):
        resolve_model(tmp_path / "x.txt", cache_dir=tmp_path / "cache")


def test_builtin_names(tiny_model_dir, tmp_path, monkeypatch) -> None:
    assert "streamdet/scenes-clip" in BUILTIN_MODELS
    monkeypatch.setitem(BUILTIN_MODELS, "streamdet/scenes-clip", tmp_path / "not-installed")
    with pytest.raises(ModelNotFoundError, match="'streamdet/scenes-clip' is missing from this"):
        resolve_model("streamdet/scenes-clip", cache_dir=tmp_path)
    monkeypatch.setitem(BUILTIN_MODELS, "streamdet/test", tiny_model_dir)
    assert resolve_model("streamdet/test", cache_dir=tmp_path) == tiny_model_dir


def test_builtin_model_lives_in_the_package() -> None:
    """The built-in model is package data: found beside streamdet's modules, not in a checkout."""
    package = Path(streamdet.__file__).resolve().parent
    folder = BUILTIN_MODELS["streamdet/scenes-clip"]
    assert folder.parent.parent == package
    assert (folder / "meta.json").is_file()


def test_hf_source_folder_for_export(tiny_hf_dir, tiny_model_dir, tmp_path, offline_hf_home):
    assert hf_source_folder(tiny_hf_dir) == tiny_hf_dir.resolve()
    with pytest.raises(ModelFormatError, match=r"no config\.json"):
        hf_source_folder(tiny_model_dir)
    with pytest.raises(ModelUnavailableError):
        hf_source_folder("openai/clip-vit-base-patch32")
    with pytest.raises(ModelNotFoundError):
        hf_source_folder(str(tmp_path / "missing" / "deeper" / "folder"))
    repo = offline_hf_home / "hub" / ("models--" + REPO_ID.replace("/", "--"))
    shutil.copytree(tiny_hf_dir, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    assert (hf_source_folder(REPO_ID) / "config.json").is_file()
