"""The quality benchmark's command line (``python benchmarks/quality.py``).

    python benchmarks/quality.py                    # full setting: every named setting
    python benchmarks/quality.py --quick            # CI: small dataset, calibrated vs reference
    python benchmarks/quality.py --check-targets    # exit 1 when a target is missed
    python benchmarks/quality.py --generator heldout   # one generator (default: both)

Writes JSON (``--out``) and prints a markdown table; exits 2 with a one-line message for bad input
(an unknown setting name, a model that is not there, pycocotools missing).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamdet.config import DEFAULT_MODEL, PRECISIONS, resolve_config
from streamdet.errors import ConfigError, StreamdetError
from streamdet.machine import machine_info
from streamdet.quality.dataset import (
    DEFAULT_SEED,
    FRAME_KINDS,
    MIN_VISIBLE,
    PROMPT_SETS,
    Dataset,
    dataset_info,
)
from streamdet.quality.evaluate import (
    RunSettings,
    detector_overrides,
    evaluate_setting,
    rounded,
)
from streamdet.quality.generators import GENERATOR_CHOICES, GENERATORS
from streamdet.quality.metrics import TRACK_IOU, grid_ceiling, require_pycocotools
from streamdet.quality.report import check_targets, fmt, gaps, model_info, summary, write_report
from streamdet.quality.settings import (
    ANALYSED_SETTING,
    QUICK_BY_GENERATOR,
    QUICK_SETTINGS,
    NamedSetting,
    make_settings,
)

#: How the command is recorded in the JSON (the script in the repository's benchmarks/).
SCRIPT = "benchmarks/quality.py"


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"expected WIDTHxHEIGHT such as 640x360, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"frames must be at least 16x16 pixels, got {text!r}")
    return w, h


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every quality run shares (this benchmark and ``quality_seeds``): prompt sets,
    frame kinds and size, the grid, threads, cache and precision."""
    parser.add_argument(
        "--sets", type=_names, help=f"prompt sets to run (all of {', '.join(PROMPT_SETS)})"
    )
    parser.add_argument(
        "--kinds", type=_names, help=f"frame kinds (all of {', '.join(FRAME_KINDS)})"
    )
    parser.add_argument("--frame-size", type=_frame_size, default=(640, 360), metavar="WxH")
    parser.add_argument("--patch", type=int, default=32, help="cell size in pixels")
    parser.add_argument("--window", type=int, default=4, help="base window size in cells")
    parser.add_argument("--stride", type=int, default=1, help="base stride in cells")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--cache-dir", help="streamdet cache (default ~/.cache/streamdet)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="image tower precision for every setting (default: as exported)",
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python " + SCRIPT,
        description="Detection quality on generated scenes: AP, false boxes, stability.",
        epilog="Writes JSON (--out) and prints a markdown table. Exits 0 unless --check-targets "
        "is given and a target is missed.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model id or folder")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small dataset; calibrated vs reference on the training generator, calibrated on "
        "the held-out one (CI)",
    )
    parser.add_argument("--frames", type=int, help="still frames per prompt and kind (4; quick 1)")
    parser.add_argument("--videos", type=int, help="videos per prompt set (2; quick 1)")
    parser.add_argument("--video-frames", type=int, help="frames per video (24; quick 6)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--configs", type=_names, help="comma-separated setting names (all; quick: two)"
    )
    parser.add_argument(
        "--generator",
        choices=list(GENERATOR_CHOICES),
        default="both",
        help="scene generator: train (the model's own), heldout (never trained on), or both",
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--out", type=Path, help="JSON file (benchmarks/results/quality[-quick].json)"
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 1 when a target is not met"
    )
    args = parser.parse_args(argv)
    defaults = (1, 1, 6) if args.quick else (4, 2, 24)
    for name, default in zip(("frames", "videos", "video_frames"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
        elif getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    return args


def _select(names: Sequence[str] | None, available: Mapping[str, Any], what: str) -> list[str]:
    if names is None:
        return list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"unknown {what} {', '.join(unknown)}; choose from {', '.join(available)}"
        )
    return list(names)


def chosen_settings(args: argparse.Namespace, run: RunSettings) -> list[NamedSetting]:
    """The named settings to run, each checked against the configuration before any model loads
    (a one-line ``ConfigError`` naming the setting otherwise)."""
    available = make_settings(args.window, args.stride, args.patch)
    names = _select(
        args.configs or (list(QUICK_SETTINGS) if args.quick else None), available, "config"
    )
    chosen = [available[n] for n in names]
    for setting in chosen:
        try:
            resolve_config(detector_overrides(setting, run), preset=setting.preset)
        except ConfigError as error:
            raise ConfigError(f"setting {setting.name}: {error}") from None
    return chosen


@dataclass(frozen=True)
class Prepared:
    """What a run needs before any frame is made: the model as resolved (``model_info``), the
    run's settings, the named settings to compare (each checked), the prompt sets and kinds."""

    model: dict[str, Any]
    runs: RunSettings
    settings: list[NamedSetting]
    sets: dict[str, list[str]]
    kinds: list[str]


def prepare(args: argparse.Namespace) -> Prepared:
    """Everything ``args`` names, checked before any frame is made: pycocotools, the model (a
    missing one fails fast), the settings, prompt sets and frame kinds (one-line errors)."""
    require_pycocotools()
    model = model_info(args.model, args.cache_dir)
    runs = RunSettings(
        model=args.model,
        patch=args.patch,
        precision=args.precision,
        export_precision=model["precision"],
        threads=args.threads,
        cache_dir=args.cache_dir,
    )
    settings = chosen_settings(args, runs)
    sets = {n: list(PROMPT_SETS[n]) for n in _select(args.sets, PROMPT_SETS, "prompt set")}
    kinds = _select(args.kinds, dict.fromkeys(FRAME_KINDS), "frame kind")
    return Prepared(model, runs, settings, sets, kinds)


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The whole benchmark as one JSON-ready dict."""
    started = time.perf_counter()
    ready = prepare(args)
    model, runs, settings, sets = ready.model, ready.runs, ready.settings, ready.sets
    kinds = ready.kinds
    width, height = args.frame_size
    generators = {}
    for name in GENERATOR_CHOICES[args.generator]:
        dataset = GENERATORS[name](
            sets,
            kinds=kinds,
            frames_per_kind=args.frames,
            videos_per_set=args.videos,
            video_frames=args.video_frames,
            seed=args.seed,
            height=height,
            width=width,
        )
        chosen = settings
        if args.quick and args.configs is None:
            chosen = [s for s in settings if s.name in QUICK_BY_GENERATOR[name]]
        generators[name] = run_generator(name, dataset, chosen, runs, args.patch)
    targets = check_targets(generators)
    return {
        "benchmark": "quality",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(("numpy", "onnxruntime", "streamdet")),
        "model": model,
        "settings": {
            "quick": args.quick,
            "seed": args.seed,
            "frame_size": [width, height],
            "frames_per_kind": args.frames,
            "videos_per_set": args.videos,
            "video_frames": args.video_frames,
            "patch": args.patch,
            "window": args.window,
            "stride": args.stride,
            "precision": args.precision or "as exported",
            "generators": list(generators),
            "analysed_setting": ANALYSED_SETTING,
            "prompt_sets": sets,
            "frame_kinds": kinds,
            "min_visible": MIN_VISIBLE,
            "track_iou": TRACK_IOU,
        },
        "generators": generators,
        "gap": gaps(generators),
        "targets": targets,
        "passed": all(t["passed"] for t in targets.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_generator(
    name: str,
    dataset: Dataset,
    settings: Sequence[NamedSetting],
    runs: RunSettings,
    patch: int,
) -> dict[str, Any]:
    """Every setting on one generator's dataset: its counts, cell-grid ceiling and results (the
    analysed setting with its failure analysis)."""
    _log(f"{name}: {len(dataset.stills)} stills, {len(dataset.videos)} video frames")
    ceiling = grid_ceiling(dataset.stills, dataset.truths, patch)
    results = {}
    for setting in settings:
        analysis = setting.name == ANALYSED_SETTING
        r = results[setting.name] = evaluate_setting(setting, dataset, runs, analysis=analysis)
        _log(f"{name} {setting.name}: AP50 {fmt(r['ap50'])}, {r['seconds']:.1f} s")
    return {
        "dataset": dataset_info(dataset),
        "grid_ceiling": {
            "about": "AP of exact boxes snapped to the best cell-aligned box at this patch",
            "ap50": rounded(ceiling.ap50),
            "ap50_95": rounded(ceiling.ap50_95),
        },
        "configs": results,
    }


def _log(message: str) -> None:
    print(f"[quality] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = None) -> int:
    """Run the benchmark; the JSON goes to ``--out``, else ``results_dir`` (the script passes
    benchmarks/results; default: the current folder) as quality[-quick].json."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["python", SCRIPT, *argv])
    try:
        report = run(args, command)
    except StreamdetError as e:  # a message that says what to do, not a traceback
        _log(f"error: {e}")
        return 2
    name = "quality-quick.json" if args.quick else "quality.json"
    out = args.out or (results_dir or Path.cwd()) / name
    write_report(report, out)
    print(summary(report))
    _log(f"wrote {out} in {report['seconds']} s")
    if args.check_targets and not report["passed"]:
        return 1
    return 0
