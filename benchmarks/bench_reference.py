"""Speed: the original write-up's way against streamdet's engine, same model, frame and settings.

    python benchmarks/bench_reference.py            # ViT-B/32 shape (random weights), 1280x720
    python benchmarks/bench_reference.py --quick    # CI: tiny model, small frame

Three ways of turning one frame into per-prompt cell heatmaps, all over streamdet's window grid
for the write-up's settings (the ``writeup`` preset: patch 64, window 4, stride 1, one window size,
no overhang, reference scoring; the last row/column of cells kept, where the write-up drops the
margins, so both ways here do the same work). The ways and their timing are ``_ways.py``:

``writeup``
    The write-up's loop, one window at a time (timed on ``--sample-windows`` windows spread over
    the grid and extrapolated to the whole grid).
``torch-batch``
    All windows in one PyTorch eager batch against cached text embeddings.
``streamdet``
    ``Detector(exported_folder, prompts, preset="writeup", ...)``: ONNX Runtime fp32, all windows
    batched, cached text embeddings, streamdet's session options. Reference scoring needs no patch
    tokens, so the engine runs the export's graph pruned to its embeddings.
``streamdet-int8`` (and ``streamdet-fp16``, by ``--precisions``)
    The same Detector with ``precision="int8"`` (made once and cached by
    ``streamdet.clip.optimize``). ``best_streamdet`` in the JSON names the fastest streamdet way
    per prompt count with its speed-ups.
``streamdet-torch`` (and ``streamdet-torch-fp16``; ``--backends onnxruntime,torch``)
    The same Detector on streamdet's PyTorch backend (``backend="torch"``), in fp32 and, on CUDA,
    fp16.

The model (``_models.py``) has the ViT-B/32 shape with random weights: speed only, the heatmaps
mean nothing. Results go to JSON (machine, versions, settings, each Detector's resolved
configuration, command, ms per frame, ratios); a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import (
    CACHE_DIR,
    PROMPTS,
    RESULTS_DIR,
    VIDEO,
    command_line,
    load_frame,
    logger,
    text_embeddings,
    write_report,
)
from _models import prepare_model
from _ways import (
    WayResult,
    sample_indices,
    streamdet_frame,
    time_interleaved,
    torch_batch_frame,
    writeup_window,
)
from streamdet.clip.optimize import PRECISIONS, physical_cores
from streamdet.detect.detector import Detector
from streamdet.machine import machine_info

_log = logger("bench_reference")


@dataclass(frozen=True)
class Settings:
    """What one run measures: model, frame, windows, prompt counts and how often (the detector's
    own settings are recorded as its resolved configuration)."""

    quick: bool
    model: str
    frame_source: str
    frame_size: tuple[int, int]  # (width, height)
    windows: int
    prompt_counts: tuple[int, ...]
    sample_windows: int
    repeats: int
    torch_threads: int
    ort_threads: int
    precisions: tuple[str, ...] = ("fp32",)
    device: str = "cpu"
    backends: tuple[str, ...] = ("onnxruntime",)


def build_detector(
    export_dir: Path, prompts: Sequence[str], args: argparse.Namespace, backend: str, precision: str
) -> Detector:
    """streamdet's Detector on the write-up's settings (preset ``writeup``, with the command
    line's cell, window and stride) in one backend and precision."""
    return Detector(
        export_dir,
        prompts,
        preset="writeup",
        patch=args.patch,
        window=args.window,
        stride=args.stride,
        threads=args.threads,
        cache_dir=args.cache_dir / "streamdet",
        precision=precision,
        device=args.device,
        backend=backend,
    )


def streamdet_way(precision: str, backend: str = "onnxruntime") -> str:
    """The way name of streamdet in one precision and backend: "streamdet" (ONNX Runtime, as
    exported), "streamdet-int8", "streamdet-torch", "streamdet-torch-fp16"."""
    name = "streamdet" if backend == "onnxruntime" else f"streamdet-{backend}"
    return name if precision == "fp32" else f"{name}-{precision}"


def streamdet_ways(
    precisions: Sequence[str], backends: Sequence[str], device: str
) -> list[tuple[str, str]]:
    """(backend, precision) pairs to time: every precision on ONNX Runtime; fp32 (and fp16 on
    CUDA) on the PyTorch backend, which has no int8."""
    pairs = [("onnxruntime", p) for p in precisions] if "onnxruntime" in backends else []
    if "torch" in backends:
        pairs += [
            ("torch", p) for p in precisions if p == "fp32" or (p == "fp16" and device == "cuda")
        ]
    return pairs


def ratios(results: Sequence[WayResult]) -> dict[str, dict[str, float]]:
    """Per prompt count, how many times faster each way is than the write-up's, from the ms; and
    each streamdet way against the PyTorch batch (``<way>_vs_torch_batch``)."""
    out: dict[str, dict[str, float]] = {}
    for k in sorted({r.prompts for r in results}):
        by_way = {r.way: r.ms_per_frame for r in results if r.prompts == k}
        base = by_way.get("writeup")
        if base is None:
            continue
        out[str(k)] = {way: base / ms for way, ms in by_way.items() if ms > 0}
        torch_ms = by_way.get("torch-batch")
        for way, ms in by_way.items():
            if way.startswith("streamdet") and torch_ms is not None and ms > 0:
                out[str(k)][f"{way}_vs_torch_batch"] = torch_ms / ms
    return out


def best_streamdet(results: Sequence[WayResult]) -> dict[str, dict[str, Any]]:
    """Per prompt count, the fastest streamdet way and its speed-ups (from the same run)."""
    out: dict[str, dict[str, Any]] = {}
    for k in sorted({r.prompts for r in results}):
        by_way = {r.way: r.ms_per_frame for r in results if r.prompts == k}
        ways = [w for w in by_way if w.startswith("streamdet")]
        if not ways:
            continue
        best = min(ways, key=by_way.__getitem__)
        entry: dict[str, Any] = {"way": best, "ms_per_frame": by_way[best]}
        if "writeup" in by_way:
            entry["vs_writeup"] = by_way["writeup"] / by_way[best]
        if "torch-batch" in by_way:
            entry["vs_torch_batch"] = by_way["torch-batch"] / by_way[best]
        out[str(k)] = entry
    return out


# ----------------------------------------------------------------------------------------------
# Reporting


WAY_LABELS = {
    "writeup": "write-up: processor + full CLIPModel per window (eager fp32)",
    "torch-batch": "all windows in one PyTorch eager batch, cached text",
    "streamdet": "streamdet Detector (ONNX Runtime fp32, batched, cached text)",
    "streamdet-int8": "streamdet Detector, precision int8 (dynamic quantisation)",
    "streamdet-fp16": "streamdet Detector, precision fp16",
    "streamdet-torch": "streamdet Detector on its PyTorch backend, fp32",
    "streamdet-torch-fp16": "streamdet Detector on its PyTorch backend, fp16",
}


def markdown_table(results: Sequence[Any], ratio: dict[str, dict[str, float]]) -> str:
    """One row per way and prompt count: ms per frame and speed-up over the write-up's way."""
    lines = [
        "| way | prompts | ms per frame | vs write-up | measured |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        r = r if isinstance(r, dict) else asdict(r)
        x = ratio.get(str(r["prompts"]), {}).get(r["way"])
        speed = f"{x:.1f}x" if x is not None else "-"
        label = WAY_LABELS.get(r["way"], r["way"])
        lines.append(
            f"| {label} | {r['prompts']} | {r['ms_per_frame']:,.0f} | {speed} | {r['measured']} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The write-up's per-window loop vs streamdet's engine, same model and frame.",
        epilog="Writes JSON (--out) and prints a markdown table.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny model, small frame (CI)")
    parser.add_argument(
        "--source", type=Path, help="use this HF CLIP folder instead of building a random one"
    )
    parser.add_argument("--video", type=Path, default=VIDEO, help="frame source (first frame)")
    parser.add_argument("--frame-size", default=None, help="WxH (1280x720; quick 128x96)")
    parser.add_argument("--patch", type=int, help="cell size in pixels (64; quick 16)")
    parser.add_argument("--window", type=int, default=4, help="window size in cells")
    parser.add_argument("--stride", type=int, default=1, help="stride in cells")
    parser.add_argument(
        "--prompts", default="1,8", help="comma-separated prompt counts (each of 1, 8)"
    )
    parser.add_argument(
        "--sample-windows", type=int, default=14, help="windows the write-up's way is timed on"
    )
    parser.add_argument("--repeats", type=int, help="timed whole frames per way (7; quick 2)")
    parser.add_argument(
        "--precisions",
        help="streamdet's image-tower precisions, among fp32,int8,fp16 (default fp32,int8; "
        "quick: fp32)",
    )
    parser.add_argument(
        "--backends",
        default="onnxruntime",
        help="streamdet's backends, among onnxruntime,torch (default onnxruntime)",
    )
    parser.add_argument(
        "--threads", type=int, help="ONNX Runtime threads (default: streamdet's, physical cores)"
    )
    parser.add_argument("--torch-threads", type=int, help="PyTorch threads (default: its own)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where every way runs (cuda: PyTorch on the GPU, streamdet with --device cuda; "
        "default precisions there fp32,fp16)",
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="models are cached here")
    parser.add_argument("--out", type=Path, help="JSON file (results/bench_reference[-quick].json)")
    args = parser.parse_args(argv)
    size = args.frame_size or ("128x96" if args.quick else "1280x720")
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        parser.error(f"--frame-size must be WIDTHxHEIGHT such as 1280x720, got {size!r}")
    args.frame_size = (width, height)
    args.patch = args.patch or (16 if args.quick else 64)
    # several rounds: single frames vary with the machine's load, a median of a few is steadier
    args.repeats = args.repeats or (2 if args.quick else 7)
    try:
        args.prompts = tuple(int(v) for v in args.prompts.split(",") if v.strip())
    except ValueError:
        parser.error(f"--prompts must be counts such as 1,8, got {args.prompts!r}")
    if not args.prompts or any(k not in PROMPTS for k in args.prompts):
        parser.error(f"--prompts must be among {sorted(PROMPTS)}, got {args.prompts}")
    if args.sample_windows < 1 or args.repeats < 1:
        parser.error("--sample-windows and --repeats must be at least 1")
    cpu_default = "fp32" if args.quick else "fp32,int8"
    text = args.precisions or (cpu_default if args.device == "cpu" else "fp32,fp16")
    args.precisions = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not args.precisions or any(p not in PRECISIONS for p in args.precisions):
        parser.error(f"--precisions must be among {','.join(PRECISIONS)}, got {text!r}")
    if args.device == "cuda" and "int8" in args.precisions:
        parser.error("int8 (dynamic quantisation) is CPU-only; use fp16 with --device cuda")
    if args.torch_threads is not None and args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    args.backends = tuple(dict.fromkeys(b.strip() for b in args.backends.split(",") if b.strip()))
    if not args.backends or any(b not in ("onnxruntime", "torch") for b in args.backends):
        parser.error(f"--backends must be among onnxruntime,torch, got {args.backends}")
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The whole benchmark as one JSON-ready dict."""
    import torch
    import transformers

    started = time.perf_counter()
    hf_dir, export_dir, model_name = prepare_model(args)
    _log(f"model ready in {time.perf_counter() - started:.1f} s: {export_dir}")
    width, height = args.frame_size
    frame, frame_source = load_frame(args.video, width, height)

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    model = transformers.CLIPModel.from_pretrained(hf_dir, dtype=torch.float32).eval()
    model = model.to(args.device)
    processor = transformers.CLIPProcessor.from_pretrained(hf_dir)
    results: list[WayResult] = []
    settings: Settings | None = None
    configs: dict[str, Any] = {}
    for k in args.prompts:
        prompts = PROMPTS[k]
        detectors = {
            streamdet_way(precision, backend): build_detector(
                export_dir, prompts, args, backend, precision
            )
            for backend, precision in streamdet_ways(args.precisions, args.backends, args.device)
        }
        configs = configs or {way: d.config.to_dict() for way, d in detectors.items()}
        detector = next(iter(detectors.values()))
        grid = detector.grid(height, width)
        sample = sample_indices(len(grid), args.sample_windows)
        meta = detector.model.encoders.meta
        settings = settings or Settings(
            quick=args.quick,
            model=model_name,
            frame_source=frame_source,
            frame_size=(width, height),
            windows=len(grid),
            prompt_counts=tuple(args.prompts),
            sample_windows=len(sample),
            repeats=args.repeats,
            torch_threads=torch.get_num_threads(),
            ort_threads=args.threads or physical_cores(),
            precisions=tuple(args.precisions),
            device=args.device,
            backends=tuple(args.backends),
        )
        frames = {
            "torch-batch": torch_batch_frame(
                model,
                frame,
                grid,
                text_embeddings(model, processor, prompts),
                size=detector.model.image_size,
                fill=detector.model.fill,
                mean=meta.image_mean,
                std=meta.image_std,
                logit_scale=detector.model.logit_scale,
            ),
            **{way: streamdet_frame(d, frame) for way, d in detectors.items()},
        }
        window = writeup_window(model, processor, frame, grid, prompts)
        timed = time_interleaved(window, sample, len(grid), frames, args.repeats, k)
        for r in timed:
            _log(f"{k} prompt(s): {r.way} {r.ms_per_frame:,.0f} ms/frame ({r.measured})")
        results += timed
    assert settings is not None
    return {
        "benchmark": "bench_reference",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(
            ("numpy", "onnxruntime", "torch", "transformers", "cv2", "streamdet")
        ),
        "model": {
            "name": model_name,
            "hf_folder": str(hf_dir),
            "export_folder": str(export_dir),
            "image_size": int(model.config.vision_config.image_size),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
        },
        "settings": asdict(settings),
        "configs": configs,
        "notes": [
            "random weights: speed only, the heatmaps mean nothing",
            "every way uses streamdet's grid for the write-up's settings (last row/column of "
            "cells kept, no overhang); the write-up drops the margins, which would give fewer "
            "windows",
            "writeup crops are clipped at the frame edge and go through CLIPProcessor (uint8 RGB)",
            "writeup ms_per_frame is extrapolated: mean ms per sampled window x windows per frame",
            "interleaved: each round times its share of the sampled write-up windows and one "
            "frame of every other way, so that a change of machine load hits all ways alike",
            "streamdet is ONNX Runtime fp32 as exported; streamdet-<precision> the same Detector "
            "with that image-tower precision; streamdet-torch[-<precision>] the same Detector on "
            "its PyTorch backend; configs holds each one's resolved configuration; "
            "best_streamdet names the fastest",
        ],
        "results": [asdict(r) for r in results],
        "ratios": ratios(results),
        "best_streamdet": best_streamdet(results),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    report = run(args, command_line("bench_reference.py", argv))
    default = "bench_reference-quick.json" if args.quick else "bench_reference.json"
    out = args.out or RESULTS_DIR / default
    write_report(report, out)
    print(markdown_table(report["results"], report["ratios"]))
    for k, best in report["best_streamdet"].items():
        speedups = ", ".join(
            f"{best[key]:.1f}x {label}"
            for key, label in (("vs_writeup", "the write-up"), ("vs_torch_batch", "PyTorch batch"))
            if key in best
        )
        print(f"best streamdet way, {k} prompt(s): {best['way']} ({speedups})")
    _log(f"wrote {out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
