"""An index on disk: a folder with one Parquet file per indexed video and a manifest.

::

    clips.index/
        manifest.json            # model id and checksum, settings, and per video: its part,
                                 # size and mtime (what re-indexing compares), rows, frames
        3f9c0a...e1.parquet      # one video's rows: file, time, box, frame size, whole, embedding
        lists.npz                # derived: inverted lists of a large index (search.lists)

A row is one sampled frame seen whole (``whole``; its box is the frame) or one window of it.
Embeddings are float16 (half the disk and memory of float32; a cosine moves by about 1e-3).
Every file is written to a temporary name beside it and renamed into place (``os.replace``), and
the manifest is written after the part it names, so an interrupted index still reads as it was
before: a part the manifest does not name is an orphan, removed by the next ``streamdet index``.
A part's name is a hash of the video's path, size, mtime and the settings, so a re-indexed video
gets a new part and the old one is removed only after the manifest stops naming it.

pyarrow is an optional extra (``pip install "streamdet[search]"``); it is imported here only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from streamdet.errors import ConfigError, IndexFolderError, MissingDependencyError

MANIFEST = "manifest.json"
FORMAT = "streamdet-index"
VERSION = 1
PART_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
_CHECKSUM_KEY = b"streamdet.model_checksum"


def pyarrow_modules() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a one-line error naming the extra to install."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependencyError(
            'indexing and search need pyarrow; install it with pip install "streamdet[search]"'
        ) from None
    return pyarrow, pyarrow.parquet


@dataclass(frozen=True)
class ModelStamp:
    """Which model embedded an index: the name it was opened by, its checksum, its dimension."""

    name: str
    checksum: str
    embed_dim: int


@dataclass(frozen=True)
class FileEntry:
    """One indexed video in the manifest: its part, what it was when indexed, what it gave."""

    part: str
    size: int
    mtime_ns: int
    rows: int
    frames: int


@dataclass(frozen=True)
class Manifest:
    """The index's table of contents (``manifest.json``)."""

    model: ModelStamp
    settings: Mapping[str, Any]
    files: Mapping[str, FileEntry] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": vars(self.model),
            "settings": dict(self.settings),
            "files": {path: vars(entry) for path, entry in self.files.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: Path) -> Manifest:
        if data.get("format") != FORMAT:
            raise IndexFolderError(f"'{where}' is not a streamdet index (a foreign {MANIFEST})")
        if data.get("version") != VERSION:
            raise IndexFolderError(
                f"index '{where}' has format version {data.get('version')!r}; this streamdet "
                f"reads version {VERSION}; index the videos again into a new folder"
            )
        try:
            model = ModelStamp(**data["model"])
            files = {str(p): FileEntry(**e) for p, e in data["files"].items()}
            settings = dict(data["settings"])
        except (KeyError, TypeError, AttributeError) as err:
            raise IndexFolderError(f"index '{where}' has a damaged manifest.json ({err})") from None
        return cls(model, MappingProxyType(settings), MappingProxyType(files))

    def with_files(self, files: Mapping[str, FileEntry]) -> Manifest:
        return Manifest(self.model, self.settings, MappingProxyType(dict(files)))


@dataclass(frozen=True)
class FileRows:
    """The rows of one video: what indexing one file returns and one part holds.

    times: (R,) seconds; boxes: (R, 4) x1, y1, x2, y2 in frame pixels; sizes: (R, 2) frame width
    and height; whole: (R,) True for a row of the whole frame; embeddings: (R, D) float16,
    L2-normalised; frames: how many frames were sampled.
    """

    file: str
    times: np.ndarray
    boxes: np.ndarray
    sizes: np.ndarray
    whole: np.ndarray
    embeddings: np.ndarray
    frames: int

    def __len__(self) -> int:
        return len(self.times)


def part_name(path: str, size: int, mtime_ns: int, settings: Mapping[str, Any]) -> str:
    """The part file of one version of one video under one set of settings."""
    key = json.dumps([path, size, mtime_ns, dict(settings)], sort_keys=True).encode()
    return hashlib.sha256(key).hexdigest()[:24] + PART_SUFFIX


def _atomic_write(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, flush it to disk and rename it onto ``target``."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_part(folder: Path, name: str, rows: FileRows, checksum: str) -> None:
    """Write one video's rows as ``folder/name`` (Parquet, atomically)."""
    pa, pq = pyarrow_modules()
    dim = rows.embeddings.shape[1]
    emb = np.ascontiguousarray(rows.embeddings, np.float16).reshape(-1)
    boxes = np.ascontiguousarray(rows.boxes, np.float32).reshape(-1)
    table = pa.table(
        {
            "file": pa.array([rows.file] * len(rows), pa.string()).dictionary_encode(),
            "time": pa.array(rows.times, pa.float64()),
            "box": pa.FixedSizeListArray.from_arrays(pa.array(boxes), 4),
            "width": pa.array(rows.sizes[:, 0], pa.int32()),
            "height": pa.array(rows.sizes[:, 1], pa.int32()),
            "whole": pa.array(rows.whole, pa.bool_()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb, pa.float16()), dim),
        }
    ).replace_schema_metadata({_CHECKSUM_KEY: checksum.encode()})
    _atomic_write(folder / name, lambda tmp: pq.write_table(table, tmp))


def read_part(folder: Path, name: str, checksum: str, frames: int = 0) -> FileRows:
    """Read one part back; a part of another model or a damaged one is a one-line error."""
    _, pq = pyarrow_modules()
    path = folder / name
    try:
        table = pq.read_table(path, memory_map=True)
    except (OSError, ValueError) as err:
        raise IndexFolderError(
            f"index '{folder}': part {name} cannot be read ({err}); run streamdet index again"
        ) from None
    stored = (table.schema.metadata or {}).get(_CHECKSUM_KEY, b"").decode()
    if stored != checksum:
        raise IndexFolderError(
            f"index '{folder}': part {name} was embedded by another model ({stored[:12]} vs "
            f"{checksum[:12]}); one index holds one model's embeddings"
        )
    file = str(table.column("file")[0]) if table.num_rows else ""
    emb = table.column("embedding").combine_chunks()
    dim = emb.type.list_size
    return FileRows(
        file=file,
        times=table.column("time").to_numpy(),
        boxes=table.column("box").combine_chunks().values.to_numpy().reshape(-1, 4),
        sizes=np.stack(
            [table.column("width").to_numpy(), table.column("height").to_numpy()], axis=1
        ),
        whole=table.column("whole").to_numpy(),
        embeddings=emb.values.to_numpy(zero_copy_only=False).reshape(-1, dim),
        frames=frames,
    )


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of the index at ``folder``; one-line errors when there is none."""
    path = Path(folder)
    if not path.exists():
        raise IndexFolderError(f"index '{path}' does not exist; build it with streamdet index")
    if not path.is_dir() or not (path / MANIFEST).is_file():
        raise IndexFolderError(f"'{path}' is not a streamdet index (no {MANIFEST} in a folder)")
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexFolderError(f"index '{path}' has an unreadable {MANIFEST} ({err})") from None
    if not isinstance(data, dict):
        raise IndexFolderError(f"'{path}' is not a streamdet index (a foreign {MANIFEST})")
    return Manifest.from_json(data, path)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` atomically (after every part it names is in place)."""
    text = json.dumps(manifest.to_json(), indent=1, sort_keys=True) + "\n"
    _atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def prepare_folder(folder: str | Path) -> Path:
    """The index folder to write: created when absent; an existing one must be an index or empty."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"-o '{path}' is a file; an index is a folder (give a new folder name)")
    if path.is_dir() and not (path / MANIFEST).is_file() and any(path.iterdir()):
        raise ConfigError(
            f"'{path}' is a folder with other files and not a streamdet index; give a new folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create index folder '{path}' ({err.strerror})") from None
    return path


def remove_orphans(folder: Path, manifest: Manifest) -> int:
    """Delete parts the manifest does not name and temporary files left by an interrupted run."""
    named = {entry.part for entry in manifest.files.values()}
    removed = 0
    for item in folder.iterdir():
        orphan = item.suffix == PART_SUFFIX and item.name not in named
        if orphan or item.name.endswith(TMP_SUFFIX):
            item.unlink(missing_ok=True)
            removed += 1
    return removed
