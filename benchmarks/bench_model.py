"""Speed: per-frame model time by resolution, prompt count, backend and precision.

    python benchmarks/bench_model.py                 # ViT-B/32 shape, 640x360 to 1920x1080
    python benchmarks/bench_model.py --quick         # CI: tiny model, two small frames
    python benchmarks/bench_model.py --resolutions 1280x720 --backends onnxruntime --repeats 3

What one "frame" is here, the same for every backend: cut all windows of streamdet's grid out of the
frame (``crop_windows``: one resize, one gather), run the image tower over them, score them
against cached prompt embeddings with the write-up's reference scoring. Boxes are left out: they
do not depend on the backend. Backends and precisions:

- ``onnxruntime fp32``: streamdet's exported ``image.onnx``, with the session options and batch
  chunking streamdet uses (``ORT_ENABLE_ALL``, chunks of ``DEFAULT_MAX_BATCH_CPU`` windows).
- ``onnxruntime int8``: the same graph after ``onnxruntime.quantization.quantize_dynamic`` (int8
  weights, dynamic int8 activations for MatMul/Gemm). Its embeddings are compared with fp32 on the
  same windows (``cosine_vs_fp32``, the smallest per-window cosine) because a faster graph that
  says something else is no win.
- ``torch fp32``: the PyTorch CLIPModel's image tower, eager, all windows in one batch.

The model, its export and the int8 graph are built once and cached like ``bench_reference.py``
(``benchmarks/.cache/``). Each cell is one warm-up frame, then the median of ``--repeats``.
Results go to JSON (machine, versions, settings, command, ms per frame and per window, speed vs
onnxruntime fp32); a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from streamdet.clip.encoders import DEFAULT_MAX_BATCH_CPU
from streamdet.clip.meta import load_meta
from streamdet.detect.scoring import reference_normalise, window_logits
from streamdet.detect.windows import GridSpec, WindowGrid, crop_windows

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> ModuleType:
    """Load a sibling benchmark script (benchmarks/ is not a package) to share its helpers."""
    key = f"streamdet_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


ref = _sibling("bench_reference")

FULL_RESOLUTIONS = ("640x360", "1280x720", "1920x1080")
QUICK_RESOLUTIONS = ("64x48", "128x96")
BACKENDS = ("onnxruntime", "torch")


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
    cosine_vs_fp32: float | None  # smallest per-window cosine of int8 vs fp32 embeddings


Tower = Callable[[np.ndarray], np.ndarray]  # (N, S, S, 3) float32 BGR -> (N, D) normalised


def ort_tower(path: Path, threads: int | None) -> Tower:
    """An ONNX Runtime image tower opened and run the way streamdet's ClipEncoders does."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    cpu = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), sess_options=options, providers=cpu)
    name = session.get_inputs()[0].name
    step = DEFAULT_MAX_BATCH_CPU

    def run(pixels: np.ndarray) -> np.ndarray:
        parts = [
            session.run(None, {name: np.ascontiguousarray(pixels[i : i + step])})[0]
            for i in range(0, len(pixels), step)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)

    return run


def torch_tower(model: Any, mean: Sequence[float], std: Sequence[float]) -> Tower:
    """The PyTorch image tower, eager fp32, all windows in one batch."""
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def run(pixels: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2)[:, [2, 1, 0]]
        x = (x / 255.0 - mean_t) / std_t
        with torch.no_grad():
            out = model.get_image_features(pixel_values=x)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            return torch.nn.functional.normalize(out).numpy()

    return run


def quantized_image_graph(export_dir: Path, target: Path) -> Path:
    """``image.onnx`` of `export_dir` with dynamic int8 quantisation, cached at `target`.

    The cached graph is reused only while it is newer than the fp32 graph it came from.
    """
    source = load_meta(export_dir).image_path
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(target.name + ".partial.onnx")
    quantize_dynamic(source, partial, weight_type=QuantType.QInt8)
    partial.rename(target)
    return target


def time_frame(
    tower: Tower,
    frame: np.ndarray,
    grid: WindowGrid,
    text_emb: np.ndarray,
    *,
    size: int,
    fill: tuple[float, float, float],
    logit_scale: float,
    repeats: int,
) -> tuple[list[float], dict[str, float], np.ndarray]:
    """One warm-up frame, then `repeats` timed: totals, median parts and the embeddings."""
    emb = np.zeros(0)

    def once() -> dict[str, float]:
        nonlocal emb
        t0 = time.perf_counter()
        pixels = crop_windows(frame, grid, size, fill)  # (N, S, S, 3)
        t1 = time.perf_counter()
        emb = tower(pixels)  # (N, D)
        t2 = time.perf_counter()
        reference_normalise(grid.cell_mean(window_logits(emb, text_emb, logit_scale)))
        t3 = time.perf_counter()
        return {"preprocess": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "score": (t3 - t2) * 1e3}

    totals, parts = ref._median_run(once, repeats)
    return totals, parts, emb


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest per-row cosine between two (N, D) embedding sets."""
    na = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / np.maximum(na, 1e-12)))


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
    parser.add_argument("--video", type=Path, default=ref.VIDEO, help="frame source")
    parser.add_argument("--resolutions", help="comma-separated WxH (640x360,1280x720,1920x1080)")
    parser.add_argument("--prompts", default="1,8", help="comma-separated prompt counts")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="onnxruntime,torch")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 onnxruntime rows")
    parser.add_argument("--patch", type=int, help="cell size (64; quick 16)")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--repeats", type=int, help="timed frames per cell (2)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: its own)")
    parser.add_argument("--cache-dir", type=Path, default=ref.CACHE_DIR)
    parser.add_argument("--out", type=Path, help="JSON (results/bench_model[-quick].json)")
    args = parser.parse_args(argv)
    text = args.resolutions or ",".join(QUICK_RESOLUTIONS if args.quick else FULL_RESOLUTIONS)
    try:
        args.resolutions = [_size(t) for t in text.split(",") if t.strip()]
        args.prompts = tuple(int(v) for v in args.prompts.split(",") if v.strip())
    except ValueError:
        parser.error("--resolutions must be WxH,... and --prompts counts such as 1,8")
    if not args.prompts or any(k not in ref.PROMPTS for k in args.prompts):
        parser.error(f"--prompts must be among {sorted(ref.PROMPTS)}")
    args.backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not args.backends or any(b not in BACKENDS for b in args.backends):
        parser.error(f"--backends must be among {', '.join(BACKENDS)}")
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
    hf_dir, export_dir, model_name = ref.prepare_model(args)
    meta = load_meta(export_dir)
    towers: dict[tuple[str, str], Tower] = {}
    if "onnxruntime" in args.backends:
        towers["onnxruntime", "fp32"] = ort_tower(meta.image_path, args.threads)
        if not args.no_int8:
            int8_path = export_dir.parent / f"{export_dir.name}-image-int8.onnx"
            int8 = quantized_image_graph(export_dir, int8_path)
            towers["onnxruntime", "int8"] = ort_tower(int8, args.threads)
    model = transformers.CLIPModel.from_pretrained(hf_dir, dtype=torch.float32).eval()
    if "torch" in args.backends:
        towers["torch", "fp32"] = torch_tower(model, meta.image_mean, meta.image_std)
    processor = transformers.CLIPProcessor.from_pretrained(hf_dir)
    text = {k: ref.text_embeddings(model, processor, ref.PROMPTS[k]) for k in args.prompts}
    r, g, b = (float(v) * 255.0 for v in meta.image_mean)
    spec = GridSpec(patch=args.patch, window=args.window, stride=args.stride)
    _log(f"model ready in {time.perf_counter() - started:.1f} s; towers {sorted(towers)}")

    rows: list[ModelTiming] = []
    for width, height in args.resolutions:
        frame, _ = ref.load_frame(args.video, width, height)
        grid = WindowGrid.build(height, width, spec)
        for k in args.prompts:
            fp32_emb = None
            for (backend, precision), tower in towers.items():
                totals, parts, emb = time_frame(
                    tower,
                    frame,
                    grid,
                    text[k],
                    size=meta.image_size,
                    fill=(b, g, r),
                    logit_scale=meta.logit_scale,
                    repeats=args.repeats,
                )
                if (backend, precision) == ("onnxruntime", "fp32"):
                    fp32_emb = emb
                cosine = (
                    min_cosine(emb, fp32_emb)
                    if precision == "int8" and fp32_emb is not None
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
        "machine": ref.machine_info(),
        "model": {
            "name": model_name,
            "hf_folder": str(hf_dir),
            "export_folder": str(export_dir),
            "image_size": meta.image_size,
        },
        "settings": {
            "quick": args.quick,
            "resolutions": [f"{w}x{h}" for w, h in args.resolutions],
            "prompt_counts": list(args.prompts),
            "backends": [f"{b} {p}" for b, p in towers],
            "patch": args.patch,
            "window": args.window,
            "stride": args.stride,
            "overhang": False,
            "repeats": args.repeats,
            "ort_threads": args.threads,
            "ort_max_batch": DEFAULT_MAX_BATCH_CPU,
            "torch_threads": torch.get_num_threads(),
            "frame": "first frame of the video resized to each resolution (generated if absent)",
            "per_frame": "crop_windows + image tower + reference scoring (no boxes)",
        },
        "results": [asdict(row) for row in with_ratios(rows)],
        "seconds": round(time.perf_counter() - started, 1),
    }


def _log(message: str) -> None:
    print(f"[bench_model] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/bench_model.py", *argv])
    report = run(args, command)
    default = "bench_model-quick.json" if args.quick else "bench_model.json"
    out = args.out or ref.RESULTS_DIR / default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(report["results"]))
    _log(f"wrote {out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
