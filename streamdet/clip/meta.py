"""The ``meta.json`` of an exported streamdet model folder: its schema, reading and checking.

An exported folder holds ``image.onnx``, ``text.onnx``, the tokenizer files and ``meta.json``.
``meta.json`` says how to feed the graphs (input size, layout, context length, pad id), what the
model's ``logit_scale`` is, which prompts describe "background", and the sha256 of every other file,
so a damaged or hand-edited folder is caught before it produces silent nonsense.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from streamdet.clip.files import combine_checksums, sha256_file
from streamdet.errors import ModelFormatError, ModelNotFoundError

META_FILE = "meta.json"
IMAGE_FILE = "image.onnx"
TEXT_FILE = "text.onnx"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "streamdet-clip-onnx"
FORMAT_VERSION = 1
INPUT_LAYOUT = "NHWC BGR float32 0-255"
#: First output of every image graph: window embeddings (N, D), L2-normalised.
IMAGE_OUTPUT = "embeddings"
#: Second output of the image graph: per-patch embeddings (N, T, D) that say where in a window a
#: prompt is (older exports without it still load; dense maps are then off).
TOKENS_OUTPUT = "tokens"
PRECISIONS = ("fp32", "fp16")

# Files every export must list in meta.json["files"]: the runtime reads exactly these.
REQUIRED_FILES = (IMAGE_FILE, TEXT_FILE, TOKENIZER_FILE)

# key -> accepted python types (bool is excluded from int/float below).
_SCHEMA: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "format_version": (int,),
    "source": (str,),
    "image_size": (int,),
    "image_mean": (list,),
    "image_std": (list,),
    "input_layout": (str,),
    "logit_scale": (int, float),
    "embed_dim": (int,),
    "context_length": (int,),
    "pad_id": (int,),
    "precision": (str,),
    "files": (dict,),
    "background_prompts": (list,),
}


@dataclass(frozen=True)
class ModelMeta:
    """What the runtime needs to know about an exported model folder.

    checksum: a stable id of the model (sha256 over the checksums of image.onnx, text.onnx and
    tokenizer.json), meant as the cache key of text embeddings: equal checksums give equal
    embeddings.
    """

    folder: Path
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    logit_scale: float
    embed_dim: int
    context_length: int
    pad_id: int
    precision: str
    checksum: str
    background_prompts: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    source: str = ""
    files: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)
    #: The image graph's outputs as the exporter wrote them; None for exports older than this
    #: key (the runtime then asks the graph).
    image_outputs: tuple[str, ...] | None = None

    @property
    def image_path(self) -> Path:
        return self.folder / IMAGE_FILE

    @property
    def text_path(self) -> Path:
        return self.folder / TEXT_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.folder / TOKENIZER_FILE


def model_checksum(files: Mapping[str, str]) -> str:
    """The model id recorded as ``ModelMeta.checksum``, from the per-file sha256 of an export."""
    return combine_checksums((name, files[name]) for name in REQUIRED_FILES)


def is_export_folder(folder: Path) -> bool:
    """True if `folder` has a meta.json that declares the streamdet export format."""
    try:
        data = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def read_meta_json(folder: Path) -> dict[str, Any]:
    """The raw meta.json of `folder` as a dict, schema-checked; ModelFormatError if it is not."""
    path = folder / META_FILE
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder '{folder}' does not exist; pass an exported folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(
            f"'{folder}' has no {META_FILE}; export it first with `streamdet export`"
        ) from None
    except (OSError, ValueError) as error:
        raise ModelFormatError(
            f"{path} is not valid JSON ({error}); re-export with `streamdet export`"
        ) from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, but holds {type(data).__name__}")
    for key, types in _SCHEMA.items():
        if key not in data:
            raise ModelFormatError(
                f"{path} lacks the key '{key}'; re-export with `streamdet export`"
            )
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ModelFormatError(
                f"{path}: '{key}' must be {want}, but got {type(value).__name__}; re-export it"
            )
    if data["format"] != FORMAT:
        raise ModelFormatError(
            f"{path}: format must be '{FORMAT}', but got '{data['format']}'; "
            "pass a streamdet export"
        )
    if data["format_version"] > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: format_version {data['format_version']} is newer than this streamdet reads "
            f"({FORMAT_VERSION}); upgrade streamdet"
        )
    if data["precision"] not in PRECISIONS:
        raise ModelFormatError(
            f"{path}: precision must be one of {list(PRECISIONS)}, but got '{data['precision']}'"
        )
    if data["input_layout"] != INPUT_LAYOUT:
        raise ModelFormatError(
            f"{path}: input_layout must be '{INPUT_LAYOUT}', but got '{data['input_layout']}'"
        )
    for key in ("image_mean", "image_std"):
        values = data[key]
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ModelFormatError(f"{path}: '{key}' must be 3 numbers, but got {values!r}")
    for key in ("image_size", "embed_dim", "context_length"):
        if data[key] <= 0:
            raise ModelFormatError(f"{path}: '{key}' must be positive, but got {data[key]}")
    if not all(isinstance(p, str) and p.strip() for p in data["background_prompts"]):
        raise ModelFormatError(f"{path}: 'background_prompts' must be a list of non-empty strings")
    files = data["files"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ModelFormatError(f"{path}: 'files' must map file names to sha256 strings")
    for name in REQUIRED_FILES:
        if name not in files:
            raise ModelFormatError(
                f"{path}: 'files' does not list {name}; re-export with `streamdet export`"
            )
    outputs = data.get("image_outputs", [IMAGE_OUTPUT])
    if (
        not isinstance(outputs, list)
        or not all(isinstance(o, str) for o in outputs)
        or IMAGE_OUTPUT not in outputs
    ):
        raise ModelFormatError(
            f"{path}: 'image_outputs' must be a list of output names that includes "
            f"'{IMAGE_OUTPUT}', but got {outputs!r}; re-export with `streamdet export`"
        )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ModelFormatError(f"{path}: 'defaults' must be an object, but got {defaults!r}")
    return data


def load_meta(folder: str | Path, *, verify: bool = True) -> ModelMeta:
    """Read and check the meta.json of an exported folder.

    Every file listed in meta.json must exist; with ``verify`` its sha256 must match too (this
    reads every file once, which takes a moment for a large model). Raises ModelNotFoundError for
    a missing folder and ModelFormatError, naming the key or file, for anything malformed.
    """
    folder = Path(folder).expanduser().resolve()
    data = read_meta_json(folder)
    files: dict[str, str] = data["files"]
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise ModelFormatError(
                f"'{folder}' lacks {name}, which its {META_FILE} lists; "
                "re-export with `streamdet export`"
            )
        if verify and sha256_file(path) != expected:
            raise ModelFormatError(
                f"{path} does not match the sha256 in {META_FILE} (changed or damaged); "
                "re-export with `streamdet export`"
            )
    mean = tuple(float(v) for v in data["image_mean"])
    std = tuple(float(v) for v in data["image_std"])
    return ModelMeta(
        folder=folder,
        image_size=data["image_size"],
        image_mean=mean,  # type: ignore[arg-type]
        image_std=std,  # type: ignore[arg-type]
        logit_scale=float(data["logit_scale"]),
        embed_dim=data["embed_dim"],
        context_length=data["context_length"],
        pad_id=data["pad_id"],
        precision=data["precision"],
        checksum=model_checksum(files),
        background_prompts=tuple(data["background_prompts"]),
        defaults=MappingProxyType(dict(data.get("defaults", {}))),
        source=data["source"],
        files=MappingProxyType(dict(files)),
        image_outputs=tuple(data["image_outputs"]) if "image_outputs" in data else None,
    )
