"""Tracking: identities (MOTA, IDF1) on generated clips, and steadiness with vs without tracking.

    python benchmarks/bench_tracking.py           # 4 clips x 60 frames, 6 quality videos x 48
    python benchmarks/bench_tracking.py --quick   # CI: 2 clips x 16 frames, 3 videos x 8, 320x180
    python benchmarks/bench_tracking.py --sweep   # also a grid of tracker settings (defaults)

The detector (``streamdet run``'s flags; default: the built-in model with its own settings) runs
once over every frame; the tracker is applied afterwards to the same results, so "tracked" and
"untracked" are the same detections with and without ``streamdet.track.Tracker`` (tracking is
post-processing: it costs no model time, and its own ms per frame are reported).

* Identity: ``streamdet.quality.tracking``'s clips (two objects of one prompt crossing, shapes
  crossing, objects leaving the frame and coming back, objects entering and exiting) scored by
  motmetrics: MOTA, IDF1, id switches, fragmentations (IoU >= 0.5, objects less than half in
  the frame ignored).
* Steadiness: the quality benchmark's drifting videos (``streamdet.quality.dataset``, their
  prompt sets) scored by its ``stability`` (blink: the fraction of consecutive frame pairs where
  an object's box appears or disappears; jitter: the frame-to-frame change of the box relative
  to the true box, in box sizes; found: frames with a box on the object) and AP50 on those video
  frames (pycocotools), untracked and tracked.

* Real footage: the first ``--real-frames`` frames (150; none with ``--quick``) of the shared
  clips (``../shared/media``: a static camera, a dashcam, a motorbike's camera; skipped when
  absent) with "a car", "a person", "a truck". There are no true boxes, so the report counts
  what churning ids leave behind (``streamdet.quality.tracking.id_churn``): ids shown, ids
  shown in fewer than 5 frames, and boxes where last frame's box was under another id.

Targets (issue 17): IDF1 >= 0.8 on the clips; tracked blink at most half of untracked, with AP50
not lower. ``--sweep`` also scores a grid of settings around the defaults (min hits, hold,
smoothing, IoU), which is how the defaults were chosen. JSON (machine, versions, settings,
command) goes to benchmarks/results/bench_tracking[-quick].json and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
from streamdet.config.settings import TrackConfig
from streamdet.detect.detector import Detector
from streamdet.errors import StreamdetError
from streamdet.machine import machine_info
from streamdet.quality.dataset import PROMPT_SETS, Dataset, build_dataset
from streamdet.quality.metrics import DetBox, coco_ap, stability
from streamdet.quality.tracking import CLIP_NAMES, Clip, id_churn, mot_metrics, tracking_clips
from streamdet.track import Tracker
from streamdet.types import FrameResult

log = logger("bench_tracking")

#: The real clips (in ``../shared/media``) and the prompts they are run with.
REAL_CLIPS = ("car-detection.mp4", "dashcam-highway-960x540.mp4", "road-motorbike-1280x720.mp4")
REAL_PROMPTS = ("a car", "a person", "a truck")

#: The settings ``--sweep`` tries, one change at a time from the defaults (flat names).
SWEEP: tuple[dict[str, Any], ...] = (
    {"track_min_hits": 1},
    {"track_min_hits": 3},
    {"track_min_hits": 5},
    {"track_hold": 0},
    {"track_hold": 1},
    {"track_hold": 3},
    {"track_hold": 5},
    {"track_smoothing": 0.0},
    {"track_smoothing": 0.3},
    {"track_smoothing": 0.7},
    {"track_iou": 0.1},
    {"track_iou": 0.3},
    {"track_high": 0.3},
    {"track_high": 0.7},
    {"track_max_missed": 10},
    {"track_max_missed": 60},
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run for CI")
    parser.add_argument("--frames", type=int, help="frames per tracking clip (default 60)")
    parser.add_argument("--clips", help=f"clip names, comma-separated (default: {CLIP_NAMES})")
    parser.add_argument("--videos", type=int, help="quality videos per prompt set (default 2)")
    parser.add_argument("--video-frames", type=int, help="frames per quality video (default 48)")
    parser.add_argument("--size", type=parse_size, help="frame size, e.g. 640x360 (default)")
    parser.add_argument("--seed", type=int, default=0, help="the clips' seed")
    parser.add_argument("--sweep", action="store_true", help="also score a grid of settings")
    parser.add_argument(
        "--real-frames", type=int, help="frames of each real clip (default 150; quick 0: none)"
    )
    parser.add_argument("--media", type=Path, default=MEDIA, help="folder of the real clips")
    parser.add_argument("--out", type=Path, help="JSON file (benchmarks/results/...)")
    add_detector_flags(parser)
    args = parser.parse_args(argv)
    quick = (16, 1, 8, (320, 180), "cross-same,leave-return", 0)
    full = (60, 2, 48, (640, 360), ",".join(CLIP_NAMES), 150)
    for name, default in zip(
        ("frames", "videos", "video_frames", "size", "clips", "real_frames"),
        quick if args.quick else full,
        strict=True,
    ):
        if getattr(args, name) is None:
            setattr(args, name, default)
    for name in ("frames", "videos", "video_frames"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.real_frames < 0:
        parser.error("--real-frames must be 0 (none) or more")
    args.clips = tuple(c.strip() for c in args.clips.split(",") if c.strip())
    unknown = [c for c in args.clips if c not in CLIP_NAMES]
    if unknown:
        parser.error(f"unknown clip {unknown[0]!r}; clips: {', '.join(CLIP_NAMES)}")
    return args


def detect_all(detector: Detector, prompts: Sequence[str], images: Sequence) -> list[FrameResult]:
    """One video through the detector, as a new stream; the first frame once untimed first."""
    detector.set_prompts(prompts)
    detector.detect(images[0])  # the prompts' first use
    detector.reset()
    return [detector.detect(image) for image in images]


def real_footage(media: Path, frames: int) -> dict[str, list]:
    """The first ``frames`` frames of each real clip found in ``media`` (BGR), by clip name;
    none when ``frames`` is 0 or the folder is missing."""
    out: dict[str, list] = {}
    for name in REAL_CLIPS if frames else ():
        images = read_clip(media / name, None, frames)
        if images:
            out[name] = images
    if frames and not out:
        log(f"real footage: no clip of {', '.join(REAL_CLIPS)} in {media}; skipped")
    return out


def apply_tracker(
    config: TrackConfig, videos: Sequence[Sequence[FrameResult]]
) -> tuple[list[list[FrameResult]], float]:
    """Every video through a fresh tracker; the tracker's mean ms per frame."""
    out, seconds, frames = [], 0.0, 0
    for results in videos:
        tracker = Tracker(config)
        start = time.perf_counter()
        out.append([tracker.update(r) for r in results])
        seconds += time.perf_counter() - start
        frames += len(results)
    return out, seconds * 1e3 / max(frames, 1)


def quality_videos(dataset: Dataset, video_frames: int) -> list[list]:
    """The dataset's video frames, one list per video (each video is ``video_frames`` long)."""
    frames = list(dataset.videos)
    return [frames[i : i + video_frames] for i in range(0, len(frames), video_frames)]


def steadiness(dataset: Dataset, videos: list[list], results: list[list[FrameResult]]) -> dict:
    """Blink, jitter, found and AP50 of ``results`` on the quality videos."""
    boxes = []
    for frames, frame_results in zip(videos, results, strict=True):
        for info, result in zip(frames, frame_results, strict=True):
            d = result.detections
            for box, score, k in zip(d.xyxy, d.confidence, d.class_id, strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                boxes.append(DetBox(info.image_id, result.prompts[int(k)], (x1, y1, x2, y2), score))
    st = stability(dataset.tracks, boxes)
    ap = coco_ap(dataset.videos, dataset.video_truths, boxes, dataset.prompts)
    return {
        "blink": _round(st.blink),
        "jitter": _round(st.jitter),
        "centre_jitter": _round(st.centre_jitter),
        "size_jitter": _round(st.size_jitter),
        "found": _round(st.found),
        "ap50": _round(ap.ap50),
        "ap50_95": _round(ap.ap50_95),
        "boxes": len(boxes),
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def score(
    config: TrackConfig,
    clips: Sequence[Clip],
    clip_results: list[list[FrameResult]],
    dataset: Dataset,
    videos: list[list],
    video_results: list[list[FrameResult]],
    real_results: dict[str, list[FrameResult]],
) -> dict:
    """One tracker setting: MOT metrics on the clips, steadiness on the quality videos and id
    churn on the real clips."""
    tracked_clips, ms_clips = apply_tracker(config, clip_results)
    tracked_videos, ms_videos = apply_tracker(config, video_results)
    tracked_real, _ = apply_tracker(config, list(real_results.values()))
    mot = mot_metrics(clips, tracked_clips)
    return {
        "settings": dataclasses.asdict(config),
        "mot": mot["overall"],
        "mot_per_clip_prompt": mot["per_clip_prompt"],
        "steadiness": steadiness(dataset, videos, tracked_videos),
        "real": {n: id_churn(r) for n, r in zip(real_results, tracked_real, strict=True)},
        "track_ms_per_frame": round((ms_clips + ms_videos) / 2, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
        width, height = args.size
        log(f"drawing {len(args.clips)} clips x {args.frames} frames at {width}x{height}")
        clips = tracking_clips(
            args.frames, names=args.clips, seed=args.seed, height=height, width=width
        )
        dataset = build_dataset(
            PROMPT_SETS,
            kinds=(),
            videos_per_set=args.videos,
            video_frames=args.video_frames,
            height=height,
            width=width,
        )
        videos = quality_videos(dataset, args.video_frames)
        detector = Detector(
            args.model, clips[0].prompts, preset=settings.preset, **settings.overrides
        )
        base = detector.config.track
        start = time.perf_counter()
        clip_results = [detect_all(detector, c.prompts, c.images) for c in clips]
        video_results = [
            detect_all(detector, v[0].prompts, [dataset.images[f.image_id] for f in v])
            for v in videos
        ]
        frames = sum(len(c.images) for c in clips) + len(dataset.videos)
        model_ms = (time.perf_counter() - start) * 1e3 / frames
        log(f"detected {frames} frames ({model_ms:.1f} ms a frame)")
        real = real_footage(args.media, args.real_frames)
        real_results = {n: detect_all(detector, REAL_PROMPTS, images) for n, images in real.items()}
        if real:
            log(f"detected {sum(map(len, real.values()))} frames of {len(real)} real clips")
        untracked = steadiness(dataset, videos, video_results)
        untracked["real_boxes"] = {
            n: sum(len(r.detections) for r in v) for n, v in real_results.items()
        }
        runs = (clips, clip_results, dataset, videos, video_results, real_results)
        tracked = score(base, *runs)
        sweep = []
        if args.sweep:
            for change in SWEEP:
                config = Tracker(base, **change).config
                row = score(config, *runs)
                row.pop("mot_per_clip_prompt")
                sweep.append({"change": change, **row})
                log(f"sweep {change}: idf1 {row['mot']['idf1']}")
    except StreamdetError as error:
        print(f"bench_tracking: error: {error}", file=sys.stderr)
        return 2
    report = build_report(args, argv, detector, clips, dataset, untracked, tracked, sweep)
    report["model_ms_per_frame"] = round(model_ms, 2)
    out = args.out or RESULTS_DIR / (
        "bench_tracking-quick.json" if args.quick else "bench_tracking.json"
    )
    write_report(report, out)
    print(markdown(report))
    log(f"wrote {out}")
    return 0


def build_report(
    args: argparse.Namespace,
    argv: Sequence[str],
    detector: Detector,
    clips: Sequence[Clip],
    dataset: Dataset,
    untracked: dict,
    tracked: dict,
    sweep: list[dict],
) -> dict:
    """The JSON report: what ran, on what, and every number."""
    steady = tracked["steadiness"]
    blink_ratio = round(steady["blink"] / untracked["blink"], 4) if untracked["blink"] else None
    idf1 = tracked["mot"]["idf1"]
    return {
        "script": "bench_tracking.py",
        "command": command_line("bench_tracking.py", argv),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": detector.config.to_dict(),
        "data": {
            "size": list(args.size),
            "clips": [c.name for c in clips],
            "clip_frames": args.frames,
            "quality_videos": len(quality_videos(dataset, args.video_frames)),
            "quality_video_frames": args.video_frames,
            "quality_tracks": len(dataset.tracks),
            "real_clips": list(tracked["real"]),
            "real_frames": args.real_frames,
            "real_prompts": list(REAL_PROMPTS),
        },
        "untracked": untracked,
        "tracked": tracked,
        "blink_ratio": blink_ratio,
        "targets": {
            "idf1_at_least_0.8": idf1 is not None and idf1 >= 0.8,
            # both zero (no box blinks, tracked or not) meets it: there is nothing to halve
            "blink_at_most_half": steady["blink"] <= 0.5 * untracked["blink"],
            "ap50_not_lower": (
                steady["ap50"] is not None
                and untracked["ap50"] is not None
                and steady["ap50"] >= untracked["ap50"]
            ),
        },
        "sweep": sweep,
    }


def markdown(report: dict) -> str:
    """The results as a markdown table (untracked vs tracked, then the sweep)."""
    u, t = report["untracked"], report["tracked"]
    mot = t["mot"]
    lines = [
        "| output | MOTA | IDF1 | id switches | blink | jitter | found | AP50 (videos) |",
        "|---|---|---|---|---|---|---|---|",
        f"| untracked | | | | {u['blink']} | {u['jitter']} | {u['found']} | {u['ap50']} |",
        f"| tracked | {mot['mota']} | {mot['idf1']} | {mot['num_switches']} | "
        f"{t['steadiness']['blink']} | {t['steadiness']['jitter']} | {t['steadiness']['found']} "
        f"| {t['steadiness']['ap50']} |",
    ]
    for row in report["sweep"]:
        s, m = row["steadiness"], row["mot"]
        change = ", ".join(f"{k}={v}" for k, v in row["change"].items())
        lines.append(
            f"| {change} | {m['mota']} | {m['idf1']} | {m['num_switches']} | {s['blink']} | "
            f"{s['jitter']} | {s['found']} | {s['ap50']} |"
        )
    if t["real"]:
        lines += [
            "",
            "| real clip | frames | boxes untracked / tracked | ids | short ids | id changes |",
            "|---|---|---|---|---|---|",
        ]
        for name, c in t["real"].items():
            lines.append(
                f"| {name} | {c['frames']} | {u['real_boxes'][name]} / {c['boxes']} | {c['ids']} "
                f"| {c['short_ids']} | {c['id_changes']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
