"""Building and updating an index folder: which videos to embed, embedding them, the manifest.

``index_file`` embeds ONE video and returns its rows without touching the index: it is the unit a
worker process (a Ray actor: ``streamdet.distributed.index``) runs per file and sends back.
``plan_update`` / ``commit_rows`` / ``finish_update`` are the driver's steps, which
``update_index`` runs in this process:
it compares each input's size and mtime with the manifest, embeds only new and changed videos,
writes each one's part and then the manifest (so an interrupted run loses at most the video being
embedded), drops videos that no longer exist, and reports every failure in one line without
stopping the others.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from streamdet.config import IndexConfig
from streamdet.detect.model import LoadedModel
from streamdet.errors import ConfigError, IndexFolderError, StreamdetError
from streamdet.search.embed import FrameEmbedder
from streamdet.search.lists import LISTS_FILE, MIN_ROWS, current_lists, up_to_date
from streamdet.search.sample import sample_frames
from streamdet.search.store import (
    FileEntry,
    FileRows,
    Manifest,
    ModelStamp,
    part_name,
    prepare_folder,
    read_manifest,
    read_part,
    remove_orphans,
    write_manifest,
    write_part,
)
from streamdet.sources import expand_inputs

log = logging.getLogger("streamdet.search")

#: Sampled frames embedded per tower call (their windows together make one batch).
FRAMES_PER_BATCH = 8
#: The settings that change what a row holds; a change re-embeds every video.
EMBED_SETTINGS = ("every", "cells", "window")


@dataclass(frozen=True)
class IndexProgress:
    """Where indexing is: file ``done`` + 1 of ``total`` to embed (``path``), its sampled frames
    so far (on Ray: ``done`` files finished, ``path`` the workers, ``frames`` theirs together)."""

    done: int
    total: int
    path: str
    frames: int


@dataclass(frozen=True)
class IndexReport:
    """What one ``update_index`` did. failed: (path, one-line reason) per video that failed."""

    folder: str
    indexed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    removed: tuple[str, ...]
    files: int
    rows: int
    seconds: float
    not_run: tuple[str, ...] = ()  # stopped (Ctrl-C) before they were embedded: the next run


def embed_settings(config: IndexConfig) -> dict[str, float | int]:
    """The settings recorded in the manifest: those that decide what the rows hold."""
    values = asdict(config)
    return {key: values[key] for key in EMBED_SETTINGS}


def index_file(
    path: str | Path,
    embedder: FrameEmbedder,
    *,
    on_frames: Callable[[int], None] | None = None,
) -> FileRows:
    """Sample and embed one video (or still image): its rows, in time order.

    Raises ``StreamdetError`` (``SourceError``) for a file that cannot be read at all; a
    damaged one gives the rows of what decodes. ``on_frames(n)`` is told the frames so far.
    """
    every = embedder.config.every
    times: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    whole: list[np.ndarray] = []
    embs: list[np.ndarray] = []
    pending: list[tuple[float, np.ndarray]] = []
    count = 0

    def flush() -> None:
        for (t, frame), emb in zip(pending, embedder.embed([f for _, f in pending]), strict=True):
            h, w = frame.shape[:2]
            b = embedder.boxes(h, w)
            times.append(np.full(len(b), t))
            boxes.append(b)
            sizes.append(np.tile(np.array([[w, h]], np.int32), (len(b), 1)))
            whole.append(np.arange(len(b)) == 0)
            embs.append(emb.astype(np.float16))
        pending.clear()

    for t, frame in sample_frames(Path(path), every):
        pending.append((t, frame))
        count += 1
        if len(pending) >= FRAMES_PER_BATCH:
            flush()
            if on_frames is not None:
                on_frames(count)
    flush()
    dim = embedder.model.encoders.embed_dim
    return FileRows(
        file=str(path),
        times=np.concatenate(times) if times else np.zeros(0),
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32),
        sizes=np.concatenate(sizes) if sizes else np.zeros((0, 2), np.int32),
        whole=np.concatenate(whole) if whole else np.zeros(0, bool),
        embeddings=np.concatenate(embs) if embs else np.zeros((0, dim), np.float16),
        frames=count,
    )


def collect_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Absolute paths of the videos and images that ``inputs`` (paths, folders, globs) name."""
    specs = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    if not specs:
        raise ConfigError("give at least one video, folder or glob to index")
    found: dict[str, None] = {}
    for spec in specs:
        for item in expand_inputs(spec):
            found[str(Path(item).expanduser().resolve())] = None
    return list(found)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def start_manifest(folder: Path, stamp: ModelStamp, config: IndexConfig) -> Manifest:
    """The index's manifest to update: the existing one (same model required) or a new one.

    Other embedding settings than the index was built with start it over (every video is
    embedded again), with a notice.
    """
    settings = embed_settings(config)
    if not (folder / "manifest.json").is_file():
        return Manifest(stamp, settings)
    old = read_manifest(folder)
    if old.model.checksum != stamp.checksum:
        raise IndexFolderError(
            f"index '{folder}' holds embeddings of model '{old.model.name}' "
            f"({old.model.checksum[:12]}), not of '{stamp.name}' ({stamp.checksum[:12]}); "
            "index into a new folder or pass that model with --model"
        )
    if dict(old.settings) != settings:
        log.warning(
            "index '%s' was built with %s; embedding every video again with %s",
            folder, dict(old.settings), settings,
        )  # fmt: skip
        return Manifest(stamp, settings)
    return Manifest(stamp, settings, old.files)


def commit_rows(
    root: Path,
    manifest: Manifest,
    files: dict[str, FileEntry],
    path: str,
    stat: tuple[int, int],
    rows: FileRows,
) -> None:
    """Store one video's rows (from ``index_file``, here or in a worker): its part first, then
    the manifest naming it (``files`` is updated in place)."""
    name = part_name(path, stat[0], stat[1], manifest.settings)
    write_part(root, name, rows, manifest.model.checksum)
    files[path] = FileEntry(name, stat[0], stat[1], len(rows), rows.frames)
    write_manifest(root, manifest.with_files(files))


def refresh_lists(root: Path, manifest: Manifest) -> None:
    """Bring the index's inverted lists (``streamdet.search.lists``) up to date at index time,
    so that the first search need not: new parts' rows assigned, stale centres retrained."""
    parts = {e.part: e.rows for e in manifest.files.values()}
    checksum = manifest.model.checksum
    if sum(parts.values()) < MIN_ROWS:
        (root / LISTS_FILE).unlink(missing_ok=True)  # left from when the index was larger
        return
    if up_to_date(root, parts, checksum):
        return
    rows = [read_part(root, e.part, checksum, e.frames) for e in manifest.files.values()]
    matrix = np.concatenate([r.embeddings for r in rows]).astype(np.float32)
    current_lists(root, list(parts), [len(r) for r in rows], matrix, checksum)


@dataclass(frozen=True)
class IndexPlan:
    """What an update will do: the index folder and manifest, the entries kept so far
    (``files``, updated in place as videos are committed), the videos to embed (path and
    size/mtime, or None for one that does not exist), and those skipped and dropped."""

    root: Path
    manifest: Manifest
    files: dict[str, FileEntry]
    todo: tuple[tuple[str, tuple[int, int] | None], ...]
    skipped: tuple[str, ...]
    removed: tuple[str, ...]
    total: int
    started: float


def plan_update(
    folder: str | Path,
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    stamp: ModelStamp,
    config: IndexConfig,
) -> IndexPlan:
    """Compare the inputs with the index's manifest: only new and changed videos are to do."""
    t0 = time.perf_counter()
    paths = collect_inputs(inputs)
    root = prepare_folder(folder)
    manifest = start_manifest(root, stamp, config)
    files = dict(manifest.files)
    removed = tuple(p for p in files if _stat(p) is None)
    for p in removed:
        del files[p]
    todo: list[tuple[str, tuple[int, int] | None]] = []
    skipped: list[str] = []
    for path in paths:
        stat = _stat(path)
        entry = files.get(path)
        if stat is not None and entry is not None and (entry.size, entry.mtime_ns) == stat:
            skipped.append(path)
        else:
            todo.append((path, stat))
    return IndexPlan(root, manifest, files, tuple(todo), tuple(skipped), removed, len(paths), t0)


def finish_update(
    plan: IndexPlan,
    indexed: Iterable[str],
    failed: Iterable[tuple[str, str]],
    not_run: Iterable[str] = (),
) -> IndexReport:
    """The final manifest, orphans removed, the inverted lists brought up to date; the report."""
    final = plan.manifest.with_files(plan.files)
    write_manifest(plan.root, final)
    remove_orphans(plan.root, final)
    refresh_lists(plan.root, final)
    return IndexReport(
        folder=str(plan.root),
        indexed=tuple(indexed),
        skipped=plan.skipped,
        failed=tuple(failed),
        removed=plan.removed,
        files=len(plan.files),
        rows=sum(e.rows for e in plan.files.values()),
        seconds=time.perf_counter() - plan.started,
        not_run=tuple(not_run),
    )


def update_index(
    folder: str | Path,
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    model: LoadedModel,
    model_name: str,
    config: IndexConfig,
    *,
    on_progress: Callable[[IndexProgress], None] | None = None,
) -> IndexReport:
    """Add ``inputs`` to the index at ``folder`` (created if absent), embedding in this process;
    see the module docstring (``streamdet.distributed.index`` does the same on Ray)."""
    stamp = ModelStamp(model_name, model.encoders.meta.checksum, int(model.encoders.embed_dim))
    plan = plan_update(folder, inputs, stamp, config)
    embedder = FrameEmbedder(model, config)
    indexed: list[str] = []
    failed: list[tuple[str, str]] = []
    total = len(plan.todo)
    for n, (path, stat) in enumerate(plan.todo):
        if on_progress is not None:
            on_progress(IndexProgress(n, total, path, 0))
        try:
            if stat is None:
                raise ConfigError(f"'{path}' does not exist")
            rows = index_file(
                path,
                embedder,
                on_frames=None
                if on_progress is None
                else (lambda c, n=n, p=path: on_progress(IndexProgress(n, total, p, c))),
            )
        except StreamdetError as err:
            failed.append((path, str(err)))
            continue
        except Exception as err:  # one bad file never stops the others (a decoder's own error)
            failed.append((path, f"{type(err).__name__}: {err}"))
            continue
        commit_rows(plan.root, plan.manifest, plan.files, path, stat, rows)
        indexed.append(path)
    return finish_update(plan, indexed, failed)
