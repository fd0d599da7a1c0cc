"""Temporal reuse: windows computed with and without it, and how far its outputs move.

    python benchmarks/bench_reuse.py                # car-detection, dashcam, synthetic; 60 frames
    python benchmarks/bench_reuse.py --quick        # CI: one clip, 8 frames, 320x180
    python benchmarks/bench_reuse.py --tolerances 0,0.02,0.04,0.08 --frames 120

Clips: a static camera (../shared/media/car-detection.mp4), a moving one (dashcam-highway), and
``synthetic``: a still scene of the generator's objects (which the built-in model knows, unlike
real cars) drifting a few pixels per frame, with Gaussian sensor noise (sigma 2 grey levels) on
every frame, so that its boxes are real detections. Every clip's frames are decoded (or drawn)
once and resized to ``--size``; one detector without reuse
(``reuse=False``) and one per tolerance in ``--tolerances`` (``reuse=T``) run over the same frames
in the same process, frame by frame in turn, so the ratios are side by side in one run and a
change in the machine's speed hits all alike; each detector first sees two frames untimed (then
``reset``), so no run pays the warm-up. The detector
takes ``streamdet run``'s flags (``--model``, ``--fast``, ``--stride``, ...; default: the built-in
model with its own settings); ``--reuse-refresh`` and ``--reuse-motion`` apply to every reuse run.

Reported per clip and tolerance:

* windows computed and reused (summed ``FrameResult.work``), the ratio of windows computed without
  reuse to with it, the same for verification crops, and milliseconds per frame of
  ``Detector.detect`` (model time: no decode, no drawing);
* how far the outputs are from those without reuse: the largest and the mean absolute heatmap
  difference over all frames and cells (heatmaps are probabilities in [0, 1]), and box agreement:
  boxes of the same prompt matched at IoU >= 0.5, agreement = matched pairs / the larger box count,
  summed over frames (1.0 = the same boxes), with the largest confidence difference of a match;
* for scale, the frame-to-frame change of the outputs WITHOUT reuse (mean absolute heatmap
  difference between consecutive frames, and the same box agreement between consecutive
  frames): reuse is within tolerance when its difference stays well below what the detector's
  own output moves from one frame to the next.

Results go to JSON (machine, versions, settings, command) in benchmarks/results and a markdown
table to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    MEDIA,
    RESULTS_DIR,
    command_line,
    logger,
    parse_size,
    read_clip,
    write_report,
)
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.detect.boxes import box_iou
from streamdet.detect.detector import Detector
from streamdet.errors import StreamdetError
from streamdet.machine import machine_info
from streamdet.types import FrameResult, Workload

CLIPS = ("car-detection.mp4", "dashcam-highway-1280x720.mp4", "synthetic")
PROMPTS = ("a car", "a white car", "a black car", "a person", "a tree", "a house")
#: What the synthetic clip holds (and is asked for), besides random objects.
SYNTHETIC = ("a red car", "a person", "a green tree", "a blue circle")
#: Sensor noise added to every synthetic frame (grey levels, Gaussian sigma).
NOISE_SIGMA = 2.0
log = logger("bench_reuse")


def parse_tolerances(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"tolerances must look like 0,0.04 (numbers in 0..1), got {text!r}"
        ) from None
    if not values or any(not 0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"tolerances must be numbers in 0..1, got {text!r}")
    return values


def synthetic_clip(size: tuple[int, int], frames: int, seed: int = 0) -> list[np.ndarray]:
    """A still camera on a generated scene whose objects drift 1.5 pixels per frame, with
    Gaussian sensor noise on every frame."""
    from streamdet.synth.scenes import moving_video

    rng = np.random.default_rng(seed)
    w, h = size
    scenes = moving_video(rng, frames, h, w, speed=1.5, n_objects=(2, 3), include=SYNTHETIC)
    out = []
    for scene in scenes:
        noise = rng.normal(0.0, NOISE_SIGMA, scene.image.shape)
        out.append(np.clip(scene.image + noise, 0, 255).astype(np.uint8))
    return out


def run_side_by_side(
    detectors: Sequence[Detector], frames: Sequence[np.ndarray]
) -> list[tuple[list[FrameResult], float, Workload]]:
    """Every frame through every detector, frame by frame in turn (so a change in the machine's
    speed hits all alike): per detector its results, mean ms per frame and summed work."""
    for detector in detectors:
        for image in frames[:2]:  # warm-up, untimed; then the detector forgets these frames
            detector.detect(image)
        detector.reset()
    results: list[list[FrameResult]] = [[] for _ in detectors]
    seconds = [0.0] * len(detectors)
    work = [Workload() for _ in detectors]
    for image in frames:
        for i, detector in enumerate(detectors):
            start = time.perf_counter()
            result = detector.detect(image)
            seconds[i] += time.perf_counter() - start
            results[i].append(result)
            work[i] = work[i] + result.work
    count = max(1, len(frames))
    return [(results[i], seconds[i] * 1e3 / count, work[i]) for i in range(len(detectors))]


def box_agreement(a: FrameResult, b: FrameResult) -> tuple[int, int, float]:
    """Boxes of the same prompt matched greedily at IoU >= 0.5: (matched pairs, the larger box
    count, the largest confidence difference of a matched pair)."""
    da, db = a.detections, b.detections
    larger = max(len(da), len(db))
    if not len(da) or not len(db):
        return 0, larger, 0.0
    iou = box_iou(da.xyxy, db.xyxy)
    iou[da.class_id[:, None] != db.class_id[None, :]] = 0.0
    matched, worst = 0, 0.0
    while iou.size and iou.max() >= 0.5:
        i, j = np.unravel_index(int(np.argmax(iou)), iou.shape)
        matched += 1
        worst = max(worst, abs(float(da.confidence[i]) - float(db.confidence[j])))
        iou[i, :] = 0.0
        iou[:, j] = 0.0
    return matched, larger, worst


def compare(base: Sequence[FrameResult], other: Sequence[FrameResult]) -> dict[str, Any]:
    """How far ``other`` is from ``base``, frame by frame (see the module docstring)."""
    diffs = [np.abs(a.heatmaps - b.heatmaps) for a, b in zip(base, other, strict=True)]
    matched = larger = 0
    worst = 0.0
    for a, b in zip(base, other, strict=True):
        m, n, w = box_agreement(a, b)
        matched, larger, worst = matched + m, larger + n, max(worst, w)
    return {
        "heatmap_max_abs_diff": round(float(max(d.max() for d in diffs)), 4) if diffs else 0.0,
        "heatmap_mean_abs_diff": round(float(np.mean([d.mean() for d in diffs])), 5)
        if diffs
        else 0.0,
        "boxes_matched": matched,
        "boxes_larger_count": larger,
        "box_agreement": round(matched / larger, 4) if larger else 1.0,
        "box_confidence_max_diff": round(worst, 4),
    }


def bench_clip(args: argparse.Namespace, clip: Path, frames: list[np.ndarray]) -> dict[str, Any]:
    """One clip: the detector without reuse, then one per tolerance, on the same frames."""
    chosen = settings_from_args(args)
    overrides = {k: v for k, v in chosen.overrides.items() if k != "reuse"}

    prompts = SYNTHETIC if clip.name == "synthetic" else PROMPTS

    def detector(reuse: float | bool) -> Detector:
        return Detector(args.model, prompts, preset=chosen.preset, **overrides, reuse=reuse)

    base_det = detector(False)
    runs = run_side_by_side([base_det, *(detector(t) for t in args.tolerances)], frames)
    base, base_ms, base_work = runs[0]
    log(f"{clip.name}: no reuse {base_ms:.0f} ms/frame, {base_work.windows_computed} windows")
    jitter = compare(base[:-1], base[1:])
    rows = []
    for tolerance, (results, ms, work) in zip(args.tolerances, runs[1:], strict=True):
        row = {
            "tolerance": tolerance,
            "ms_per_frame": round(ms, 1),
            "speedup": round(base_ms / ms, 2) if ms > 0 else None,
            **work.to_dict(),
            "windows_ratio": round(base_work.windows_computed / max(1, work.windows_computed), 2),
            "views_ratio": round(base_work.views_computed / max(1, work.views_computed), 2),
            **compare(base, results),
        }
        rows.append(row)
        log(
            f"{clip.name}: reuse {tolerance}: {row['windows_ratio']}x fewer windows, "
            f"heatmap max diff {row['heatmap_max_abs_diff']}, boxes {row['box_agreement']}"
        )
    return {
        "clip": clip.name,
        "prompts": list(prompts),
        "frames": len(frames),
        "no_reuse": {"ms_per_frame": round(base_ms, 1), **base_work.to_dict()},
        "frame_to_frame_without_reuse": jitter,
        "config": base_det.config.to_dict(),
        "reuse": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| clip | tolerance | windows computed (no reuse) | windows ratio | views ratio | "
        "ms/frame (no reuse) | heatmap max / mean diff | box agreement |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["clips"]:
        base = c["no_reuse"]
        for r in c["reuse"]:
            lines.append(
                f"| {c['clip']} | {r['tolerance']} | {r['windows_computed']} "
                f"({base['windows_computed']}) | {r['windows_ratio']}x | {r['views_ratio']}x | "
                f"{r['ms_per_frame']} ({base['ms_per_frame']}) | {r['heatmap_max_abs_diff']} / "
                f"{r['heatmap_mean_abs_diff']} | {r['box_agreement']} |"
            )
        j = c["frame_to_frame_without_reuse"]
        lines.append(
            f"| {c['clip']} | frame to frame, no reuse | | | | | {j['heatmap_max_abs_diff']} / "
            f"{j['heatmap_mean_abs_diff']} | {j['box_agreement']} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CI setting: one clip, 8 frames, 320x180")
    p.add_argument(
        "--clips", nargs="*", type=Path, help=f"clips or 'synthetic' (default: {', '.join(CLIPS)})"
    )
    p.add_argument("--size", type=parse_size, help="WxH (default 640x360, quick 320x180)")
    p.add_argument("--frames", type=int, help="frames per clip (default 60, quick 8)")
    p.add_argument(
        "--tolerances",
        type=parse_tolerances,
        default=(0.0, 0.01, 0.02, 0.04),
        help="reuse tolerances to run, e.g. 0,0.04 (default 0,0.01,0.02,0.04)",
    )
    p.add_argument("--out", type=Path, help="JSON (default results/bench_reuse[-quick].json)")
    add_detector_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    size = args.size or ((320, 180) if args.quick else (640, 360))
    count = args.frames or (8 if args.quick else 60)
    clips = args.clips or [
        MEDIA / name for name in CLIPS if name == "synthetic" or (MEDIA / name).is_file()
    ]
    if args.quick:
        clips = clips[:1]
    if not clips:
        print(f"bench_reuse: no clips given and none in {MEDIA}", file=sys.stderr)
        return 2
    out = args.out or RESULTS_DIR / ("bench_reuse-quick.json" if args.quick else "bench_reuse.json")
    reports = []
    try:
        for clip in clips:
            if clip.name == "synthetic" and not clip.is_file():
                frames = synthetic_clip(size, count)
            else:
                frames = read_clip(clip, size, count)
            if not frames:
                print(f"bench_reuse: no frames could be read from {clip}", file=sys.stderr)
                return 2
            reports.append(bench_clip(args, clip, frames))
    except StreamdetError as error:  # what was wrong and what to do, not a traceback
        print(f"bench_reuse: {error}", file=sys.stderr)
        return 2
    report = {
        "benchmark": "bench_reuse",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("bench_reuse.py", argv),
        "machine": machine_info(("numpy", "onnxruntime", "cv2", "streamdet")),
        "settings": {
            "model": str(args.model),
            "noise_sigma_synthetic": NOISE_SIGMA,
            "size": f"{size[0]}x{size[1]}",
            "frames_per_clip": count,
            "tolerances": list(args.tolerances),
        },
        "clips": reports,
    }
    write_report(report, out)
    print(markdown(report))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
