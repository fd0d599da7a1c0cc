"""The ``streamdet index --ray`` scenarios, run once in a loopback-only network namespace (see
test_ray_index.py): one local Ray cluster for all of them, results as JSON for the tests.

Usage: python ray_index_scenarios.py WORKDIR RESULTS.json
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import ray
from ray_helpers import cli, start_test_ray

from streamdet.search import VideoIndex
from streamdet.search.store import read_manifest, read_part
from streamdet.synth.timeline import Appearance, timed_video, write_video

CLIPS = {
    "red": Appearance("a red circle", 2.0, 5.0),
    "star": Appearance("a blue star", 1.0, 4.0),
    "triangle": Appearance("a green triangle", 3.0, 6.0),
}


def make_clip(path: Path, seed: int, appearance: Appearance) -> None:
    video = timed_video(
        np.random.default_rng(seed), (appearance,), seconds=8, fps=4, width=320, height=180,
        size="large", exclude=tuple(a.prompt for a in CLIPS.values()),
    )  # fmt: skip
    write_video(path, [s.image for s in video.scenes], video.fps)


def rows_of(folder: Path) -> dict:
    """Per video (by name): its times, boxes and embeddings, as lists."""
    manifest = read_manifest(folder)
    out = {}
    for path, entry in manifest.files.items():
        part = read_part(folder, entry.part, manifest.model.checksum)
        out[Path(path).name] = {
            "times": part.times.tolist(),
            "boxes": part.boxes.tolist(),
            "embeddings": part.embeddings.astype(float).tolist(),
        }
    return out


def top1(folder: Path) -> dict:
    index = VideoIndex(folder)
    out = {}
    for appearance in CLIPS.values():
        hit = index.search(appearance.prompt, k=1)[0]
        out[appearance.prompt] = [Path(hit.file).name, hit.time, list(hit.box)]
    return out


def report_of(report) -> dict:
    return {
        "indexed": sorted(Path(p).name for p in report.indexed),
        "skipped": sorted(Path(p).name for p in report.skipped),
        "failed": {Path(p).name: why for p, why in report.failed},
        "files": report.files,
        "rows": report.rows,
    }


def main(work: Path, results_path: Path) -> None:
    out: dict = {"seconds": {}}
    t0 = time.monotonic()

    def lap(name: str) -> None:
        out["seconds"][name] = round(time.monotonic() - t0, 1)

    clips = work / "clips"
    clips.mkdir(parents=True)
    for seed, (name, appearance) in enumerate(CLIPS.items()):
        make_clip(clips / f"{name}.mp4", seed, appearance)

    # the reference: the same videos indexed in this process
    VideoIndex(work / "ref").add(clips)
    out["reference"] = {"rows": rows_of(work / "ref"), "top1": top1(work / "ref")}
    lap("reference")

    out["node_ip"] = start_test_ray()
    lap("ray")

    # 1. the folder on two Ray workers
    report = VideoIndex(work / "on_ray").add(clips, ray=True, workers=2)
    out["first"] = report_of(report)
    out["first"]["rows_of"] = rows_of(work / "on_ray")
    out["first"]["top1"] = top1(work / "on_ray")
    lap("first")

    # 2. again: nothing to embed, nothing rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (work / "on_ray").iterdir()}
    out["again"] = report_of(VideoIndex(work / "on_ray").add(clips, ray=True))
    after = {p.name: p.stat().st_mtime_ns for p in (work / "on_ray").iterdir()}
    parts = [k for k in before if k.endswith(".parquet")]
    out["again"]["parts_unchanged"] = bool(parts) and all(before[k] == after[k] for k in parts)
    lap("again")

    # 3. a corrupt file among good ones, a new file added to an index: only it is embedded
    shutil.copy(clips / "red.mp4", work / "mixed_red.mp4")
    mixed = work / "mixed"
    mixed.mkdir()
    shutil.copy(clips / "red.mp4", mixed / "red.mp4")
    (mixed / "bad.mp4").write_bytes(b"this is not a video" * 50)
    out["corrupt"] = report_of(VideoIndex(work / "on_ray").add(mixed, ray=True))
    lap("corrupt")

    # 4. the command line joining this cluster by its address, and an unreachable one
    address = ray.get_runtime_context().gcs_address
    out["cli"] = cli("index", str(clips), "-o", str(work / "cli_index"), "--ray", address)
    out["cli"]["address"] = address
    out["cli"]["top1"] = top1(work / "cli_index") if (work / "cli_index").exists() else None
    out["unreachable"] = cli(
        "index", str(clips), "-o", str(work / "x_index"), "--ray", "127.0.0.1:1"
    )
    out["unreachable"]["exists"] = (work / "x_index" / "manifest.json").exists()
    lap("cli")

    ray.shutdown()
    results_path.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
