"""Verification's cost: one crop per box, the second crop as a second opinion, two for every box,
the mean of two within 16 crops a frame.

    python benchmarks/bench_verify.py               # four clips, 60 frames at 640x360
    python benchmarks/bench_verify.py --quick       # CI: one clip, 6 frames, 320x180
    python benchmarks/bench_verify.py --model DIR --frames 120

The settings (``VARIANTS``) differ only in the verification crops: ``one crop`` (1.5x each box,
at most 16 boxes a frame: the built-in model's defaults before it took two), ``second opinion``
(the 2x crop only for boxes whose first crop gives their prompt at least 0.05, a box the first
rejects kept when the second gives 0.4, at most 12 boxes: the option docs/benchmarks.md
measures), the same with 16 boxes, ``two crops`` (1.5x and 2x for every box, 16 boxes, the best
one counts) and ``mean of two crops, within 16`` (the built-in model's defaults: the mean of both
crops, the 2x ones for the strongest boxes while a frame's crops stay within 16). Per clip, the
detectors (the built-in model's other settings, temporal reuse on, as ``streamdet run`` has them)
see the same frames frame by frame in turn (``bench_reuse.run_side_by_side``), so the ratios are
side by side in one run and a change in the machine's speed, which on a shared two-core machine
moves a pipeline's frame rate by 20% or more, hits all of them alike.

Reported per clip and setting: milliseconds per frame of ``Detector.detect`` (model time, no
decode or drawing) and its ratio to ``one crop``, crops computed and kept (reuse) per frame,
boxes per frame, and how many of ``one crop``'s boxes each setting keeps (``bench_reuse.compare``).
JSON (machine, versions, settings, command) goes to benchmarks/results, a table to stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from _common import MEDIA, RESULTS_DIR, command_line, logger, parse_size, write_report
from bench_reuse import compare, read_clip, run_side_by_side
from streamdet.detect.detector import Detector
from streamdet.detect.model import DEFAULT_MODEL
from streamdet.errors import StreamdetError
from streamdet.machine import machine_info

CLIPS = (
    "car-detection.mp4",
    "dashcam-highway-1280x720.mp4",
    "road-motorbike-1280x720.mp4",
    "dashcam-highway-960x540.mp4",
)
PROMPTS = ("a red car", "a person", "a white car")  # bench_pipeline's, as bench_modes runs them
#: The settings compared, by name: verification overrides above the model's own.
VARIANTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "one crop": {"verify_margins": (1.5,), "verify_max": 16},
        "second opinion": {
            "verify_margins": (1.5, 2.0),
            "verify_recheck": 0.05,
            "verify_recheck_floor": 0.4,
            "verify_max": 12,
            "verify_combine": "best",
        },
        "second opinion, 16 boxes": {
            "verify_margins": (1.5, 2.0),
            "verify_recheck": 0.05,
            "verify_recheck_floor": 0.4,
            "verify_max": 16,
            "verify_combine": "best",
        },
        "two crops": {
            "verify_margins": (1.5, 2.0),
            "verify_recheck": 0.0,
            "verify_max": 16,
            "verify_combine": "best",
            "verify_budget": 32,
        },
        "mean of two crops, within 16": {
            "verify_margins": (1.5, 2.0),
            "verify_recheck": 0.0,
            "verify_max": 16,
            "verify_combine": "mean",
            "verify_budget": 16,
        },
    }
)
log = logger("bench_verify")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CI: one clip, 6 frames, 320x180")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model (default: the built-in one)")
    p.add_argument("--clips", nargs="+", type=Path, help="clips (default: the four in media/)")
    p.add_argument("--frames", type=int, help="frames per clip (default 60; quick 6)")
    p.add_argument("--size", type=parse_size, help="WxH (default 640x360; quick 320x180)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    p.add_argument("--out", type=Path, help="JSON (default results/bench_verify[-quick].json)")
    args = p.parse_args(argv)
    args.frames = args.frames or (6 if args.quick else 60)
    args.size = args.size or ((320, 180) if args.quick else (640, 360))
    if args.frames < 1 or (args.threads is not None and args.threads < 1):
        p.error("--frames and --threads must be at least 1")
    chosen = args.clips or [MEDIA / name for name in CLIPS[1 if args.quick else 0 :]]
    args.clips = chosen[:1] if args.quick else chosen
    missing = [str(c) for c in args.clips if not c.is_file()]
    if missing:
        p.error(f"no such clip: {', '.join(missing)} (the clips live in ../shared/media)")
    return args


def bench_clip(args: argparse.Namespace, clip: Path) -> dict[str, Any]:
    """One clip through every setting, side by side."""
    frames = read_clip(clip, args.size, args.frames)
    if not frames:
        raise StreamdetError(f"{clip} gave no frames")
    detectors = [
        Detector(args.model, PROMPTS, verify=True, threads=args.threads, **overrides)
        for overrides in VARIANTS.values()
    ]
    runs = run_side_by_side(detectors, frames)
    base_results, base_ms, _ = runs[0]
    rows = []
    for name, (results, ms, work) in zip(VARIANTS, runs, strict=True):
        n = len(frames)
        boxes = sum(len(r.detections) for r in results)
        rows.append(
            {
                "setting": name,
                "ms_per_frame": round(ms, 2),
                "time_ratio": round(ms / base_ms, 3) if base_ms > 0 else None,
                "crops_computed_per_frame": round(work.views_computed / n, 2),
                "crops_kept_per_frame": round(work.views_reused / n, 2),
                "boxes_per_frame": round(boxes / n, 2),
                "vs_one_crop": compare(base_results, results),
            }
        )
        log(f"{clip.name} {name}: {ms:.1f} ms/frame, {work.views_computed / n:.1f} crops/frame")
    return {"clip": clip.name, "frames": len(frames), "rows": rows}


def table(clips: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| clip | setting | ms/frame | x one crop | crops computed/frame | kept/frame"
        " | boxes/frame |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in clips:
        for r in c["rows"]:
            lines.append(
                f"| {c['clip']} | {r['setting']} | {r['ms_per_frame']} | {r['time_ratio']} | "
                f"{r['crops_computed_per_frame']} | {r['crops_kept_per_frame']} | "
                f"{r['boxes_per_frame']} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    try:
        clips = [bench_clip(args, clip) for clip in args.clips]
    except StreamdetError as error:
        print(f"bench_verify: {error}", file=sys.stderr)
        return 1
    report = {
        "benchmark": "bench_verify",
        "date": started.isoformat(timespec="seconds"),
        "command": command_line("bench_verify.py", argv),
        "machine": machine_info(),
        "settings": {
            "model": str(args.model),
            "prompts": list(PROMPTS),
            "size": f"{args.size[0]}x{args.size[1]}",
            "frames": args.frames,
            "variants": {k: dict(v) for k, v in VARIANTS.items()},
        },
        "clips": clips,
        "seconds": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
    }
    out = args.out or RESULTS_DIR / (
        "bench_verify-quick.json" if args.quick else "bench_verify.json"
    )
    write_report(report, out)
    print(table(clips))
    return 0


if __name__ == "__main__":
    sys.exit(main())
