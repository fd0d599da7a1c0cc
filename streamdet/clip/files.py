"""Checksums of model files and the list of files that make up a Hugging Face CLIP folder.

Both the exporter (to record where an export came from) and the hub (to key its export cache) need
the same notion of "this source folder's content", so it lives here, with no heavy imports.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

# Files of a Hugging Face CLIP folder whose content defines the model (weights, architecture,
# tokenizer, preprocessing, streamdet's own defaults). READMEs, .gitattributes and exported ONNX
# files are left out, so that adding an export into the folder does not change its checksum.
SOURCE_FILE_PATTERN = re.compile(
    r"^(config\.json|preprocessor_config\.json|tokenizer\.json|tokenizer_config\.json"
    r"|special_tokens_map\.json|vocab\.json|merges\.txt|added_tokens\.json|streamdet\.json"
    r"|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json"
    r"|pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json)$"
)

WEIGHT_FILE_PATTERN = re.compile(
    r"^(model(-\d+-of-\d+)?\.safetensors|pytorch_model(-\d+-of-\d+)?\.bin)$"
)

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of one file, read in 1 MiB chunks (follows symlinks, as HF snapshots use them)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def combine_checksums(named: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (name, checksum) pairs, independent of the order they are given in."""
    digest = hashlib.sha256()
    for name, checksum in sorted(named):
        digest.update(f"{name}\0{checksum}\n".encode())
    return digest.hexdigest()


def source_files(folder: Path) -> list[Path]:
    """The top-level files of an HF folder that define the model, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and SOURCE_FILE_PATTERN.match(p.name))


def weight_files(folder: Path) -> list[Path]:
    """Weight files (safetensors or PyTorch pickles, single or sharded) at the top of `folder`."""
    return sorted(p for p in folder.iterdir() if p.is_file() and WEIGHT_FILE_PATTERN.match(p.name))


def source_checksum(folder: Path) -> str:
    """A content checksum of an HF CLIP folder: config, weights, tokenizer and processor files."""
    return combine_checksums((p.name, sha256_file(p)) for p in source_files(folder))
