"""The live MP4 (fragmented, written at its path) against the file MP4 (faststart, published on
close): what the live rule costs in encode time and size, and how far a reader trails the run.

    python benchmarks/bench_outputs.py                 # the real clips, 240 frames, 640x360
    python benchmarks/bench_outputs.py --quick         # CI: a generated clip, 48 frames, 320x180
    python benchmarks/bench_outputs.py --intervals 0.5,1,2

Every clip's frames are decoded once and resized to ``--size``; then, round by round, the same
frames are written by ``Mp4Sink(live=False)`` (the file rule) and by ``Mp4Sink(live=True,
keyframe_interval=T)`` for each T in ``--intervals``, in turn, at the clip's own frame rate, so the
ratios are side by side in one run. Reported per clip and way:

* milliseconds per frame of ``write`` plus ``close`` (encode and mux; the frames are in memory),
  and the ratio to the file rule;
* the file's size in bytes and its ratio to the file rule (keyframes every T seconds cost bits);
* the keyframes in the file, and ``frames``: what PyAV decodes from the finished file (it must
  equal the frames written);
* for the live ways, how far a reader trails the writer: after every frame written, the frames
  a reader finds complete in the file (video packets it can demux; the decoder gets each of
  them), and the largest and mean gap to the frames written, in frames and in seconds of video.

Results go to JSON (machine, versions, settings, command) in benchmarks/results and a markdown
table to stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from _common import (
    MEDIA,
    RESULTS_DIR,
    command_line,
    generated_frame,
    logger,
    parse_size,
    write_report,
)
from streamdet.machine import machine_info
from streamdet.sinks import Mp4Sink, probe_video
from streamdet.types import Frame

CLIPS = ("car-detection.mp4", "dashcam-highway-1280x720.mp4", "road-motorbike-1280x720.mp4")
log = logger("bench_outputs")


def parse_intervals(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"intervals must look like 0.5,1,2, got {text!r}"
        ) from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"intervals must be positive seconds, got {text!r}")
    return values


def read_clip(path: Path, size: tuple[int, int], count: int) -> tuple[list[np.ndarray], float]:
    """The first ``count`` frames of ``path`` at ``size`` and the clip's frame rate."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="bgr24")
            frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames, fps


def generated_clip(size: tuple[int, int], count: int) -> list[np.ndarray]:
    """A generated scene panning two pixels a frame (something for the encoder to code)."""
    base = generated_frame(size[0] + 2 * count, size[1])
    return [np.ascontiguousarray(base[:, 2 * i : 2 * i + size[0]]) for i in range(count)]


def packets_in(path: Path) -> int:
    """Video packets a reader can demux from ``path`` now (0 before the header is there)."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for p in container.demux(video=0) if p.size)
    except av.error.FFmpegError:
        return 0


def keyframes_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size and p.is_keyframe)


def write_once(
    frames: list[np.ndarray], fps: float, out: Path, interval: float | None, trail: bool
) -> dict[str, Any]:
    """Write ``frames`` with one rule (``interval`` None: the file rule); time it and, when asked,
    measure the trail (untimed: the reader runs between two writes)."""
    live = interval is not None
    sink = Mp4Sink(out, fps=fps, live=live, keyframe_interval=interval or 1.0, overwrite=True)
    gaps: list[int] = []
    elapsed = 0.0
    for i, image in enumerate(frames):
        start = time.perf_counter()
        sink.write(Frame(image, i, i / fps, 0.0))
        elapsed += time.perf_counter() - start
        if trail and live:
            gaps.append(i + 1 - packets_in(out))
    start = time.perf_counter()
    sink.close()
    elapsed += time.perf_counter() - start
    row: dict[str, Any] = {"ms_per_frame": elapsed * 1e3 / len(frames), "bytes": out.stat().st_size}
    if gaps:
        row["trail_frames_max"] = max(gaps)
        row["trail_frames_mean"] = round(float(np.mean(gaps)), 1)
        row["trail_s_max"] = round(max(gaps) / fps, 2)
        row["trail_s_mean"] = round(float(np.mean(gaps)) / fps, 2)
    return row


def bench_clip(
    name: str, frames: list[np.ndarray], fps: float, intervals: Sequence[float], rounds: int
) -> dict[str, Any]:
    ways: list[tuple[str, float | None]] = [("file", None)]
    ways += [(f"live {t:g}s", t) for t in intervals]
    rows: dict[str, dict[str, Any]] = {}
    times: dict[str, list[float]] = {way: [] for way, _ in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # round by round: a change of the machine's speed hits all alike
            for way, interval in ways:
                out = Path(tmp) / f"{way.replace(' ', '_')}.mp4"
                row = write_once(frames, fps, out, interval, trail=r == 0)
                times[way].append(row.pop("ms_per_frame"))
                if r == 0:
                    row["frames"] = probe_video(out).frames
                    row["keyframes"] = keyframes_in(out)
                    row["fragmented"] = b"moof" in out.read_bytes()
                    rows[way] = row
    base_ms = float(np.median(times["file"]))
    for way, row in rows.items():
        ms = float(np.median(times[way]))
        row["ms_per_frame"] = round(ms, 2)
        row["time_ratio"] = round(ms / base_ms, 2)  # the unrounded time: the file's own is 1.0
        row["size_ratio"] = round(row["bytes"] / rows["file"]["bytes"], 2)
    log(f"{name}: {len(frames)} frames at {fps:g} fps done")
    return {"clip": name, "frames": len(frames), "fps": fps, "ways": rows}


def table(reports: list[dict[str, Any]]) -> str:
    columns = ["clip", "way", "ms/frame", "x file", "bytes", "x file", "keyframes", "frames"]
    columns += ["trail max (s)", "trail mean (s)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for clip in reports:
        for way, row in clip["ways"].items():
            lines.append(
                f"| {clip['clip']} | {way} | {row['ms_per_frame']} | {row['time_ratio']} | "
                f"{row['bytes']} | {row['size_ratio']} | {row['keyframes']} | {row['frames']} | "
                f"{row.get('trail_s_max', '-')} | {row.get('trail_s_mean', '-')} |"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a generated clip, 48 frames, 320x180")
    p.add_argument("--clips", type=Path, nargs="*", help="video files (default: ../shared/media)")
    p.add_argument("--frames", type=int, help="frames per clip (default 240; 48 with --quick)")
    p.add_argument("--size", type=parse_size, help="WxH (default 640x360; 320x180 with --quick)")
    p.add_argument(
        "--intervals",
        type=parse_intervals,
        default=(1.0, 2.0),
        help="live keyframe intervals in seconds (default 1,2)",
    )
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3; 1 with --quick)")
    p.add_argument("--out", type=Path, help="JSON report path")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    size = args.size or ((320, 180) if args.quick else (640, 360))
    count = args.frames or (48 if args.quick else 240)
    rounds = 1 if args.quick else max(1, args.rounds)
    if args.clips is not None:
        clips = list(args.clips)
    elif args.quick:
        clips = []
    else:
        clips = [MEDIA / name for name in CLIPS if (MEDIA / name).is_file()]
    inputs: list[tuple[str, list[np.ndarray], float]] = []
    for clip in clips:
        frames, fps = read_clip(clip, size, count)
        if not frames:
            print(f"bench_outputs: no frames could be read from {clip}", file=sys.stderr)
            return 2
        inputs.append((clip.name, frames, fps))
    if not inputs:
        inputs.append(("generated", generated_clip(size, count), 24.0))
    reports = [bench_clip(name, fr, fps, args.intervals, rounds) for name, fr, fps in inputs]
    out = args.out or RESULTS_DIR / (
        "bench_outputs-quick.json" if args.quick else "bench_outputs.json"
    )
    write_report(
        {
            "benchmark": "bench_outputs",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": command_line("bench_outputs.py", argv),
            "machine": machine_info(("numpy", "av", "streamdet")),
            "settings": {
                "size": f"{size[0]}x{size[1]}",
                "frames_per_clip": count,
                "intervals_s": list(args.intervals),
                "rounds": rounds,
                "codec": "libx264 crf 23 veryfast (Mp4Sink's defaults)",
            },
            "clips": reports,
        },
        out,
    )
    print(table(reports))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
