"""A folder of clips through ``streamdet run --ray`` (W workers) against the single-process run:
files per second and the ratio, side by side in one run.

    python benchmarks/bench_ray.py                      # 12 clips of 96 frames, 320x180; W 1,2
    python benchmarks/bench_ray.py --quick              # CI: 4 clips of 16 frames, 160x120; W 2
    python benchmarks/bench_ray.py --files 24 --workers 1,2,4

Ray binds the machine's network address; as root, run it in a loopback-only namespace:
``unshare --net sh -c 'ip link set lo up && python benchmarks/bench_ray.py'``.

The clips are generated street scenes (``streamdet.demo``: cars and people moving, so the
detector finds boxes and verifies them). Each way runs the same folder into a fresh output folder
(MP4 + JSONL per clip, the built-in model's defaults): ``single`` is ``run_folder(ray=False)``,
the same per-file pipeline in this process, one file after another (one model load);
``ray-W`` is ``run_folder(ray=True, workers=W)`` on one local Ray started once before them (its
~8 s start-up is reported apart, not counted: a cluster is started once for many folders), so
each ray time includes starting W workers and loading W models. Every way must write every
frame of every clip. Results: JSON in benchmarks/results and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, command_line, logger, write_report
from streamdet import run_folder
from streamdet.demo import DEMO_PROMPTS, demo_frames
from streamdet.machine import machine_info
from streamdet.sinks import Mp4Sink, probe_video
from streamdet.types import Frame

log = logger("bench_ray")


def make_clips(folder: Path, files: int, frames: int, size: tuple[int, int]) -> None:
    """``files`` generated street clips of ``frames`` frames at ``size`` (width, height)."""
    width, height = size
    for i in range(files):
        sink = Mp4Sink(folder / f"clip{i:03d}.mp4", fps=24.0)
        for k, image in enumerate(demo_frames(frames, height, width, seed=i)):
            sink.write(Frame(image, k, k / 24.0, time.monotonic()))
        sink.close()


def run_way(name: str, clips: Path, out: Path, ray: bool, workers: int | None) -> dict[str, Any]:
    start = time.perf_counter()
    result = run_folder(
        clips, list(DEMO_PROMPTS), video_out=out, jsonl_out=out, ray=ray, workers=workers
    )
    seconds = time.perf_counter() - start
    if result.failed or result.not_run:
        raise SystemExit(f"bench_ray: {name}: {result.summary()}")
    files = len(result.reports)
    return {
        "way": name,
        "workers": result.workers,
        "files": files,
        "frames": result.frames,
        "seconds": round(seconds, 2),
        "files_per_s": round(files / seconds, 3),
        "frames_per_s": round(result.frames / seconds, 1),
        "mp4_frames_ok": all(
            probe_video(out / f"{Path(r.source).stem}.mp4").frames == r.frames_processed
            for r in result.reports
        ),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="4 clips of 16 frames at 160x120; W 2")
    p.add_argument("--files", type=int, help="clips in the folder (default 12; quick 4)")
    p.add_argument("--frames", type=int, help="frames a clip (default 96; quick 16)")
    p.add_argument("--workers", help="Ray workers to try, comma-separated (default 1,2; quick 2)")
    p.add_argument("--out", type=Path, help="JSON report (default benchmarks/results/)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    import ray

    files = args.files or (4 if args.quick else 12)
    frames = args.frames or (16 if args.quick else 96)
    size = (160, 120) if args.quick else (320, 180)
    workers = [int(w) for w in (args.workers or ("2" if args.quick else "1,2")).split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_ray-") as tmp:
        clips = Path(tmp) / "clips"
        clips.mkdir()
        make_clips(clips, files, frames, size)
        log(f"{files} clips of {frames} frames at {size[0]}x{size[1]}")
        rows.append(run_way("single", clips, Path(tmp) / "single", False, None))
        log(f"single: {rows[-1]['seconds']} s")
        start = time.perf_counter()
        ray.init(
            num_cpus=os.cpu_count(),
            object_store_memory=200_000_000,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
        ray_start = time.perf_counter() - start
        cpus = int(ray.cluster_resources().get("CPU", 0))
        try:
            for w in workers:
                rows.append(run_way(f"ray-{w}", clips, Path(tmp) / f"ray{w}", True, w))
                log(f"ray-{w}: {rows[-1]['seconds']} s")
        finally:
            ray.shutdown()
    base = rows[0]["files_per_s"]
    for row in rows:
        row["ratio_to_single"] = round(row["files_per_s"] / base, 2)
    report = {
        "benchmark": "bench_ray",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("bench_ray.py", argv),
        "machine": machine_info(("numpy", "onnxruntime", "av", "ray", "streamdet")),
        "settings": {
            "files": files,
            "frames": frames,
            "size": list(size),
            "prompts": list(DEMO_PROMPTS),
            "ray_cpus": cpus,
        },
        "ray_start_s": round(ray_start, 2),
        "ways": rows,
    }
    out = args.out or RESULTS_DIR / ("bench_ray-quick.json" if args.quick else "bench_ray.json")
    write_report(report, out)
    print("| way | workers | files | frames | s | files/s | frames/s | x single |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['way']} | {r['workers']} | {r['files']} | {r['frames']} | {r['seconds']} | "
            f"{r['files_per_s']} | {r['frames_per_s']} | {r['ratio_to_single']} |"
        )
    print(f"(Ray start-up, not counted: {ray_start:.1f} s; {cpus} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
