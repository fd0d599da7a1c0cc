"""The speed benchmarks' model: a random-weight CLIP of ViT-B/32's shape (or the tests' tiny one),
or a given Hugging Face folder, and streamdet's export of it, both cached under
``benchmarks/.cache/``.

Random weights (``torch.manual_seed(0)``) measure speed only. The export is redone when the
exporter's code changed, so the graph measured is the one streamdet writes today.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from _common import SHARED_CLIP_DIR
from streamdet.clip import export as export_module
from streamdet.clip import towers as towers_module
from streamdet.clip.export import TOKENIZER_FILES, export_model
from streamdet.clip.files import sha256_file, source_checksum
from streamdet.clip.meta import META_FILE, is_export_folder

#: The tests' tiny CLIP shape (tests/conftest.py): 32 px images, patch 8, width 32, D=16.
TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "vocab_size": 49408,
    "max_position_embeddings": 77,
}
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}

#: In the export folder: checksum of the exporter's code that made it.
EXPORTER_STAMP = ".exporter"


def _write_preprocessor(source: Path, target: Path, size: int) -> None:
    """The processor config of `source` with its resize and crop set to `size` pixels."""
    config = json.loads((source / "preprocessor_config.json").read_text(encoding="utf-8"))
    config["size"] = {"shortest_edge": size}
    config["crop_size"] = {"height": size, "width": size}
    (target / "preprocessor_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_hf_model(target: Path, *, tiny: bool, clip_dir: Path = SHARED_CLIP_DIR) -> Path:
    """A Hugging Face CLIP folder of random weights (seed 0): ViT-B/32's shape, or the tiny one.

    Skipped when `target` already holds a saved model (the build is deterministic).
    """
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    import transformers

    if not (clip_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{clip_dir} is absent: the CLIP config and tokenizer are needed")
    torch.manual_seed(0)
    if tiny:
        config = transformers.CLIPConfig(
            text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=16
        )
    else:
        config = transformers.CLIPConfig.from_pretrained(clip_dir)
    stage = target.with_name(target.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    transformers.CLIPModel(config).eval().save_pretrained(stage)
    for name in TOKENIZER_FILES:
        if (clip_dir / name).is_file():
            shutil.copyfile(clip_dir / name, stage / name)
    _write_preprocessor(clip_dir, stage, int(config.vision_config.image_size))
    shutil.rmtree(target, ignore_errors=True)
    stage.rename(target)  # a half-written folder never looks complete
    return target


def exporter_checksum() -> str:
    """One checksum over the exporter and the towers it traces (the graph changes with either):
    a cached export made by other code is redone."""
    files = (export_module.__file__, towers_module.__file__)
    return hashlib.sha256("".join(sha256_file(Path(f)) for f in files).encode()).hexdigest()


def export_cached(hf_dir: Path, out_dir: Path) -> Path:
    """streamdet's fp32 export of `hf_dir` into `out_dir`, reused when it was made from the same
    source (its meta.json records the source checksum) by the same exporter code (the graph it
    writes changes with it), redone otherwise."""
    if is_export_folder(out_dir):
        meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
        stamp = out_dir / EXPORTER_STAMP
        made_by = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None
        if meta.get("source_sha256") == source_checksum(hf_dir) and made_by == exporter_checksum():
            return out_dir
    out = export_model(hf_dir, out_dir, overwrite=True).out_dir
    (out / EXPORTER_STAMP).write_text(exporter_checksum() + "\n", encoding="utf-8")
    return out


def prepare_model(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """The HF folder (``--source``, else a random one: tiny with ``--quick``) and its streamdet
    export under ``--cache-dir`` (both cached), and a name for the JSON."""
    if args.source is not None:
        hf_dir = args.source.resolve()
        name = f"given: {hf_dir}"
        export_dir = args.cache_dir / f"export-{hf_dir.name}"
    else:
        key = "tiny-random-seed0" if args.quick else "vit-b32-random-seed0"
        hf_dir = build_hf_model(args.cache_dir / key / "hf", tiny=args.quick)
        name = (
            "tiny CLIP (32 px, patch 8, width 32), random weights, seed 0"
            if args.quick
            else "ViT-B/32 shape (clip-vit-base-patch32 config), random weights, seed 0"
        )
        export_dir = args.cache_dir / key / "export"
    return hf_dir, export_cached(hf_dir, export_dir), name
