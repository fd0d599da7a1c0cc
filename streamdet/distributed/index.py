"""``streamdet index FOLDER -o INDEX --ray``: videos embedded on Ray workers, stored by the driver.

The driver plans the update as the in-process indexer does (``streamdet.search.indexer``: only
new and changed videos are to do), then each Ray worker loads the model once
(``EmbedderSpec.build``) and turns whole videos into their rows (``index_file``); the rows come
back to the driver, which commits each video as it arrives (its Parquet part, then the manifest),
so a run stopped part-way keeps every finished video and the next run embeds only the rest. A
video that fails is reported in one line; the others go on. Workers return rows (a few hundred
KB a video), never frames, so Ray's object store stays small.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streamdet.config import IndexConfig
from streamdet.distributed.cluster import import_ray, ray_cluster, worker_shape
from streamdet.distributed.pool import Done, map_on_actors
from streamdet.search.indexer import (
    IndexPlan,
    IndexProgress,
    IndexReport,
    commit_rows,
    finish_update,
    index_file,
)
from streamdet.search.store import FileRows


@dataclass(frozen=True)
class EmbedderSpec:
    """What a worker loads its model from: the model's name or folder, the runtime settings by
    name (device, backend, precision, threads, ...) and the index's sampling and grid."""

    model: str
    runtime: tuple[tuple[str, Any], ...]
    config: IndexConfig

    def build(self) -> IndexWorker:
        return IndexWorker(self)


class IndexWorker:
    """One worker's model and embedder (built once); ``progress()``: frames of the video being
    embedded so far (asked from another thread)."""

    def __init__(self, spec: EmbedderSpec) -> None:
        from streamdet.config import resolve_config
        from streamdet.detect.model import LoadedModel, find_model
        from streamdet.search.embed import FrameEmbedder

        runtime = resolve_config(dict(spec.runtime)).runtime
        model = LoadedModel.open(find_model(spec.model, cache_dir=runtime.cache_dir), runtime)
        self.embedder = FrameEmbedder(model, spec.config)
        self.frames = 0

    def _frames(self, count: int) -> None:
        self.frames = count

    def progress(self) -> int:
        return self.frames

    def __call__(self, path: str) -> FileRows:
        self.frames = 0
        return index_file(path, self.embedder, on_frames=self._frames)


def index_on_ray(
    plan: IndexPlan,
    spec: EmbedderSpec,
    *,
    ray: bool | str = True,
    workers: int | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[IndexProgress], None] | None = None,
) -> tuple[IndexReport, int]:
    """Embed the plan's videos on Ray (a local Ray for ``ray=True``, or the cluster at an
    address) and commit each as it arrives; (the report, the workers used)."""
    import_ray()  # the missing-extra error before anything else
    stop = stop or threading.Event()
    indexed: list[str] = []
    failed = [(p, f"'{p}' does not exist") for p, s in plan.todo if s is None]
    stats = {p: s for p, s in plan.todo if s is not None}
    todo = list(stats)
    if not todo:
        return finish_update(plan, indexed, failed), 0
    total = len(todo)

    def on_done(end: Done[str, FileRows]) -> None:
        if end.result is None:
            failed.append((end.item, end.error or "failed"))
        else:
            commit_rows(plan.root, plan.manifest, plan.files, end.item, stats[end.item], end.result)
            indexed.append(end.item)
        if on_progress is not None:
            on_progress(IndexProgress(len(indexed) + len(failed), total, "Ray workers", 0))

    def on_tick(frames: list[Any]) -> None:
        if on_progress is not None:
            done = len(indexed) + len(failed)
            on_progress(IndexProgress(done, total, "Ray workers", sum(f or 0 for f in frames)))

    runtime = dict(spec.runtime)
    with ray_cluster(None if ray is True else str(ray)) as ray_module:
        shape = worker_shape(
            ray_module.cluster_resources(),
            workers=workers,
            threads=runtime.get("threads"),
            device=runtime.get("device"),
        )
        shape = replace(shape, workers=min(shape.workers, total))
        runtime["threads"] = int(shape.cpus)  # each worker uses the CPUs its actor reserved
        worker_spec = replace(spec, runtime=tuple(sorted(runtime.items())))
        result = map_on_actors(
            ray_module,
            todo,
            worker_spec.build,
            shape,
            stop=stop,
            on_done=on_done,
            on_tick=on_tick,
        )
    return finish_update(plan, indexed, failed, result.not_run), shape.workers
