"""Resolve what a user passes as ``--model`` to an exported model folder.

Accepted: an exported streamdet folder (has meta.json), a local Hugging Face CLIP folder, a
built-in name (``streamdet/scenes-clip``) or a Hugging Face hub id (``owner/name``). Anything that
is not yet exported is exported once into ``<cache_dir>/exports/<checksum>/`` and reused while
its source files stay the same.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import streamdet
from streamdet.clip.export import export_model
from streamdet.clip.files import source_checksum
from streamdet.clip.meta import META_FILE, ModelMeta, is_export_folder, load_meta
from streamdet.errors import (
    ExportError,
    ModelFormatError,
    ModelNotFoundError,
    ModelUnavailableError,
)

__all__ = [
    "BUILTIN_MODELS",
    "ModelMeta",
    "default_cache_dir",
    "hf_source_folder",
    "load_meta",
    "resolve_model",
]

logger = logging.getLogger("streamdet")

# The built-in models ship inside the package (package data), so an installed wheel finds them
# beside its own modules: no network and no source checkout needed.
_PACKAGE_MODELS = Path(streamdet.__file__).resolve().parent / "models"

# built-in name -> folder (an HF folder, an export, or both in one folder).
BUILTIN_MODELS: dict[str, Path] = {
    "streamdet/scenes-clip": _PACKAGE_MODELS / "scenes-clip",
}

# Files fetched from the hub: configs, tokenizer, safetensors weights (no TF/Flax/ONNX copies).
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt"]
HUB_TIMEOUT_S = 10.0

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_cache_dir() -> Path:
    """``~/.cache/streamdet``: where exports of HF folders and hub models are kept."""
    return Path.home() / ".cache" / "streamdet"


def _accepted() -> str:
    names = ", ".join(sorted(BUILTIN_MODELS))
    return (
        "an exported streamdet folder (with meta.json), a local Hugging Face CLIP folder, "
        f"a hub id like openai/clip-vit-base-patch32, or a built-in name ({names})"
    )


def resolve_model(
    spec: str | Path,
    *,
    cache_dir: str | Path | None = None,
    hub_timeout_s: float = HUB_TIMEOUT_S,
) -> Path:
    """The exported folder (with meta.json) that `spec` names, exporting it first if needed.

    cache_dir: where exports are cached (default ``~/.cache/streamdet``).
    hub_timeout_s: how long a hub request may take before the hub counts as unreachable.
    Raises ModelNotFoundError (nothing by that name), ModelUnavailableError (a hub id that is
    neither cached nor downloadable) or ModelFormatError (a folder that is not a CLIP model).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    text = str(spec)
    if text in BUILTIN_MODELS:
        return _resolve_folder(_builtin_folder(text), cache, name=text)
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_folder(path.resolve(), cache, name=None)
    if isinstance(spec, str) and _HUB_ID.match(spec):
        snapshot = _download(spec, hub_timeout_s)
        return _resolve_folder(snapshot, cache, name=f"hf://{spec}")
    raise ModelNotFoundError(f"no model '{text}': pass {_accepted()}")


def hf_source_folder(
    spec: str | Path,
    *,
    cache_dir: str | Path | None = None,
    hub_timeout_s: float = HUB_TIMEOUT_S,
) -> Path:
    """The local Hugging Face folder that `spec` names: what ``export_model`` takes as source.

    spec: a local HF folder, a built-in name or a hub id (downloaded into the HF cache).
    cache_dir: accepted for symmetry with resolve_model; hub downloads go to the HF cache.
    Raises ModelFormatError for a folder without config.json (e.g. one that is already an
    export), ModelNotFoundError and ModelUnavailableError as resolve_model does.
    """
    del cache_dir  # downloads live in the Hugging Face cache, shared with transformers
    text = str(spec)
    if text in BUILTIN_MODELS:
        folder = _builtin_folder(text)
    elif Path(text).expanduser().exists():
        folder = Path(text).expanduser().resolve()
    elif isinstance(spec, str) and _HUB_ID.match(spec):
        folder = _download(spec, hub_timeout_s)
    else:
        raise ModelNotFoundError(
            f"no model '{text}': pass a local Hugging Face CLIP folder, a hub id like "
            f"openai/clip-vit-base-patch32 or a built-in name ({', '.join(sorted(BUILTIN_MODELS))})"
        )
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelFormatError(
            f"'{folder}' is not a Hugging Face model folder (no config.json); pass the folder "
            "saved with CLIPModel.save_pretrained (an exported folder needs no export)"
        )
    return folder


def _builtin_folder(name: str) -> Path:
    folder = BUILTIN_MODELS[name]
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"built-in model '{name}' is missing from this installation ({folder} does not "
            "exist); reinstall streamdet, or pass a Hugging Face CLIP folder or an exported "
            "folder instead"
        )
    return folder


def _resolve_folder(folder: Path, cache: Path, *, name: str | None) -> Path:
    if not folder.is_dir():
        raise ModelFormatError(f"'{folder}' is a file; pass {_accepted()}")
    if (folder / META_FILE).is_file():
        if not is_export_folder(folder):
            raise ModelFormatError(
                f"{folder / META_FILE} is not a streamdet meta.json; re-export the folder with "
                "`streamdet export`"
            )
        return folder
    if not (folder / "config.json").is_file():
        raise ModelFormatError(
            f"'{folder}' has neither meta.json (a streamdet export) nor config.json "
            f"(a Hugging Face folder); pass {_accepted()}"
        )
    return _export_cached(folder, cache, name=name)


def _export_cached(folder: Path, cache: Path, *, name: str | None) -> Path:
    """Export an HF folder once per content checksum; later calls reuse the export."""
    key = source_checksum(folder)[:16]
    target = cache / "exports" / key
    if is_export_folder(target):
        logger.info("streamdet: using the cached export %s of %s", target, name or folder)
        return target
    logger.info("streamdet: exporting %s to %s (once; later runs reuse it)", name or folder, target)
    try:
        export_model(folder, target, overwrite=target.exists(), source_name=name)
    except ExportError:
        if is_export_folder(target):  # another process finished the same export first
            return target
        raise
    except OSError:
        if is_export_folder(target):
            return target
        raise
    return target


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_cache_dir() -> Path:
    """The Hugging Face hub cache, from HF_HUB_CACHE / HF_HOME as huggingface_hub reads them.

    Read at call time (huggingface_hub reads them once at import), so a changed environment counts.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def _download(repo_id: str, timeout_s: float) -> Path:
    """A local snapshot of `repo_id`: from the HF cache if there, else from the hub."""
    try:
        import huggingface_hub
        from huggingface_hub.errors import (
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:  # a declared dependency, but keep the message useful
        raise ModelUnavailableError(
            f"cannot fetch '{repo_id}': huggingface_hub is not installed; pip install "
            "huggingface_hub or pass a local folder with --model"
        ) from None

    cache_dir = _hub_cache_dir()
    unavailable = (
        f"could not download '{repo_id}' from the Hugging Face hub (offline or unreachable); "
        "pass a local Hugging Face folder or an exported streamdet folder with --model instead"
    )
    try:
        return Path(
            huggingface_hub.snapshot_download(
                repo_id, allow_patterns=HUB_PATTERNS, cache_dir=cache_dir, local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        pass  # not cached (ValueError: huggingface_hub rejects the id's shape)
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        raise ModelUnavailableError(unavailable.replace("offline or unreachable", "HF_HUB_OFFLINE"))
    api = huggingface_hub.HfApi()
    try:
        # A bounded first request: snapshot_download's own repo lookup has no timeout.
        info = api.model_info(repo_id, timeout=timeout_s)
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise ModelNotFoundError(
            f"the Hugging Face hub has no public model '{repo_id}' ({type(error).__name__}) and "
            f"there is no such local path; pass {_accepted()}"
        ) from None
    except Exception as error:  # network errors come from httpx and differ between versions
        raise ModelUnavailableError(unavailable) from error
    try:
        snapshot = huggingface_hub.snapshot_download(
            repo_id,
            revision=info.sha,
            allow_patterns=HUB_PATTERNS,
            cache_dir=cache_dir,
            etag_timeout=timeout_s,
        )
    except Exception as error:
        raise ModelUnavailableError(unavailable) from error
    return Path(snapshot)
