"""Map a per-item callable over items on Ray actors, each actor holding one worker built once.

``map_on_actors(ray, items, factory, shape)`` starts ``shape.workers`` actors; each calls
``factory()`` once (e.g. load a Detector: the expensive part) and then runs items one at a
time, so a model is loaded once per worker, not once per item. Items go to whichever worker is
free (long and short files balance themselves). Every item ends as one ``Done``: its result,
or a one-line error (the worker caught it, or the worker process died: a new one replaces it),
so one bad item never stops the others.

Workers that expose ``progress()`` are asked for it every ``tick_s`` (actors run two threads:
one runs the item, one answers), for progress bars. ``stop`` (set by Ctrl-C) kills the workers
at once: an item being run leaves only what its worker wrote so far, never a finished-looking
result (the file sinks publish a file only when it is complete).

Reusable: the folder run (``streamdet.distributed.folder``) and any other per-file job
(indexing) share it; nothing here knows about video.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from streamdet.distributed.cluster import WorkerShape
from streamdet.errors import ClusterError, StreamdetError

T = TypeVar("T")
R = TypeVar("R")


def one_line(exc: BaseException) -> str:
    """An error as one line: streamdet's own messages as they are, others with their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, StreamdetError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Holder:
    """The actor's body: builds the worker once, runs items, answers progress questions."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.error: str | None = None
        self.worker: Any = None
        try:
            self.worker = factory()
        except Exception as exc:  # reported by ready(): one line, not a traceback
            self.error = one_line(exc)

    def ready(self) -> str | None:
        """None when the worker was built, else why not."""
        return self.error

    def call(self, item: Any) -> tuple[Any, str | None]:
        """``(result, None)`` or ``(None, one-line error)``."""
        try:
            return self.worker(item), None
        except Exception as exc:
            return None, one_line(exc)

    def progress(self) -> Any:
        report = getattr(self.worker, "progress", None)
        return report() if callable(report) else None


@dataclass(frozen=True)
class Done(Generic[T, R]):
    """One item's end: its result, or why it failed (``error``)."""

    item: T
    result: R | None
    error: str | None


@dataclass(frozen=True)
class MapResult(Generic[T, R]):
    """Every item that ended (``done``, in the order they ended) and those that did not
    (``not_run``: stopped before they started or while running)."""

    done: tuple[Done[T, R], ...]
    not_run: tuple[T, ...]
    stopped: bool


class _Pool:
    def __init__(self, ray: ModuleType, factory: Callable[[], Any], shape: WorkerShape) -> None:
        self.ray = ray
        self.factory = factory
        self.actor_class = ray.remote(Holder).options(
            num_cpus=shape.cpus, num_gpus=shape.gpus, max_concurrency=2, max_restarts=0
        )
        self.actors: list[Any] = []

    def start(self, count: int, stop: threading.Event) -> list[Any]:
        """``count`` new actors, once each has built its worker (a build error is fatal)."""
        fresh = [self.actor_class.remote(self.factory) for _ in range(count)]
        self.actors.extend(fresh)
        pending = {actor.ready.remote(): actor for actor in fresh}
        while pending and not stop.is_set():
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=0.25)
            for ref in ready:
                pending.pop(ref)
                try:
                    error = self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:
                    error = one_line(exc)
                if error is not None:
                    raise ClusterError(f"a Ray worker could not start: {error}")
        return fresh

    def kill(self, actor: Any) -> None:
        with contextlib.suppress(Exception):  # already dead
            self.ray.kill(actor, no_restart=True)

    def kill_all(self) -> None:
        for actor in self.actors:
            self.kill(actor)
        self.actors.clear()


def map_on_actors(
    ray: ModuleType,
    items: Sequence[T],
    factory: Callable[[], Callable[[T], R]],
    shape: WorkerShape,
    *,
    stop: threading.Event | None = None,
    on_done: Callable[[Done[T, R]], None] | None = None,
    on_tick: Callable[[list[Any]], None] | None = None,
    tick_s: float = 0.5,
) -> MapResult[T, R]:
    """Run ``factory()(item)`` for every item on ``shape.workers`` Ray actors (see the module).

    ``factory`` must pickle (a top-level class, a ``functools.partial`` of one). ``on_done`` is
    called as each item ends, ``on_tick`` every ``tick_s`` with the running items' progress
    (what each worker's ``progress()`` returns). The actors are killed before this returns.
    """
    stop = stop or threading.Event()
    queue = list(items)[::-1]  # pop() from the end: first item first
    done: list[Done[T, R]] = []
    running: dict[Any, tuple[Any, T]] = {}  # ref -> (actor, item)
    pool = _Pool(ray, factory, shape)
    try:
        idle = pool.start(min(shape.workers, len(queue)), stop) if queue else []
        last_tick = time.monotonic()
        while (queue or running) and not stop.is_set():
            while idle and queue:
                actor, item = idle.pop(), queue.pop()
                running[actor.call.remote(item)] = (actor, item)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=min(tick_s, 0.25))
            for ref in ready:
                actor, item = running.pop(ref)
                try:
                    result, error = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker process died
                    result, error = None, f"the worker died ({one_line(exc)})"
                    pool.kill(actor)
                    actor = pool.start(1, stop)[0] if queue and not stop.is_set() else None
                end = Done(item, result, error)
                done.append(end)
                if on_done is not None:
                    on_done(end)
                if actor is not None:
                    idle.append(actor)
            now = time.monotonic()
            if on_tick is not None and running and now - last_tick >= tick_s:
                last_tick = now
                on_tick(_progress(ray, [actor for actor, _ in running.values()], tick_s))
    finally:
        pool.kill_all()
    not_run = tuple(item for _, item in running.values()) + tuple(queue[::-1])
    return MapResult(tuple(done), not_run, stop.is_set())


def _progress(ray: ModuleType, actors: list[Any], timeout: float) -> list[Any]:
    """Each actor's ``progress()``; None for one that did not answer in time."""
    refs = [actor.progress.remote() for actor in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    answered = set(ready)
    out: list[Any] = []
    for ref in refs:
        try:
            out.append(ray.get(ref) if ref in answered else None)
        except ray.exceptions.RayError:
            out.append(None)
    return out
