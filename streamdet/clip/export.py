"""Export a Hugging Face CLIP folder to the two ONNX graphs streamdet runs, and prove they match.

The exporter traces the two towers of ``streamdet.clip.towers`` (the image graph takes what OpenCV
gives after resizing: NHWC, BGR, float32 0..255; both graphs end in L2 normalisation), runs the
parity check of ``streamdet.clip.parity`` on them, and writes the folder: image.onnx, text.onnx,
the tokenizer files and meta.json. Everything is built in a staging folder and moved into place
only after parity passed, meta.json last, so an export that disagrees beyond the tolerance is
never published and a half-written folder never looks complete.

torch, transformers and onnx are imported inside the functions: they are the optional ``export``
extra, and the runtime must not need them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamdet
from streamdet.clip import parity
from streamdet.clip.files import sha256_file, source_checksum, weight_files
from streamdet.clip.frame_graph import frame_file, write_frame_graphs
from streamdet.clip.meta import (
    FORMAT,
    FORMAT_VERSION,
    IMAGE_FILE,
    IMAGE_OUTPUT,
    INPUT_LAYOUT,
    META_FILE,
    TEXT_FILE,
    TOKENS_OUTPUT,
    is_export_folder,
)
from streamdet.clip.parity import FP16_TOLERANCE, FP32_TOLERANCE
from streamdet.clip.towers import image_tower, load_clip, text_inputs, text_tower
from streamdet.config.settings import DENSE_HEADS
from streamdet.errors import (
    ConfigError,
    ExportError,
    MissingDependencyError,
    ModelFormatError,
    ModelNotFoundError,
    OutputExistsError,
)

logger = logging.getLogger("streamdet")

# CLIP's own normalisation, used when a folder has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

DEFAULT_BACKGROUND_PROMPTS = (
    "a photo of the background",
    "a photo of an empty scene",
    "a blurry photo",
    "a photo of a texture",
    "a photo of nothing in particular",
)

STREAMDET_JSON = "streamdet.json"
# Tokenizer files copied verbatim from the source when present (they define the token ids).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)
#: The image graph's outputs, in order; meta.json lists them so the runtime need not open it.
IMAGE_OUTPUTS = (IMAGE_OUTPUT, TOKENS_OUTPUT)

_TMP_PREFIX = ".streamdet-export-"


@dataclass(frozen=True)
class ExportReport:
    """What an export produced and how closely its graphs match PyTorch."""

    out_dir: Path
    image_max_abs_diff: float
    text_max_abs_diff: float
    tolerance: float
    precision: str
    seconds: float


# -- source checks --------------------------------------------------------------------------


def check_source(source: Path) -> dict[str, Any]:
    """The parsed config.json of an HF CLIP folder; one-line errors for anything else."""
    if not source.exists():
        raise ModelNotFoundError(
            f"'{source}' does not exist; pass a local Hugging Face CLIP folder "
            "(config.json + model.safetensors + tokenizer files)"
        )
    if not source.is_dir():
        raise ModelFormatError(
            f"'{source}' is a file; pass the Hugging Face CLIP folder that contains it"
        )
    config_path = source / "config.json"
    if not config_path.is_file():
        raise ModelFormatError(
            f"'{source}' has no config.json, so it is not a Hugging Face model folder; "
            "pass a folder saved with CLIPModel.save_pretrained"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFormatError(
            f"{config_path} is not valid JSON ({error}); fix or re-download it"
        ) from None
    if not isinstance(config, dict):
        raise ModelFormatError(f"{config_path} must hold a JSON object; fix or re-download it")
    if config.get("model_type") != "clip":
        raise ModelFormatError(
            f"{config_path} describes model_type {config.get('model_type')!r}, but streamdet "
            "exports CLIP models (model_type 'clip'); pass a CLIPModel folder"
        )
    if not weight_files(source):
        raise ModelFormatError(
            f"'{source}' has config.json but no weights (model.safetensors or pytorch_model.bin); "
            "download the weights too"
        )
    if not (source / "tokenizer.json").is_file() and not (source / "vocab.json").is_file():
        raise ModelFormatError(
            f"'{source}' has no tokenizer files (tokenizer.json or vocab.json + merges.txt); "
            "copy the tokenizer of the model into the folder"
        )
    return config


def _read_streamdet_json(source: Path) -> tuple[list[str], dict[str, Any]]:
    """Background prompts and other defaults a model folder ships in streamdet.json."""
    path = source / STREAMDET_JSON
    if not path.is_file():
        return list(DEFAULT_BACKGROUND_PROMPTS), {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFormatError(f"{path} is not valid JSON ({error}); fix it") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, but holds {type(data).__name__}")
    defaults = dict(data)
    prompts = defaults.pop("background_prompts", list(DEFAULT_BACKGROUND_PROMPTS))
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ModelFormatError(f"{path}: 'background_prompts' must be a list of non-empty strings")
    return prompts, defaults


def _preprocessing(source: Path) -> tuple[list[float], list[float]]:
    path = source / "preprocessor_config.json"
    if not path.is_file():
        logger.warning(
            "streamdet: %s has no preprocessor_config.json; using CLIP's mean/std", source
        )
        return list(CLIP_MEAN), list(CLIP_STD)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mean, std = data.get("image_mean", CLIP_MEAN), data.get("image_std", CLIP_STD)
        mean, std = [float(v) for v in mean], [float(v) for v in std]
    except (OSError, ValueError, TypeError) as error:
        raise ModelFormatError(f"{path} is malformed ({error}); fix or re-download it") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ModelFormatError(f"{path}: image_mean/image_std must be 3 numbers (std > 0)")
    return mean, std


def _describe_source(source: Path) -> str:
    """The source path for meta.json, with the home folder written as ~ (no user names)."""
    try:
        return "~/" + source.relative_to(Path.home()).as_posix()
    except ValueError:
        return source.as_posix()


# -- output folder policy -------------------------------------------------------------------


def _output_mode(source: Path, out_dir: Path, overwrite: bool) -> str:
    """'new', 'replace' (an old export) or 'inplace' (out_dir is the HF folder itself)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"out_dir '{out_dir}' is a file; pass a folder path")
    if out_dir == source:
        exported = (out_dir / META_FILE).exists() or (out_dir / IMAGE_FILE).exists()
        if exported and not (overwrite and is_export_folder(out_dir)):
            raise OutputExistsError(
                f"'{out_dir}' already holds an export (or files of that name); "
                "pass overwrite=True (--overwrite) to replace it"
            )
        return "inplace"
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return "new"
    if not is_export_folder(out_dir):
        raise OutputExistsError(
            f"out_dir '{out_dir}' exists, is not empty and is not a streamdet export; "
            "pass an empty or new folder (it is never deleted)"
        )
    if not overwrite:
        raise OutputExistsError(
            f"out_dir '{out_dir}' already holds a streamdet export; "
            "pass overwrite=True (--overwrite) to replace it"
        )
    if out_dir in source.parents:
        raise ExportError(
            f"out_dir '{out_dir}' contains the source '{source}', and replacing it would delete "
            "the source; pass another out_dir"
        )
    return "replace"


def _publish(stage: Path, out_dir: Path, mode: str) -> None:
    """Move a checked export from its staging folder into place; meta.json goes last."""
    if mode == "new":
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked before
        os.rename(stage, out_dir)
    elif mode == "replace":
        trash = out_dir.parent / f"{_TMP_PREFIX}old-{uuid.uuid4().hex[:8]}"
        os.rename(out_dir, trash)
        os.rename(stage, out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:  # inplace: stage is inside out_dir
        meta = json.loads((stage / META_FILE).read_text(encoding="utf-8"))
        for path in sorted(stage.iterdir()):
            if path.name != META_FILE:
                os.replace(path, out_dir / path.name)
        meta["files"] = _folder_checksums(out_dir)
        _write_json(stage / META_FILE, meta)
        os.replace(stage / META_FILE, out_dir / META_FILE)
        stage.rmdir()


def _folder_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every top-level regular file but meta.json and hidden ones."""
    return {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != META_FILE and not p.name.startswith(".")
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# -- loading and tracing --------------------------------------------------------------------


def _import_export_deps() -> tuple[Any, Any]:
    try:
        import onnx  # noqa: F401
        import torch
        import transformers
    except ImportError as error:
        raise MissingDependencyError(
            f"exporting needs torch, transformers and onnx ({error.name} is missing); "
            "pip install 'streamdet[export]'"
        ) from None
    return torch, transformers


def _load(torch: Any, transformers: Any, source: Path) -> tuple[Any, Any]:
    model = load_clip(torch, transformers, source)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    except Exception as error:
        raise ModelFormatError(
            f"transformers cannot load the tokenizer of '{source}' ({type(error).__name__}); "
            "copy the CLIP tokenizer files into the folder"
        ) from error
    if tokenizer.pad_token_id is None:
        raise ModelFormatError(f"the tokenizer of '{source}' has no pad token; add one")
    return model, tokenizer


def _export_graphs(
    torch: Any,
    image: Any,
    text: Any,
    tokenizer: Any,
    stage: Path,
    size: int,
    length: int,
    opset: int,
) -> None:
    example_pixels = torch.rand(2, size, size, 3) * 255.0
    example_ids, example_mask = (
        torch.from_numpy(a) for a in text_inputs(tokenizer, ["a photo", "a photo of a dog"], length)
    )
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy (TorchScript) exporter is deprecated but much faster than dynamo for CLIP and
        # matches PyTorch to float rounding; its tracer warnings concern shape checks that are
        # constant here.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        try:
            torch.onnx.export(
                image,
                (example_pixels,),
                str(stage / IMAGE_FILE),
                input_names=["pixels"],
                output_names=list(IMAGE_OUTPUTS),
                dynamic_axes={
                    "pixels": {0: "batch"},
                    IMAGE_OUTPUT: {0: "batch"},
                    TOKENS_OUTPUT: {0: "batch"},
                },
                opset_version=opset,
                dynamo=False,
            )
            torch.onnx.export(
                text,
                (example_ids, example_mask),
                str(stage / TEXT_FILE),
                input_names=["input_ids", "attention_mask"],
                output_names=["embeddings"],
                dynamic_axes={
                    "input_ids": {0: "prompts"},
                    "attention_mask": {0: "prompts"},
                    "embeddings": {0: "prompts"},
                },
                opset_version=opset,
                dynamo=False,
            )
        except Exception as error:
            first_line = (str(error).splitlines() or [""])[0]
            raise ExportError(
                f"torch.onnx.export failed ({type(error).__name__}: {first_line}); "
                "try another --opset or report it"
            ) from error


def _to_fp16(stage: Path, names: tuple[str, ...] = (IMAGE_FILE, TEXT_FILE)) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    for name in names:
        path = stage / name
        model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(model, str(path))


def _copy_tokenizer(tokenizer: Any, source: Path, stage: Path, mode: str) -> None:
    """Tokenizer files into the staging folder: the source's own where present, else generated."""
    target = source if mode == "inplace" else stage
    if mode != "inplace":
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, stage / name)
    missing = [n for n in TOKENIZER_FILES[:3] if not (target / n).is_file()]
    if not missing:
        return
    scratch = stage / ".tokenizer"
    tokenizer.save_pretrained(str(scratch))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if name in missing and (scratch / name).is_file():
            shutil.copyfile(scratch / name, stage / name)
    if "special_tokens_map.json" in missing:
        specials = {
            key: str(getattr(tokenizer, key))
            for key in ("bos_token", "eos_token", "unk_token", "pad_token")
            if getattr(tokenizer, key, None) is not None
        }
        _write_json(stage / "special_tokens_map.json", specials)
    shutil.rmtree(scratch)
    if not (target / "tokenizer.json").is_file() and not (stage / "tokenizer.json").is_file():
        raise ExportError(
            f"could not produce tokenizer.json for '{source}'; add tokenizer.json to the folder"
        )


# -- public API ------------------------------------------------------------------------------


def export_model(
    source: str | Path,
    out_dir: str | Path,
    *,
    fp16: bool = False,
    opset: int = 17,
    tolerance: float | None = None,
    overwrite: bool = False,
    source_name: str | None = None,
    dense_heads: tuple[str, ...] | None = None,
) -> ExportReport:
    """Export the HF CLIP folder `source` to `out_dir`: image.onnx, text.onnx, tokenizer, meta.json.

    fp16: store fp16 weights and compute in fp16, inputs and outputs stay float32.
    tolerance: largest max-abs-diff between ONNX Runtime and PyTorch embeddings (L2-normalised)
    accepted; default 1e-4 for fp32 and 2e-2 for fp16. Past it ParityError is raised and nothing
    is published.
    overwrite: replace an existing streamdet export in out_dir. A non-empty folder that is not a
    streamdet export is never touched. out_dir may be `source` itself: the graphs and meta.json
    are then added next to the HF files, which stay as they are.
    source_name: how meta.json names the source (default: its path, home written as ~).
    dense_heads: the one-pass frame graphs to write (``frame-<head>.onnx``, see
    ``streamdet.clip.frame_graph``); default: the model's suggested ``dense_head`` (its
    streamdet.json), else the built-in default head. Others are made from the weights on first use.
    """
    started = time.perf_counter()
    source = Path(source).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().resolve()
    check_source(source)
    mode = _output_mode(source, out_dir, overwrite)
    background, defaults = _read_streamdet_json(source)
    mean, std = _preprocessing(source)
    if tolerance is None:
        tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    if not tolerance >= 0:
        raise ConfigError(f"tolerance must be >= 0 (or None for the default), but got {tolerance}")
    precision = "fp16" if fp16 else "fp32"
    torch, transformers = _import_export_deps()

    model, tokenizer = _load(torch, transformers, source)
    size = int(model.config.vision_config.image_size)
    length = int(model.config.text_config.max_position_embeddings)
    # nn.Modules with exactly the inputs and outputs of the two ONNX graphs, and the image tower
    # on transformers' own path that the image graph is checked against
    image = image_tower(torch, model, mean, std)
    text = text_tower(torch, model)
    reference = parity.reference_tower(torch, model, mean, std)

    if mode == "inplace":
        stage = out_dir / f"{_TMP_PREFIX}{uuid.uuid4().hex[:8]}"
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        stage = out_dir.parent / f"{_TMP_PREFIX}{out_dir.name}-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        _export_graphs(torch, image, text, tokenizer, stage, size, length, opset)
        if fp16:
            _to_fp16(stage)
        image_diff, text_diff = parity.measure(
            torch, reference, text, tokenizer, stage, size, length
        )
        parity.require(image_diff, text_diff, tolerance, out_dir)
        heads = dense_heads or (str(defaults.get("dense_head", DENSE_HEADS[0])),)
        frame_diffs = write_frame_graphs(torch, model, mean, std, heads, stage, opset)
        if fp16:
            _to_fp16(stage, tuple(frame_file(head) for head in heads))
        _copy_tokenizer(tokenizer, source, stage, mode)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": source_name or _describe_source(source),
            "source_sha256": source_checksum(source),
            "image_size": size,
            "image_mean": mean,
            "image_std": std,
            "input_layout": INPUT_LAYOUT,
            "image_outputs": list(IMAGE_OUTPUTS),
            "logit_scale": float(model.logit_scale.detach().exp().item()),
            "embed_dim": int(model.config.projection_dim),
            "context_length": length,
            "pad_id": int(tokenizer.pad_token_id),
            "opset": opset,
            "precision": precision,
            "files": _folder_checksums(stage),
            "parity": {
                "image_max_abs_diff": image_diff,
                "text_max_abs_diff": text_diff,
                "tolerance": tolerance,
                "frame_max_abs_diff": frame_diffs,
            },
            "frame_heads": list(heads),
            "background_prompts": background,
            "defaults": defaults,
            "created_by": f"streamdet {streamdet.__version__}",
        }
        _write_json(stage / META_FILE, meta)
        if mode == "inplace" and (out_dir / META_FILE).exists():
            (out_dir / META_FILE).unlink()  # a half-replaced folder must not look complete
        _publish(stage, out_dir, mode)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    seconds = time.perf_counter() - started
    logger.info(
        "streamdet: exported %s to %s (%s, parity image %.2g text %.2g) in %.1f s",
        source,
        out_dir,
        precision,
        image_diff,
        text_diff,
        seconds,
    )
    return ExportReport(out_dir, image_diff, text_diff, tolerance, precision, seconds)
