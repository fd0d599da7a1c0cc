"""The Ray folder-run scenarios, run once in a loopback-only network namespace (see
test_ray_folder.py): one local Ray cluster for all of them, results as JSON for the tests.

Usage: python ray_scenarios.py WORKDIR RESULTS.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # video_helpers

import ray  # noqa: E402
from ray_helpers import cli, start_test_ray  # noqa: E402
from video_helpers import make_video  # noqa: E402

from streamdet import run_folder  # noqa: E402
from streamdet.demo import DEMO_PROMPTS, demo_frames  # noqa: E402
from streamdet.distributed.folder import DetectorSpec, run_planned  # noqa: E402
from streamdet.pipeline.job import RunJob, plan_job  # noqa: E402
from streamdet.pipeline.progress import FilesTerminal  # noqa: E402
from streamdet.sinks import probe_video  # noqa: E402

FRAMES = {"c0": 10, "c1": 14, "c2": 8}
SIZE = (160, 120)


def clip(path: Path, n: int, seed: int) -> Path:
    frames = demo_frames(n, SIZE[1], SIZE[0], seed=seed)
    return make_video(path, n, size=SIZE, picture=lambda i, w, h: frames[i])


def frames_of(path: Path) -> int | None:
    return probe_video(path).frames if path.exists() else None


def text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def outcome(result) -> dict:
    return {
        "done": sorted(Path(r.source).name for r in result.reports),
        "skipped": sorted(Path(s).name for s in result.skipped),
        "failed": {Path(s).name: why for s, why in result.failed},
        "not_run": sorted(Path(s).name for s in result.not_run),
        "workers": result.workers,
        "removed_partials": result.removed_partials,
        "interrupted": result.interrupted,
        "summary": result.summary(),
    }


def dead_pid() -> int:
    """The id of a process that has ended (for a partial file left by a killed run)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class StopAfterFirst(FilesTerminal):
    """Sets the run's stop event (as Ctrl-C does) when the first file is done."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(quiet=True)
        self.stop = stop

    def file_done(self, line: str, frames: int) -> None:
        super().file_done(line, frames)
        self.stop.set()


def main(work: Path, results_path: Path) -> None:
    out: dict = {"seconds": {}}
    t0 = time.monotonic()

    def lap(name: str) -> None:
        out["seconds"][name] = round(time.monotonic() - t0, 1)

    clips = work / "clips"
    clips.mkdir(parents=True)
    for seed, (name, n) in enumerate(FRAMES.items()):
        clip(clips / f"{name}.mp4", n, seed)
    prompts = list(DEMO_PROMPTS)
    p_flags = [flag for prompt in prompts for flag in ("-p", prompt)]

    out["node_ip"] = start_test_ray()
    lap("node_ip")

    # 1. the folder: one MP4 and one JSONL per input
    first = work / "out"
    result = run_folder(clips, prompts, video_out=first, jsonl_out=first, ray=True, workers=2)
    out["first"] = outcome(result)
    out["first"]["inputs"] = {name: frames_of(clips / f"{name}.mp4") for name in FRAMES}
    out["first"]["mp4"] = {name: frames_of(first / f"{name}.mp4") for name in FRAMES}
    out["first"]["jsonl"] = {name: text(first / f"{name}.jsonl") for name in FRAMES}
    out["first"]["listing"] = listing(first)
    lap("first")

    # 2. the single-process run of the same files, for comparison
    ref = work / "ref"
    out["reference"] = cli("run", str(clips), *p_flags, "--jsonl", f"{ref}/")
    out["reference"]["jsonl"] = {name: text(ref / f"{name}.jsonl") for name in FRAMES}
    lap("reference")

    # 3. again: everything is finished
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    result = run_folder(clips, prompts, video_out=first, jsonl_out=first, ray=True)
    out["again"] = outcome(result)
    out["again"]["unchanged"] = mtimes == {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    lap("again")

    # 4. a removed output and a killed run's partial file are redone; finished files untouched
    (first / "c1.jsonl").unlink()
    (first / "c2.mp4").unlink()
    (first / f".c2.mp4.{dead_pid()}.partial").write_bytes(b"half an mp4")
    kept = {n: (first / n).stat().st_mtime_ns for n in ("c1.mp4", "c2.jsonl", "c0.mp4")}
    result = run_folder(clips, prompts, video_out=first, jsonl_out=first, ray=True)
    out["resume"] = outcome(result)
    out["resume"]["kept"] = kept == {n: (first / n).stat().st_mtime_ns for n in kept}
    out["resume"]["listing"] = listing(first)
    out["resume"]["c1_jsonl"] = text(first / "c1.jsonl")
    out["resume"]["c2_mp4"] = frames_of(first / "c2.mp4")
    lap("resume")

    # 5. a corrupt file among good ones (a glob this time)
    mixed = work / "mixed"
    mixed.mkdir()
    shutil.copy(clips / "c0.mp4", mixed / "c0.mp4")
    (mixed / "bad.mp4").write_bytes(b"this is not a video" * 50)
    result = run_folder(f"{mixed}/*.mp4", prompts, jsonl_out=work / "out_mixed", ray=True)
    out["corrupt"] = outcome(result)
    out["corrupt"]["listing"] = listing(work / "out_mixed")
    lap("corrupt")

    # 6. a stop (Ctrl-C) while a long file runs: it leaves nothing; the next run finishes it
    stopping = work / "stopping"
    stopping.mkdir()
    make_video(stopping / "a_long.mp4", 600, size=(64, 48))
    make_video(stopping / "b_short.mp4", 4, size=(64, 48))
    out_stop = work / "out_stop"
    planned = plan_job(
        RunJob(source=str(stopping), prompts=tuple(prompts), jsonl_out=str(out_stop)),
        resume=True,
    )
    stop = threading.Event()
    result = run_planned(
        planned,
        DetectorSpec.of("streamdet/scenes-clip", None, {}),
        workers=2,
        stop=stop,
        terminal=StopAfterFirst(stop),
    )
    out["stop"] = outcome(result)
    out["stop"]["listing"] = listing(out_stop)
    lap("stop")
    result = run_folder(stopping, prompts, jsonl_out=out_stop, ray=True)
    out["stop_again"] = outcome(result)
    long_jsonl = text(out_stop / "a_long.jsonl") or ""
    out["stop_again"]["long_lines"] = len(long_jsonl.splitlines())
    lap("stop_again")

    # 7. the command line, joining this cluster by its address
    address = ray.get_runtime_context().gcs_address
    out["cli"] = cli("run", str(clips), *p_flags, "--jsonl", f"{work}/out_cli/", "--ray", address)
    out["cli"]["address"] = address
    out["cli"]["jsonl"] = {name: text(work / "out_cli" / f"{name}.jsonl") for name in FRAMES}
    lap("cli")

    # 8. an address where no Ray listens
    out["unreachable"] = cli(
        "run", str(clips), *p_flags, "--jsonl", f"{work}/out_x/", "--ray", "127.0.0.1:1"
    )
    out["unreachable"]["listing"] = listing(work / "out_x")
    lap("unreachable")

    ray.shutdown()
    results_path.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
