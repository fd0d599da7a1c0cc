"""Export a Hugging Face CLIP folder to the two ONNX graphs streamdet runs, and prove they match.

The image graph takes what OpenCV gives after resizing (NHWC, BGR, float32 0..255); the channel
swap and CLIP normalisation are folded into its patch embedding (``folded_embeddings``), so the
runtime does no per-pixel work on the host. Both graphs end in L2 normalisation. After export both
graphs are run with ONNX Runtime and with PyTorch (the image graph against transformers' own path,
unfolded) on the same inputs; an export that disagrees beyond the tolerance is never published.

torch, transformers and onnx are imported inside the functions: they are the optional ``export``
extra, and the runtime must not need them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import streamdet
from streamdet.clip.files import sha256_file, source_checksum, weight_files
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
from streamdet.errors import (
    ConfigError,
    ExportError,
    MissingDependencyError,
    ModelFormatError,
    ModelNotFoundError,
    OutputExistsError,
    ParityError,
)

logger = logging.getLogger("streamdet")

FP32_TOLERANCE = 1e-4
"""Default parity tolerance (max abs diff of L2-normalised embeddings) of an fp32 export."""
FP16_TOLERANCE = 2e-2
"""Default parity tolerance of an fp16 export (fp16 weights and compute, fp32 inputs/outputs)."""

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
# Prompts of different lengths for the text parity check.
PARITY_PROMPTS = (
    "a photo of a cat",
    "a red car",
    "x",
    "a small blue triangle next to a large green circle on a white table, seen from above",
    "Street at NIGHT, with   rain!",
)
PARITY_IMAGES = 3
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


# -- torch side ------------------------------------------------------------------------------


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


def dense_tokens(model: Any, before_last: Any) -> Any:
    """Per-patch embeddings in the joint space, for where in a window the prompt is.

    ``before_last`` is the vision encoder's input to its last layer (``hidden_states[-2]``). The
    last layer is re-run on it with key-key attention and without its residual and MLP (as in
    ClearCLIP / SCLIP): each patch token then mostly keeps its own content instead of the global
    summary the class token needs, and goes through the same final layer norm and projection as
    the class token. Returns (N, patches, D), L2-normalised. The exported image graph and the
    built-in model's training (which teaches these tokens where objects are) share this function.
    """
    import torch

    vision = model.vision_model
    last = vision.encoder.layers[-1]
    attn = last.self_attn
    x = last.layer_norm1(before_last)
    n, t, width = x.shape
    heads = attn.num_heads
    keys = attn.k_proj(x).view(n, t, heads, width // heads).transpose(1, 2)
    values = attn.v_proj(x).view(n, t, heads, width // heads).transpose(1, 2)
    weights = torch.softmax(keys @ keys.transpose(-1, -2) * attn.scale, dim=-1)
    mixed = (weights @ values).transpose(1, 2).reshape(n, t, width)
    tokens = vision.post_layernorm(attn.out_proj(mixed)[:, 1:])
    return torch.nn.functional.normalize(model.visual_projection(tokens), dim=-1)


def _normalisation(torch: Any, mean: list[float], std: list[float]) -> tuple[Any, Any]:
    """(scale, shift) per RGB channel with (x / 255 - mean) / std == x * scale + shift."""
    std_t = torch.tensor(std, dtype=torch.float32)
    return 1.0 / (255.0 * std_t), -torch.tensor(mean, dtype=torch.float32) / std_t


def folded_embeddings(torch: Any, vision: Any, mean: list[float], std: list[float]) -> Any:
    """An nn.Module doing what ``vision.embeddings`` does, but on raw NHWC BGR 0..255 pixels.

    CLIP cuts a normalised image into P x P patches with a stride-P convolution. Here the patches
    are cut from the NHWC input with one reshape/transpose and embedded by one MatMul,
    ``(patches - mean colour) @ W (P*P*3, width) + position embeddings``, with the channel swap
    and the division by the std folded into ``W``. On the CPU that is one transpose fewer than
    NHWC -> NCHW + Conv, and int8 dynamic quantisation then covers the patch embedding too:
    ViT-B/32 int8 ran about 5% faster. The mean colour is subtracted, not folded into the bias:
    with it in the bias a patch near the mean colour is a large product cancelled by a large bias,
    and int8 weight errors on the large product stay (smallest window cosine int8 vs fp32 on a
    dashcam frame 0.9977, against 0.9998 centred and with the Conv). It is subtracted from the
    (N, T, P*P*3) patch rows, where the broadcast runs along a long last axis: on the NHWC input
    (a 3-channel broadcast) it cost 3% of the frame. The class token's row (class embedding + its
    position embedding) is a constant.
    """
    nn = torch.nn
    embeddings = vision.embeddings
    conv = embeddings.patch_embedding
    patch = int(conv.kernel_size[0])
    side = int(embeddings.image_size) // patch
    weight = conv.weight.detach().float()  # (width, 3 RGB, P, P)
    width = weight.shape[0]
    scale, _ = _normalisation(torch, mean, std)
    # rows ordered (y, x, BGR channel) as the NHWC patch is read; RGB channel c is BGR 2 - c
    folded = (weight * scale.view(1, 3, 1, 1))[:, [2, 1, 0]].permute(2, 3, 1, 0)
    positions = embeddings.position_embedding.weight.detach().float()  # (1 + T, width)
    bias = positions[1:]
    if conv.bias is not None:
        bias = bias + conv.bias.detach().float()
    centre = torch.tensor(mean[::-1], dtype=torch.float32) * 255.0  # BGR 0..255

    class FoldedEmbeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("centre", centre.repeat(patch * patch))  # (P*P*3,)
            self.register_buffer("weight", folded.reshape(patch * patch * 3, width).contiguous())
            self.register_buffer("bias", bias.contiguous())  # (T, width)
            first = embeddings.class_embedding.detach().float() + positions[0]
            self.register_buffer("first", first.view(1, 1, width))

        def forward(self, pixels: Any, interpolate_pos_encoding: bool = False) -> Any:
            if interpolate_pos_encoding:
                raise ValueError("folded patch embeddings have fixed positions")
            x = pixels.reshape(-1, side, patch, side, patch, 3).permute(0, 1, 3, 2, 4, 5)
            patches = x.reshape(-1, side * side, patch * patch * 3)
            tokens = (patches - self.centre) @ self.weight + self.bias
            return torch.cat([self.first.expand(tokens.shape[0], 1, width), tokens], dim=1)

    return FoldedEmbeddings().eval()


@contextlib.contextmanager
def _replaced(parent: Any, name: str, module: Any) -> Iterator[None]:
    """``parent.<name>`` is ``module`` inside the block and the original again after it."""
    original = getattr(parent, name)
    setattr(parent, name, module)
    try:
        yield
    finally:
        setattr(parent, name, original)


def _features(torch: Any, output: Any) -> Any:
    """Projected features from ``get_*_features``: transformers >= 5 returns an output object
    whose pooler_output is the projection."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def image_tower(
    torch: Any, model: Any, mean: list[float], std: list[float], *, tokens: bool = True
) -> Any:
    """The image tower streamdet exports (and the PyTorch backend runs): an nn.Module from
    (N, S, S, 3) BGR 0..255 pixels to a tuple of window embeddings (N, D) and, with ``tokens``,
    patch tokens (N, T, D), all L2-normalised.

    It runs the vision transformer with ``folded_embeddings`` in place of its patch embedding; the
    model's own weights are shared, not copied. Without ``tokens`` the hidden states and the
    re-run of the last layer (``dense_tokens``) are skipped.
    """
    nn = torch.nn
    functional = torch.nn.functional
    vision = model.vision_model

    class ImageTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.embeddings = folded_embeddings(torch, vision, mean, std)

        def forward(self, pixels: Any) -> Any:
            with _replaced(vision, "embeddings", self.embeddings):
                out = vision(pixel_values=pixels, output_hidden_states=tokens)
            pooled = functional.normalize(model.visual_projection(out.pooler_output))
            if not tokens:
                return (pooled,)
            return pooled, dense_tokens(model, out.hidden_states[-2])

    return ImageTower().eval()


def text_tower(torch: Any, model: Any) -> Any:
    """The text tower streamdet exports (and the PyTorch backend runs): (K, L) input_ids and
    attention_mask -> (K, D) L2-normalised prompt embeddings."""

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return torch.nn.functional.normalize(_features(torch, out))  # (K, D)

    return TextTower().eval()


def _reference_tower(torch: Any, model: Any, mean: list[float], std: list[float]) -> Any:
    """``image_tower``'s outputs by transformers' own path (NCHW RGB, normalised, Conv patches).
    Parity is checked against it, so the folding is proven on every export."""
    functional = torch.nn.functional
    vision = model.vision_model

    class ReferenceImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            scale, shift = _normalisation(torch, mean, std)
            self.register_buffer("scale", scale.view(1, 3, 1, 1))
            self.register_buffer("shift", shift.view(1, 3, 1, 1))

        def forward(self, pixels: Any) -> Any:
            x = pixels.permute(0, 3, 1, 2)  # (N, S, S, 3) BGR -> (N, 3, S, S) BGR
            x = x[:, [2, 1, 0]]  # (N, 3, S, S) RGB
            x = x * self.scale + self.shift
            out = vision(pixel_values=x, output_hidden_states=True)
            pooled = functional.normalize(model.visual_projection(out.pooler_output))
            return pooled, dense_tokens(model, out.hidden_states[-2])

    return ReferenceImageTower().eval()


def _wrappers(torch: Any, model: Any, mean: list[float], std: list[float]) -> tuple[Any, Any, Any]:
    """nn.Modules with exactly the inputs and outputs of the two ONNX graphs: (image tower to
    export, the same image tower on transformers' own path, text tower)."""
    return (
        image_tower(torch, model, mean, std),
        _reference_tower(torch, model, mean, std),
        text_tower(torch, model),
    )


def load_clip(torch: Any, transformers: Any, source: Path) -> Any:
    """The CLIPModel of an HF folder in fp32, eval mode, eager attention; one-line errors."""
    progress = transformers.utils.logging
    shown = progress.is_progress_bar_enabled()
    progress.disable_progress_bar()  # no "Loading weights" bar on stderr
    try:
        model = transformers.CLIPModel.from_pretrained(
            source, dtype=torch.float32, attn_implementation="eager"
        )
    except Exception as error:  # transformers raises many kinds; the message is what matters
        raise ModelFormatError(
            f"transformers cannot load '{source}' as a CLIPModel "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "pass a folder saved with CLIPModel.save_pretrained"
        ) from error
    finally:
        if shown:
            progress.enable_progress_bar()
    return model.float().eval()  # weights stored in fp16 are exported in fp32


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


def _tokens(tokenizer: Any, prompts: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """(K, length) int64 ids and mask, padded the way the runtime tokenizer pads."""
    tokens = tokenizer(prompts, padding="max_length", max_length=length, return_tensors="np")
    return tokens["input_ids"].astype(np.int64), tokens["attention_mask"].astype(np.int64)


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
        torch.from_numpy(a) for a in _tokens(tokenizer, ["a photo", "a photo of a dog"], length)
    )
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy (TorchScript) exporter is deprecated but 10x faster than dynamo for CLIP and
        # matches PyTorch to ~1e-7; its tracer warnings concern shape checks that are constant here.
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


def _to_fp16(stage: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    for name in (IMAGE_FILE, TEXT_FILE):
        path = stage / name
        model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(model, str(path))


def _parity(
    torch: Any, image: Any, text: Any, tokenizer: Any, stage: Path, size: int, length: int
) -> tuple[float, float]:
    """Max abs diff (image, text) between ONNX Runtime and PyTorch on the same inputs."""
    import onnxruntime as ort

    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 256, (PARITY_IMAGES, size, size, 3)).astype(np.float32)
    # Models with a short context (small trained ones) get the prompts that fit.
    prompts = [p for p in PARITY_PROMPTS if len(tokenizer(p)["input_ids"]) <= length]
    ids, mask = _tokens(tokenizer, prompts or ["a"], length)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    image_session = ort.InferenceSession(str(stage / IMAGE_FILE), options, providers=providers)
    text_session = ort.InferenceSession(str(stage / TEXT_FILE), options, providers=providers)
    onnx_image = image_session.run(None, {"pixels": pixels})  # [embeddings, tokens]
    onnx_text = text_session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        torch_image = [t.numpy() for t in image(torch.from_numpy(pixels))]
        torch_text = text(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    image_diff = max(
        float(np.abs(o - t).max()) for o, t in zip(onnx_image, torch_image, strict=True)
    )
    return image_diff, float(np.abs(onnx_text - torch_text).max())


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
    image, reference, text = _wrappers(torch, model, mean, std)

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
        image_diff, text_diff = _parity(torch, reference, text, tokenizer, stage, size, length)
        for graph, diff in (("image", image_diff), ("text", text_diff)):
            if not diff <= tolerance:  # also catches NaN
                raise ParityError(
                    f"the {graph} graph differs from PyTorch by {diff:.3g} (max abs), more than "
                    f"the tolerance {tolerance:.3g}; nothing was written to '{out_dir}'"
                )
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
            },
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
