"""Speed: per-frame model time by resolution, prompt count, backend and precision.

    python benchmarks/bench_model.py                 # ViT-B/32 shape, 640x360 to 1920x1080
    python benchmarks/bench_model.py --quick         # CI: tiny model, two small frames
    python benchmarks/bench_model.py --resolutions 1280x720 --backends onnxruntime --repeats 3

What one "frame" is here, the same for every backend: cut all windows of streamdet's grid out of the
frame (``crop_windows``: one resize, one gather), run the image tower over them, score them
against cached prompt embeddings with the write-up's reference scoring. Boxes are left out: they
do not depend on the backend. Backends and precisions (``--backends``, ``--precisions``):

- ``onnxruntime fp32``: streamdet's own ``OrtEncoders`` on the exported ``image.onnx``: its
  session options (``streamdet.clip.optimize.session_options``: all graph optimisations, one
  intra-op thread per physical core, no spinning) and batch chunking (``DEFAULT_MAX_BATCH_CPU``).
- ``onnxruntime int8``: the same with ``precision="int8"``: dynamic int8 quantisation of every
  MatMul/Gemm weight (per channel), made once and cached by ``streamdet.clip.optimize``.
- ``onnxruntime fp16``: ``precision="fp16"`` (meant for GPUs; runs on the CPU too).
- ``onnxruntime fp32-fused``, ``fp16-fused`` (``--fused``, for each of those precisions asked):
  the graph after ONNX Runtime's transformer optimizer (``model_type="clip"``: fused attention,
  skip-LayerNorm, GELU), through the same ``OrtEncoders`` (``fuse=True``).
- ``onnxruntime-spin`` (``--spin``): every onnxruntime precision again with spinning pool threads.
- ``torch fp32``: the PyTorch CLIPModel's image tower, eager, all windows in one batch.
- ``torch int8``: the same after ``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear``.
- ``torch fp16``: the same in half precision (weights and input).
- ``torch-compile`` (``--backends``): the same tower through ``torch.compile`` (on CUDA with
  ``mode="reduce-overhead"``, which replays CUDA graphs); compiled during the warm-up frame.
- ``torch-cudagraph`` (``--device cuda`` only): eager kernels captured once per batch size into a
  ``torch.cuda.CUDAGraph`` and replayed.
- ``onnxruntime-cudagraph`` (``--cuda-graph``, ``--device cuda`` only): ``OrtEncoders(
  cuda_graph=True)``: the embeddings-only graph with a fixed batch, replayed as a CUDA graph.
- ``streamdet-torch`` (``--backends``): streamdet's own PyTorch backend, ``TorchEncoders`` (the
  exported tower's modules on the HF weights) in its default mode for the device: CUDA graphs
  per padded batch size on CUDA, eager on the CPU; fp32 and fp16 (CUDA). On a GPU its row against
  ``onnxruntime`` is what ``--backend auto`` stands on.

``--device cuda`` runs every tower on the GPU: ONNX Runtime's CUDA provider through
``OrtEncoders`` (IO binding: each chunk of windows crosses once), PyTorch with the model and the
normalisation on the GPU (windows cut on the host, sent once per frame). int8 is CPU-only there.

Every row but the reference (onnxruntime fp32, else torch fp32) gets ``cosine_vs_fp32``, the
smallest per-window cosine of its embeddings to the reference's on the same windows, because a
faster graph that says something else is no win.

The towers are ``_towers.py``; the model, its export and the derived graphs are built once and
cached like ``bench_reference.py``'s (``_models.py``, ``benchmarks/.cache/``). Each cell is one
warm-up frame, then the median of ``--repeats``; within one resolution and prompt count the
backends are timed in turn, repeat by repeat (interleaved), so that a machine whose load changes
affects them alike. Results go to JSON (machine, versions, settings, command, ms per frame and per
window, speed vs onnxruntime fp32); a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

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
from _towers import Tower, ort_towers, streamdet_torch_towers, torch_tower
from streamdet.clip.base import DEFAULT_MAX_BATCH_CPU
from streamdet.clip.meta import load_meta
from streamdet.clip.optimize import physical_cores
from streamdet.config import GridConfig
from streamdet.detect.scoring import reference_normalise, window_logits
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.machine import machine_info

_log = logger("bench_model")

FULL_RESOLUTIONS = ("640x360", "1280x720", "1920x1080")
QUICK_RESOLUTIONS = ("64x48", "128x96")
BACKENDS = ("onnxruntime", "torch", "torch-compile", "torch-cudagraph", "streamdet-torch")
DEFAULT_BACKENDS = ("onnxruntime", "torch")
DEVICES = ("cpu", "cuda")
TORCH_MODES = {"torch": "eager", "torch-compile": "compile", "torch-cudagraph": "cudagraph"}
PRECISIONS = ("fp32", "int8", "fp16")
DEFAULT_PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class ModelTiming:
    """One cell of the table: milliseconds per frame for one setting."""

    resolution: str
    windows: int
    prompts: int
    backend: str
    precision: str
    ms_per_frame: float
    ms_per_window: float
    vs_onnxruntime_fp32: float | None  # how many times faster than onnxruntime fp32 (same cell)
    runs_ms: tuple[float, ...]
    parts_ms: dict[str, float]
    cosine_vs_fp32: float | None  # smallest per-window cosine to the reference (fp32) row


def frame_timer(
    tower: Tower,
    frame: np.ndarray,
    grid: WindowGrid,
    text_emb: np.ndarray,
    *,
    size: int,
    fill: tuple[float, float, float],
    logit_scale: float,
) -> Callable[[], tuple[dict[str, float], np.ndarray]]:
    """One frame through one tower: its parts in ms (preprocess, model, score) and embeddings."""

    def once() -> tuple[dict[str, float], np.ndarray]:
        t0 = time.perf_counter()
        pixels = crop_windows(frame, grid, size, fill)  # (N, S, S, 3)
        t1 = time.perf_counter()
        emb = tower(pixels)  # (N, D)
        t2 = time.perf_counter()
        reference_normalise(grid.cell_mean(window_logits(emb, text_emb, logit_scale)))
        t3 = time.perf_counter()
        parts = {"preprocess": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "score": (t3 - t2) * 1e3}
        return parts, emb

    return once


def time_interleaved(
    timers: dict[Any, Callable[[], tuple[dict[str, float], np.ndarray]]], repeats: int
) -> dict[Any, tuple[list[float], dict[str, float], np.ndarray]]:
    """One warm-up frame per timer, then `repeats` rounds, each timing every timer once.

    Returns per timer: total ms of each timed frame, the median of each part, the embeddings.
    """
    embeddings = {key: once()[1] for key, once in timers.items()}
    totals: dict[Any, list[float]] = {key: [] for key in timers}
    parts: dict[Any, list[dict[str, float]]] = {key: [] for key in timers}
    for _ in range(repeats):
        for key, once in timers.items():
            t0 = time.perf_counter()
            part, _ = once()
            totals[key].append((time.perf_counter() - t0) * 1e3)
            parts[key].append(part)
    return {
        key: (
            totals[key],
            {k: statistics.median(p[k] for p in parts[key]) for k in parts[key][0]},
            embeddings[key],
        )
        for key in timers
    }


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest per-row cosine between two (N, D) embedding sets."""
    na = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / np.maximum(na, 1e-12)))


def reference_key(keys: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The row the others are compared with: onnxruntime fp32, else torch fp32."""
    for key in (("onnxruntime", "fp32"), ("torch", "fp32")):
        if key in keys:
            return key
    return None


def with_ratios(rows: Sequence[ModelTiming]) -> list[ModelTiming]:
    """Fill ``vs_onnxruntime_fp32`` from the measured ms of the matching onnxruntime fp32 row."""
    base = {
        (r.resolution, r.prompts): r.ms_per_frame
        for r in rows
        if (r.backend, r.precision) == ("onnxruntime", "fp32")
    }
    out = []
    for r in rows:
        b = base.get((r.resolution, r.prompts))
        ratio = b / r.ms_per_frame if b is not None and r.ms_per_frame > 0 else None
        out.append(ModelTiming(**{**asdict(r), "vs_onnxruntime_fp32": ratio}))
    return out


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| resolution | windows | prompts | backend | precision | ms per frame | ms per window "
        "| vs ORT fp32 | min cosine vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        x = r["vs_onnxruntime_fp32"]
        cos = r["cosine_vs_fp32"]
        lines.append(
            f"| {r['resolution']} | {r['windows']} | {r['prompts']} | {r['backend']} "
            f"| {r['precision']} | {r['ms_per_frame']:,.0f} | {r['ms_per_window']:.1f} "
            f"| {'-' if x is None else f'{x:.2f}x'} | {'-' if cos is None else f'{cos:.4f}'} |"
        )
    return "\n".join(lines)


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Per-frame model time by resolution, prompts, backend and precision.",
        epilog="Writes JSON (--out) and prints a markdown table.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny model, small frames (CI)")
    parser.add_argument("--source", type=Path, help="HF CLIP folder instead of a random one")
    parser.add_argument("--video", type=Path, default=VIDEO, help="frame source")
    parser.add_argument("--resolutions", help="comma-separated WxH (640x360,1280x720,1920x1080)")
    parser.add_argument("--prompts", default="1,8", help="comma-separated prompt counts")
    parser.add_argument(
        "--backends",
        default=",".join(DEFAULT_BACKENDS),
        help=f"comma-separated, among {','.join(BACKENDS)} (default onnxruntime,torch)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the towers run (cuda: ONNX Runtime's CUDA provider, PyTorch on the GPU)",
    )
    parser.add_argument(
        "--precisions",
        default=",".join(DEFAULT_PRECISIONS),
        help=f"comma-separated, among {','.join(PRECISIONS)} (default fp32,int8)",
    )
    parser.add_argument("--no-int8", action="store_true", help="leave int8 out of --precisions")
    parser.add_argument(
        "--fused", action="store_true", help="add onnxruntime fp32 with transformer fusions"
    )
    parser.add_argument(
        "--spin",
        action="store_true",
        help="add onnxruntime-spin rows: idle threads busy-wait (streamdet's default: off)",
    )
    parser.add_argument(
        "--cuda-graph",
        action="store_true",
        help="add onnxruntime-cudagraph rows: the tower replayed as a CUDA graph (--device cuda)",
    )
    parser.add_argument("--overhang", action="store_true", help="windows hang over the frame edges")
    parser.add_argument("--patch", type=int, help="cell size (64; quick 16)")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--repeats", type=int, help="timed frames per cell (2)")
    parser.add_argument(
        "--threads", type=int, help="ONNX Runtime threads (default: streamdet's, physical cores)"
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out", type=Path, help="JSON (results/bench_model[-quick].json)")
    args = parser.parse_args(argv)
    text = args.resolutions or ",".join(QUICK_RESOLUTIONS if args.quick else FULL_RESOLUTIONS)
    try:
        args.resolutions = [_size(t) for t in text.split(",") if t.strip()]
        args.prompts = tuple(int(v) for v in args.prompts.split(",") if v.strip())
    except ValueError:
        parser.error("--resolutions must be WxH,... and --prompts counts such as 1,8")
    if not args.prompts or any(k not in PROMPTS for k in args.prompts):
        parser.error(f"--prompts must be among {sorted(PROMPTS)}")
    args.backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not args.backends or any(b not in BACKENDS for b in args.backends):
        parser.error(f"--backends must be among {', '.join(BACKENDS)}")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if args.no_int8:
        precisions = [p for p in precisions if p != "int8"]
    if not precisions or any(p not in PRECISIONS for p in precisions):
        parser.error(f"--precisions must be among {', '.join(PRECISIONS)}")
    args.precisions = tuple(dict.fromkeys(precisions))
    if args.device == "cuda" and "int8" in args.precisions:
        parser.error(
            "int8 (dynamic quantisation) runs on the CPU only; with --device cuda pass "
            "--precisions fp32,fp16"
        )
    if "torch-cudagraph" in args.backends and args.device != "cuda":
        parser.error("--backends torch-cudagraph needs --device cuda (CUDA graphs)")
    if args.cuda_graph and args.device != "cuda":
        parser.error("--cuda-graph needs --device cuda")
    args.patch = args.patch or (16 if args.quick else 64)
    args.repeats = args.repeats or 2
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The whole benchmark as one JSON-ready dict."""
    import torch
    import transformers

    started = time.perf_counter()
    hf_dir, export_dir, model_name = prepare_model(args)
    meta = load_meta(export_dir)
    towers: dict[tuple[str, str], Tower] = {}
    if "onnxruntime" in args.backends:
        towers.update(ort_towers(export_dir, args))
    if "streamdet-torch" in args.backends:
        towers.update(streamdet_torch_towers(export_dir, hf_dir, args))
    model = transformers.CLIPModel.from_pretrained(hf_dir, dtype=torch.float32).eval()
    for backend, mode in TORCH_MODES.items():
        if backend not in args.backends:
            continue
        for precision in args.precisions:
            if precision == "int8" and mode != "eager":
                continue  # torch.ao's dynamic int8 is an eager CPU path
            towers[backend, precision] = torch_tower(
                model, meta.image_mean, meta.image_std, precision, mode=mode, device=args.device
            )
    processor = transformers.CLIPProcessor.from_pretrained(hf_dir)
    text = {k: text_embeddings(model, processor, PROMPTS[k]) for k in args.prompts}
    r, g, b = (float(v) * 255.0 for v in meta.image_mean)
    spec = GridConfig(
        patch=args.patch, window=args.window, stride=args.stride, overhang=args.overhang
    )
    reference = reference_key(list(towers))
    _log(f"model ready in {time.perf_counter() - started:.1f} s; towers {sorted(towers)}")

    rows: list[ModelTiming] = []
    for width, height in args.resolutions:
        frame, _ = load_frame(args.video, width, height)
        grid = WindowGrid.build(height, width, spec)
        for k in args.prompts:
            timers = {
                key: frame_timer(
                    tower,
                    frame,
                    grid,
                    text[k],
                    size=meta.image_size,
                    fill=(b, g, r),
                    logit_scale=meta.logit_scale,
                )
                for key, tower in towers.items()
            }
            timed = time_interleaved(timers, args.repeats)
            for (backend, precision), (totals, parts, emb) in timed.items():
                cosine = (
                    min_cosine(emb, timed[reference][2])
                    if reference is not None and (backend, precision) != reference
                    else None
                )
                ms = statistics.median(totals)
                rows.append(
                    ModelTiming(
                        resolution=f"{width}x{height}",
                        windows=len(grid),
                        prompts=k,
                        backend=backend,
                        precision=precision,
                        ms_per_frame=ms,
                        ms_per_window=ms / len(grid),
                        vs_onnxruntime_fp32=None,
                        runs_ms=tuple(round(v, 2) for v in totals),
                        parts_ms=parts,
                        cosine_vs_fp32=cosine,
                    )
                )
                _log(f"{width}x{height} {k} prompt(s) {backend} {precision}: {ms:,.0f} ms/frame")
    return {
        "benchmark": "bench_model",
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(
            ("numpy", "onnxruntime", "torch", "transformers", "cv2", "streamdet")
        ),
        "model": {
            "name": model_name,
            "hf_folder": str(hf_dir),
            "export_folder": str(export_dir),
            "image_size": meta.image_size,
        },
        "settings": {
            "quick": args.quick,
            "device": args.device,
            "resolutions": [f"{w}x{h}" for w, h in args.resolutions],
            "prompt_counts": list(args.prompts),
            "backends": [f"{b} {p}" for b, p in towers],
            "cosine_reference": None if reference is None else " ".join(reference),
            "patch": args.patch,
            "window": args.window,
            "stride": args.stride,
            "overhang": args.overhang,
            "repeats": args.repeats,
            "timing": "interleaved: each repeat times every backend once, after one warm-up each",
            "ort_threads": args.threads or physical_cores(),
            "ort_spin": "onnxruntime: off; onnxruntime-spin: on",
            "ort_max_batch": DEFAULT_MAX_BATCH_CPU,
            "torch_threads": torch.get_num_threads(),
            "frame": "first frame of the video resized to each resolution (generated if absent)",
            "per_frame": "crop_windows + image tower + reference scoring (no boxes)",
        },
        "results": [asdict(row) for row in with_ratios(rows)],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    report = run(args, command_line("bench_model.py", argv))
    default = "bench_model-quick.json" if args.quick else "bench_model.json"
    out = args.out or RESULTS_DIR / default
    write_report(report, out)
    print(markdown_table(report["results"]))
    _log(f"wrote {out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
