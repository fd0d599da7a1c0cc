"""``VideoIndex``: the Python API of indexing and search.

    from streamdet import VideoIndex
    index = VideoIndex("clips.index")                 # a folder; created by the first add
    index.add("dashcam/")                             # videos, folders, globs; incremental
    for hit in index.search("a red car", k=10):
        print(hit.file, hit.time, hit.score, hit.box)
    index.contact_sheet(hits, "hits.html")

The model is the index's own (recorded in its manifest) unless one is given; giving another
model than an existing index was built with is refused. The model and the loaded matrix are kept
by the instance: the first search loads them, later searches cost one matrix product each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.config import DEFAULT_MODEL, SETTINGS, IndexConfig, ModelFacts, resolve_config
from streamdet.detect.model import FoundModel, LoadedModel, find_model
from streamdet.detect.prompts import normalise_prompts
from streamdet.errors import ConfigError, IndexFolderError
from streamdet.search.indexer import IndexProgress, IndexReport, plan_update, update_index
from streamdet.search.lists import ListLayout, current_lists
from streamdet.search.query import IndexMatrix, SearchHit, probability, rank
from streamdet.search.sheet import write_sheet
from streamdet.search.store import (
    MANIFEST,
    Manifest,
    ModelStamp,
    pyarrow_modules,
    read_manifest,
    read_part,
)


def _model_name(model: str | Path) -> str:
    """How a model is recorded: a local folder by its absolute path, a name or hub id as is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


class VideoIndex:
    """A search index folder: ``add`` videos, ``search`` them by text."""

    def __init__(
        self,
        folder: str | Path,
        *,
        model: str | Path | None = None,
        config: IndexConfig | None = None,
        **runtime: Any,
    ) -> None:
        """folder: the index (need not exist until ``add``). model: the model to embed with
        (None: the index's own, or the built-in one for a new index). config: sampling, grid and
        ranking (``streamdet.config.IndexConfig``). runtime: runtime settings by name (device,
        backend, precision, threads, max_batch, cache_dir)."""
        other = sorted(k for k in runtime if SETTINGS.get(k, ("runtime",))[0] != "runtime")
        if other:
            raise ConfigError(
                f"an index takes runtime settings only (device, backend, ...), not "
                f"{', '.join(other)}"
            )
        self.folder = Path(folder)
        self.config = config or IndexConfig()
        self._model_arg = model
        self._runtime = resolve_config(runtime).runtime
        self._runtime_args = dict(runtime)
        self._found: FoundModel | None = None
        self._model: LoadedModel | None = None
        self._matrix: tuple[tuple[int, int], IndexMatrix] | None = None

    # ------------------------------------------------------------------ model

    def _wanted_model(self) -> str | Path:
        if self._model_arg is not None:
            return self._model_arg
        if (self.folder / MANIFEST).is_file():
            return read_manifest(self.folder).model.name
        return DEFAULT_MODEL

    @property
    def model(self) -> LoadedModel:
        """The loaded model (opened on first use)."""
        if self._model is None:
            self._found = find_model(self._wanted_model(), cache_dir=self._runtime.cache_dir)
            self._model = LoadedModel.open(self._found, self._runtime)
        return self._model

    def _check_model(self, manifest: Manifest) -> None:
        checksum = self.model.encoders.meta.checksum
        if manifest.model.checksum != checksum:
            raise IndexFolderError(
                f"index '{self.folder}' holds embeddings of model '{manifest.model.name}' "
                f"({manifest.model.checksum[:12]}), not of '{self._wanted_model()}' "
                f"({checksum[:12]}); search it with its own model"
            )

    # ------------------------------------------------------------------ indexing

    def add(
        self,
        inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        on_progress: Callable[[IndexProgress], None] | None = None,
        ray: bool | str = False,
        workers: int | None = None,
        stop: threading.Event | None = None,
    ) -> IndexReport:
        """Index videos and images (paths, folders, globs): new and changed ones are embedded,
        unchanged ones skipped, ones gone from disk dropped; a bad file is reported in
        ``IndexReport.failed`` and never stops the others.

        ray: False embeds here; True on a local Ray (or the one this process initialised); an
        address (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``) on that cluster: each worker
        loads the model once, this process stores each video as it comes back (the
        ``streamdet[ray]`` extra). workers: Ray workers (default: the cluster's CPUs /
        ``threads``). stop: set it to end a Ray run early; finished videos are kept.
        """
        pyarrow_modules()  # a missing extra is said before the model loads
        if ray is not False:
            # imported here: streamdet.distributed.index imports this package
            from streamdet.distributed.index import EmbedderSpec, import_ray, index_on_ray

            import_ray()
        model = self.model
        name = _model_name(self._wanted_model())
        if ray is False:
            report = update_index(
                self.folder, inputs, model, name, self.config, on_progress=on_progress
            )
        else:
            meta = model.encoders.meta
            stamp = ModelStamp(name, meta.checksum, int(model.encoders.embed_dim))
            plan = plan_update(self.folder, inputs, stamp, self.config)
            spec = EmbedderSpec(name, tuple(sorted(self._runtime_args.items())), self.config)
            report, _ = index_on_ray(
                plan, spec, ray=ray, workers=workers, stop=stop, on_progress=on_progress
            )
        self._matrix = None
        return report

    # ------------------------------------------------------------------ search

    def _stamp(self) -> tuple[int, int]:
        st = os.stat(self.folder / MANIFEST)
        return st.st_mtime_ns, st.st_size

    def load(self) -> IndexMatrix:
        """Every row in memory (kept until the manifest changes), grouped by inverted list for
        an index large enough to have them (``streamdet.search.lists``: built here when
        missing or stale)."""
        manifest = read_manifest(self.folder)
        pyarrow_modules()
        stamp = self._stamp()
        if self._matrix is not None and self._matrix[0] == stamp:
            return self._matrix[1]
        self._check_model(manifest)
        parts = [
            read_part(self.folder, e.part, manifest.model.checksum, e.frames)
            for e in manifest.files.values()
        ]
        matrix = IndexMatrix.from_parts(parts, manifest.model.embed_dim)
        names = [e.part for e in manifest.files.values()]
        lists = current_lists(
            self.folder, names, [len(p) for p in parts], matrix.matrix, manifest.model.checksum
        )
        if lists is not None:
            matrix = matrix.grouped(ListLayout.of(lists, names))
        self._matrix = (stamp, matrix)
        return matrix

    def embed_prompt(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """The prompt's (D,) embedding and the (B, D) background prompts, templated as the
        detector does for this model."""
        (text,) = normalise_prompts(prompt)
        texts = self.model.texts
        assert self._found is not None  # set by self.model
        scoring = resolve_config({}, model=ModelFacts.from_meta(self._found.meta)).scoring
        emb = texts.embed_templated([text], scoring.templates)[0]
        background = [b for b in scoring.background_prompts if b != text]
        dim = emb.shape[0]
        bg = (
            texts.embed_templated(background, scoring.templates)
            if background
            else np.zeros((0, dim), np.float32)
        )
        return emb, bg

    def search(
        self,
        prompt: str,
        k: int = 10,
        *,
        scoring: str | None = None,
        probe: float | None = None,
    ) -> list[SearchHit]:
        """The ``k`` best moments for ``prompt``, best first (fewer if the index has fewer).
        scoring, probe: this query's, instead of the index's ``IndexConfig``."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a whole number of 1 or more, but got {k!r}")
        normalise_prompts(prompt)  # an empty prompt is refused before anything loads
        config = replace(
            self.config,
            scoring=self.config.scoring if scoring is None else scoring,
            probe=self.config.probe if probe is None else probe,
        )
        rows = self.load()
        prompt_emb, background = self.embed_prompt(prompt)
        return self.rank(rows, prompt_emb, background, k, config)

    def rank(
        self,
        rows: IndexMatrix,
        prompt_emb: np.ndarray,
        background: np.ndarray,
        k: int,
        config: IndexConfig | None = None,
    ) -> list[SearchHit]:
        """Score ``rows`` against an embedded prompt and return the top ``k`` moments (with
        inverted lists, the rows of the best lists: ``IndexConfig.probe``)."""
        cfg = config or self.config
        if len(rows) == 0:
            return []
        best, keys = rank(
            rows,
            prompt_emb,
            background,
            self.model.logit_scale,
            cfg.scoring,
            k,
            cfg.collapse,
            cfg.probe,
        )
        scores = probability(keys, cfg.scoring)
        return [
            SearchHit(
                file=rows.files[int(rows.file_ids[i])],
                time=float(rows.times[i]),
                score=float(score),
                box=tuple(round(float(v)) for v in rows.boxes[i]),  # type: ignore[arg-type]
                frame_size=(int(rows.sizes[i, 0]), int(rows.sizes[i, 1])),
                whole=bool(rows.whole[i]),
            )
            for i, score in zip(best, scores, strict=True)
        ]

    @staticmethod
    def contact_sheet(hits: Sequence[SearchHit], path: str | Path, prompt: str = "") -> Path:
        """Write the hits' contact sheet (.png, .jpg or .html) and return its path."""
        return write_sheet(hits, path, prompt)

    @property
    def files(self) -> tuple[str, ...]:
        """The indexed videos (absolute paths)."""
        if not (self.folder / MANIFEST).is_file():
            raise IndexFolderError(f"index '{self.folder}' does not exist; add videos first")
        return tuple(read_manifest(self.folder).files)
