"""Which inputs of a folder run still need work: the resumable run's rule, decided up front.

The sinks write every file to a hidden partial file and move it to its path only when it is
complete (``streamdet.sinks.publish``), so a file at an output path is a finished one. Hence:

* an input whose outputs all exist is finished and skipped;
* an input with some outputs missing is run again, writing only the missing ones (a finished
  output is never rewritten: its content would be the same);
* hidden partial files of a killed run (``.NAME.PID.partial`` beside a missing output, from a
  process that no longer runs on this machine) are removed before the input is redone.

``overwrite`` redoes everything. Only file outputs count: standard output is not resumable.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from streamdet.pipeline.plan import InputPlan
from streamdet.sinks import STDOUT


@dataclass(frozen=True)
class ResumePlan:
    """What a resumable run does: ``todo`` (each with only its missing outputs), ``finished``
    (every output exists: skipped) and ``stale`` (partial files of a killed run, to remove)."""

    todo: tuple[InputPlan, ...]
    finished: tuple[InputPlan, ...]
    stale: tuple[Path, ...]


def output_paths(plan: InputPlan) -> list[Path]:
    """The files ``plan`` writes (standard output is not a file)."""
    paths = [plan.video] if plan.video is not None else []
    if plan.jsonl not in (None, STDOUT):
        paths.append(Path(plan.jsonl))
    return paths


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def partial_files(target: Path) -> list[tuple[Path, int]]:
    """The hidden partial files of ``target`` (``.NAME.PID.partial``), with their writers' ids."""
    found = []
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        pid_text = partial.name[len(target.name) + 2 : -len(".partial")]
        if pid_text.isdigit():
            found.append((partial, int(pid_text)))
    return sorted(found)


def stale_partials(target: Path) -> list[Path]:
    """Hidden partial files of ``target`` left by processes that no longer run on this machine
    (a live writer's partial file is left alone)."""
    return [path for path, pid in partial_files(target) if not _pid_alive(pid)]


def remove_partials_when_gone(targets: list[Path], timeout: float = 5.0) -> int:
    """Remove the partial files of ``targets`` once their writers have ended (killed workers end
    a moment after they are told to); a writer still running after ``timeout`` keeps its file
    (the next run removes it). How many were removed."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = [pid for t in targets for _, pid in partial_files(t) if _pid_alive(pid)]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return sum(remove_files(stale_partials(t)) for t in targets)


def resume_plan(plans: tuple[InputPlan, ...] | list[InputPlan], *, overwrite: bool) -> ResumePlan:
    """Split ``plans`` into inputs to run (with their missing outputs) and finished ones."""
    todo: list[InputPlan] = []
    finished: list[InputPlan] = []
    stale: list[Path] = []
    for plan in plans:
        if overwrite:
            todo.append(plan)
            continue
        video = plan.video if plan.video is not None and not plan.video.exists() else None
        jsonl = plan.jsonl
        if jsonl not in (None, STDOUT) and Path(jsonl).exists():
            jsonl = None
        pending = replace(plan, video=video, jsonl=jsonl)
        if not output_paths(pending) and pending.jsonl != STDOUT:
            finished.append(plan)
            continue
        todo.append(pending)
    for plan in todo:
        for target in output_paths(plan):
            stale.extend(stale_partials(target))
    return ResumePlan(tuple(todo), tuple(finished), tuple(stale))


def remove_files(paths: tuple[Path, ...] | list[Path]) -> int:
    """Remove ``paths`` (already gone is fine); how many were removed."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
