"""load_meta: a damaged or hand-edited export is caught with a one-line ModelFormatError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from streamdet.clip.meta import load_meta
from streamdet.errors import ModelFormatError, ModelNotFoundError


@pytest.fixture
def export_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _edit_meta(folder: Path, **changes) -> None:
    data = json.loads((folder / "meta.json").read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    (folder / "meta.json").write_text(json.dumps(data))


def test_fields(tiny_model_dir: Path) -> None:
    meta = load_meta(tiny_model_dir)
    assert meta.folder == tiny_model_dir.resolve()
    assert meta.image_size == 32 and meta.embed_dim == 16 and meta.context_length == 77
    assert meta.precision == "fp32" and len(meta.checksum) == 64
    assert isinstance(meta.background_prompts, tuple) and meta.defaults == {}
    assert meta.image_outputs == ("embeddings", "tokens")  # written by the exporter
    assert meta.image_mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    hash(meta)  # frozen and hashable despite its mapping fields


def test_checksum_is_stable_and_content_based(tiny_model_dir: Path, export_copy: Path) -> None:
    assert load_meta(export_copy).checksum == load_meta(tiny_model_dir).checksum


def test_bad_json(export_copy: Path) -> None:
    (export_copy / "meta.json").write_text("{oops")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_meta(export_copy)


@pytest.mark.parametrize("key", ["embed_dim", "files", "image_mean", "logit_scale"])
def test_missing_key_is_named(export_copy: Path, key: str) -> None:
    _edit_meta(export_copy, **{key: None})
    with pytest.raises(ModelFormatError, match=f"lacks the key '{key}'") as info:
        load_meta(export_copy)
    assert str(export_copy) in str(info.value)


def test_wrong_types_and_values(export_copy: Path) -> None:
    _edit_meta(export_copy, embed_dim="16")
    with pytest.raises(ModelFormatError, match="'embed_dim' must be int, but got str"):
        load_meta(export_copy)
    _edit_meta(export_copy, embed_dim=16, format="something-else")
    with pytest.raises(ModelFormatError, match="format must be"):
        load_meta(export_copy)
    _edit_meta(export_copy, format="streamdet-clip-onnx", format_version=99)
    with pytest.raises(ModelFormatError, match="upgrade streamdet"):
        load_meta(export_copy)


@pytest.mark.parametrize("outputs", ["embeddings", ["tokens"], ["embeddings", 3]])
def test_malformed_image_outputs(export_copy: Path, outputs) -> None:
    _edit_meta(export_copy, image_outputs=outputs)
    with pytest.raises(ModelFormatError, match="'image_outputs' must be a list of output names"):
        load_meta(export_copy)


def test_checksum_mismatch(export_copy: Path) -> None:
    with open(export_copy / "text.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelFormatError, match=r"text\.onnx does not match .* re-export"):
        load_meta(export_copy)
    load_meta(export_copy, verify=False)  # presence is still checked, content is not


def test_listed_file_missing(export_copy: Path) -> None:
    (export_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelFormatError, match=r"lacks tokenizer\.json"):
        load_meta(export_copy, verify=False)


def test_missing_meta_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"has no meta\.json"):
        load_meta(tmp_path)
    with pytest.raises(ModelNotFoundError):
        load_meta(tmp_path / "nope")
