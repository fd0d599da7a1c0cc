"""Speed: the original write-up's way against streamdet's engine, same model, frame and settings.

    python benchmarks/bench_reference.py            # ViT-B/32 shape (random weights), 1280x720
    python benchmarks/bench_reference.py --quick    # CI: tiny model, small frame

Three ways of turning one frame into per-prompt cell heatmaps, all over streamdet's window grid
(patch 64, window 4, stride 1, no overhang: 153 windows at 1280x720, the last row/column of cells
kept; the write-up drops the margins, 136 windows, but both ways here do the same work):

``writeup``
    The write-up's loop: for each window crop its pixels out of the frame, one
    ``CLIPProcessor(images=crop, text=prompts)`` call and one full ``CLIPModel(**inputs)`` forward
    (the text is re-encoded every time), PyTorch eager fp32, one window at a time; per-cell mean of
    the logits. It is far too slow to run over every window of a full-size frame, so it is timed
    on a subset of windows (``--sample-windows``, spread over the grid) and extrapolated to the
    whole grid.
``torch-batch``
    The middle step: all windows cut out by streamdet's vectorised cropper and run through the
    PyTorch image tower in ONE eager batch against cached text embeddings. Separates what
    batching and caching buy from what ONNX Runtime buys.
``streamdet``
    ``Detector(exported_folder, prompts, patch=64, window=4, stride=1, overhang=False,
    scoring="reference")``: ONNX Runtime fp32, all windows batched, cached text embeddings,
    streamdet's session options (one thread per physical core, no spinning). Reference scoring
    needs no patch tokens, so the engine runs the export's graph pruned to its embeddings.
``streamdet-int8`` (and ``streamdet-fp16``, by ``--precisions``)
    The same Detector with ``precision="int8"``: the image tower dynamically quantised to int8
    (made once and cached by ``streamdet.clip.optimize``). ``best_streamdet`` in the JSON names
    the fastest streamdet way per prompt count with its speed-ups.
``streamdet-torch`` (and ``streamdet-torch-fp16``; ``--backends onnxruntime,torch``)
    The same Detector on streamdet's PyTorch backend (``backend="torch"``: CUDA graphs on a GPU,
    eager on the CPU), in fp32 and, on CUDA, fp16.

The whole-frame ways are timed in turn, round by round (one warm-up frame each, then the median of
``--repeats``), and each round also times its share of the write-up's sampled windows, so that a
change of machine load during the run hits every way alike and the ratios stay comparable.

The model has the ViT-B/32 shape with random weights (``torch.manual_seed(0)``): speed only, the
heatmaps mean nothing. It is built once from the config in
``shared/models/clip-vit-base-patch32-noweights/`` and exported with
``streamdet.clip.export.export_model``; both are cached under ``benchmarks/.cache/`` (the export
is redone when the exporter's or the towers' code changed: the graph measured is the one streamdet
writes today).
Results go to JSON (machine, versions, settings, command, ms per frame, ratios); a markdown table
goes to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamdet.clip import export as export_module
from streamdet.clip import towers as towers_module
from streamdet.clip.export import TOKENIZER_FILES, export_model
from streamdet.clip.files import sha256_file, source_checksum
from streamdet.clip.meta import META_FILE, is_export_folder
from streamdet.clip.optimize import PRECISIONS, physical_cores
from streamdet.detect.detector import Detector
from streamdet.detect.scoring import reference_normalise, window_logits
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.machine import machine_info

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
CACHE_DIR = HERE / ".cache"
SHARED = HERE.parent.parent / "shared"
SHARED_CLIP_DIR = SHARED / "models" / "clip-vit-base-patch32-noweights"
VIDEO = SHARED / "media" / "dashcam-highway-1280x720.mp4"

#: Prompt sets by count; the first prompt of each is the same so 1 is a prefix of 8.
PROMPTS: dict[int, tuple[str, ...]] = {
    1: ("a car",),
    8: (
        "a car",
        "a truck",
        "a person",
        "a traffic sign",
        "a motorbike",
        "a tree",
        "a road marking",
        "the sky",
    ),
}

#: The tests' tiny CLIP shape (tests/conftest.py): 32 px images, patch 8, width 32, D=16.
TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "vocab_size": 49408,
    "max_position_embeddings": 77,
}
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


@dataclass(frozen=True)
class Settings:
    """What one run measures: model, frame, grid, prompt counts and how often."""

    quick: bool
    model: str
    frame_source: str
    frame_size: tuple[int, int]  # (width, height)
    patch: int
    window: int
    stride: int
    overhang: bool
    windows: int
    prompt_counts: tuple[int, ...]
    sample_windows: int
    repeats: int
    torch_threads: int
    ort_threads: int
    precisions: tuple[str, ...] = ("fp32",)
    device: str = "cpu"
    backends: tuple[str, ...] = ("onnxruntime",)


@dataclass(frozen=True)
class WayResult:
    """Milliseconds per frame of one way with one prompt count, and how they were obtained."""

    way: str
    prompts: int
    ms_per_frame: float
    measured: str  # "whole frames" or "extrapolated from N windows"
    runs_ms: tuple[float, ...]  # per frame (whole frames) or per window (extrapolated)
    parts_ms: dict[str, float]  # where the time goes, per frame


# ----------------------------------------------------------------------------------------------
# Model and frame


def _write_preprocessor(source: Path, target: Path, size: int) -> None:
    """The processor config of `source` with its resize and crop set to `size` pixels."""
    config = json.loads((source / "preprocessor_config.json").read_text(encoding="utf-8"))
    config["size"] = {"shortest_edge": size}
    config["crop_size"] = {"height": size, "width": size}
    (target / "preprocessor_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def build_hf_model(target: Path, *, tiny: bool, clip_dir: Path = SHARED_CLIP_DIR) -> Path:
    """A Hugging Face CLIP folder of random weights (seed 0): ViT-B/32's shape, or the tiny one.

    Skipped when `target` already holds a saved model (the build is deterministic).
    """
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    import transformers

    if not (clip_dir / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{clip_dir} is absent: the CLIP config and tokenizer are needed")
    torch.manual_seed(0)
    if tiny:
        config = transformers.CLIPConfig(
            text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=16
        )
    else:
        config = transformers.CLIPConfig.from_pretrained(clip_dir)
    stage = target.with_name(target.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    transformers.CLIPModel(config).eval().save_pretrained(stage)
    for name in TOKENIZER_FILES:
        if (clip_dir / name).is_file():
            shutil.copyfile(clip_dir / name, stage / name)
    _write_preprocessor(clip_dir, stage, int(config.vision_config.image_size))
    shutil.rmtree(target, ignore_errors=True)
    stage.rename(target)  # a half-written folder never looks complete
    return target


EXPORTER_STAMP = ".exporter"  # in the export folder: checksum of the exporter's code that made it


def _exporter_checksum() -> str:
    """One checksum over the exporter and the towers it traces (the graph changes with either)."""
    files = (export_module.__file__, towers_module.__file__)
    return hashlib.sha256("".join(sha256_file(Path(f)) for f in files).encode()).hexdigest()


def export_cached(hf_dir: Path, out_dir: Path) -> Path:
    """streamdet's fp32 export of `hf_dir` into `out_dir`, reused when it was made from the same
    source (its meta.json records the source checksum) by the same exporter code (the graph it
    writes changes with it), redone otherwise."""
    if is_export_folder(out_dir):
        meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
        stamp = out_dir / EXPORTER_STAMP
        made_by = stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None
        if meta.get("source_sha256") == source_checksum(hf_dir) and made_by == _exporter_checksum():
            return out_dir
    out = export_model(hf_dir, out_dir, overwrite=True).out_dir
    (out / EXPORTER_STAMP).write_text(_exporter_checksum() + "\n", encoding="utf-8")
    return out


def generated_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic BGR frame with some structure (gradients, boxes) when no video is at hand."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frame = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], -1)
    frame = frame.astype(np.uint8)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(8, max(9, width // 4))), int(rng.integers(8, max(9, height // 4)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(frame, (x0, y0), (x0 + w, y0 + h), colour, -1)
    return frame


def load_frame(video: Path, width: int, height: int) -> tuple[np.ndarray, str]:
    """The first frame of `video` as BGR uint8, resized to (width, height); generated if absent."""
    try:
        import av

        with av.open(str(video)) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    except Exception:  # no PyAV, no file, undecodable: the benchmark still runs
        return generated_frame(width, height), f"generated {width}x{height}"
    source = f"first frame of {video.name}"
    if frame.shape[:2] != (height, width):
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        source += f", resized to {width}x{height}"
    return np.ascontiguousarray(frame), source


# ----------------------------------------------------------------------------------------------
# The three ways


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def sample_indices(n_windows: int, n_sample: int) -> np.ndarray:
    """`n_sample` window indices spread evenly over the grid (all when there are fewer)."""
    if n_sample >= n_windows:
        return np.arange(n_windows)
    return np.unique(np.linspace(0, n_windows - 1, n_sample).round().astype(np.int64))


def _window_crop(frame_rgb: np.ndarray, grid: WindowGrid, index: int) -> np.ndarray:
    """A window's pixels cut from the frame, as the write-up does (clipped at the frame edge)."""
    r0, c0, size = (int(v) for v in grid.windows[index])
    p = grid.patch
    return frame_rgb[r0 * p : (r0 + size) * p, c0 * p : (c0 + size) * p]


Frame = Callable[[], dict[str, float]]  # one whole frame of a way: its parts in ms


def writeup_window(
    model: Any, processor: Any, frame: np.ndarray, grid: WindowGrid, prompts: Sequence[str]
) -> Callable[[int], tuple[float, float]]:
    """The write-up's loop body for one window: (processor ms, model ms).

    The per-cell mean of the logits is accumulated as the write-up does; its cost per frame is
    negligible and included in the extrapolation per window.
    """
    import torch

    # RGB uint8: CLIPProcessor (transformers 5) would rescale float input in [0, 1] a second time.
    frame_rgb = np.ascontiguousarray(frame[:, :, ::-1])
    sums = np.zeros((len(prompts), grid.rows, grid.cols), np.float32)
    visits = np.zeros((grid.rows, grid.cols), np.float32)

    def one(index: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        crop = _window_crop(frame_rgb, grid, index)
        inputs = processor(images=crop, text=list(prompts), return_tensors="pt", padding=True)
        inputs = inputs.to(model.device)  # as the write-up does (a no-op on the CPU)
        t1 = time.perf_counter()
        with torch.no_grad():
            logits = model(**inputs).logits_per_image[0].cpu().numpy()  # (K,)
        r0, c0, size = (int(v) for v in grid.windows[index])
        sums[:, r0 : r0 + size, c0 : c0 + size] += logits[:, None, None]
        visits[r0 : r0 + size, c0 : c0 + size] += 1
        return (t1 - t0) * 1e3, _ms(t1)

    return one


def clip_normaliser(
    mean: Sequence[float], std: Sequence[float], device: Any
) -> Callable[[np.ndarray], Any]:
    """(N, S, S, 3) BGR 0..255 crops -> (N, 3, S, S) RGB tensor on ``device``, normalised as
    CLIPProcessor does: what PyTorch's CLIPModel takes. The crops cross to the device once."""
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def normalise(pixels: np.ndarray) -> Any:
        x = torch.from_numpy(pixels).to(device).permute(0, 3, 1, 2)[:, [2, 1, 0]]  # RGB
        return (x / 255.0 - mean_t) / std_t

    return normalise


def torch_batch_frame(
    model: Any,
    frame: np.ndarray,
    grid: WindowGrid,
    text_emb: np.ndarray,
    *,
    size: int,
    fill: tuple[float, float, float],
    mean: Sequence[float],
    std: Sequence[float],
    logit_scale: float,
) -> Frame:
    """All windows in one PyTorch eager batch against cached (K, D) text embeddings."""
    import torch

    normalise = clip_normaliser(mean, std, model.device)

    def once() -> dict[str, float]:
        t0 = time.perf_counter()
        x = normalise(crop_windows(frame, grid, size, fill))  # (N, 3, S, S) RGB, normalised
        t1 = time.perf_counter()
        with torch.no_grad():
            out = model.get_image_features(pixel_values=x)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            emb = torch.nn.functional.normalize(out).cpu().numpy()  # (N, D); waits for the GPU
        t2 = time.perf_counter()
        reference_normalise(grid.cell_mean(window_logits(emb, text_emb, logit_scale)))
        return {"preprocess": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "score": _ms(t2)}

    return once


def streamdet_frame(detector: Detector, frame: np.ndarray) -> Frame:
    """``Detector.detect`` on a whole frame; parts from its own ``Timings``."""

    def once() -> dict[str, float]:
        t = detector.detect(frame).timings
        return {
            "preprocess": t.preprocess_ms,
            "model": t.encode_ms,
            "score": t.score_ms,
            "boxes": t.boxes_ms,
        }

    return once


def time_interleaved(
    window: Callable[[int], tuple[float, float]],
    sample: np.ndarray,
    n_windows: int,
    frames: dict[str, Frame],
    repeats: int,
    prompts: int,
) -> list[WayResult]:
    """The write-up's way and every whole-frame way, timed in turn so load changes hit all alike.

    Warm-up: one write-up window and one frame of each way. Then `repeats` rounds; each round
    times its share of the sampled windows (``sample[i::repeats]``) and one frame of every way.
    """
    window(int(sample[0]))
    for once in frames.values():
        once()
    window_parts: list[tuple[float, float]] = []
    totals: dict[str, list[float]] = {way: [] for way in frames}
    parts: dict[str, list[dict[str, float]]] = {way: [] for way in frames}
    for i in range(repeats):
        window_parts += [window(int(index)) for index in sample[i::repeats]]
        for way, once in frames.items():
            t0 = time.perf_counter()
            parts[way].append(once())
            totals[way].append(_ms(t0))
    per_window = [a + b for a, b in window_parts]
    n = n_windows
    results = [
        WayResult(
            way="writeup",
            prompts=prompts,
            ms_per_frame=statistics.mean(per_window) * n,
            measured=f"extrapolated from {len(per_window)} of {n} windows (mean per window x {n})",
            runs_ms=tuple(round(v, 2) for v in per_window),
            parts_ms={
                "processor": statistics.mean(a for a, _ in window_parts) * n,
                "model": statistics.mean(b for _, b in window_parts) * n,
            },
        )
    ]
    for way in frames:
        results.append(
            WayResult(
                way=way,
                prompts=prompts,
                ms_per_frame=statistics.median(totals[way]),
                measured=f"whole frames: median of {repeats} after one warm-up",
                runs_ms=tuple(round(v, 2) for v in totals[way]),
                parts_ms={k: statistics.median(p[k] for p in parts[way]) for k in parts[way][0]},
            )
        )
    return results


def text_embeddings(model: Any, processor: Any, prompts: Sequence[str]) -> np.ndarray:
    """(K, D) L2-normalised text embeddings from the PyTorch model, computed once (cached)."""
    import torch

    tokens = processor.tokenizer(list(prompts), padding=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.get_text_features(**tokens)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out).cpu().numpy()


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
    # 7 rounds: on a shared machine single frames vary with the neighbours' load, and medians of
    # 3 moved the ratios noticeably between runs.
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


def prepare_model(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """The HF folder and its streamdet export (both cached), and a name for the JSON."""
    if args.source is not None:
        hf_dir = args.source.resolve()
        name = f"given: {hf_dir}"
        export_dir = args.cache_dir / f"export-{hf_dir.name}"
    else:
        key = "tiny-random-seed0" if args.quick else "vit-b32-random-seed0"
        hf_dir = build_hf_model(args.cache_dir / key / "hf", tiny=args.quick)
        name = (
            "tiny CLIP (32 px, patch 8, width 32), random weights, seed 0"
            if args.quick
            else "ViT-B/32 shape (clip-vit-base-patch32 config), random weights, seed 0"
        )
        export_dir = args.cache_dir / key / "export"
    return hf_dir, export_cached(hf_dir, export_dir), name


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
    for k in args.prompts:
        prompts = PROMPTS[k]
        detectors = {
            streamdet_way(precision, backend): Detector(
                export_dir,
                prompts,
                patch=args.patch,
                window=args.window,
                stride=args.stride,
                overhang=False,
                scoring="reference",
                threads=args.threads,
                cache_dir=args.cache_dir / "streamdet",
                precision=precision,
                device=args.device,
                backend=backend,
            )
            for backend, precision in streamdet_ways(args.precisions, args.backends, args.device)
        }
        detector = next(iter(detectors.values()))
        grid = detector.grid(height, width)
        sample = sample_indices(len(grid), args.sample_windows)
        meta = detector.model.encoders.meta
        settings = settings or Settings(
            quick=args.quick,
            model=model_name,
            frame_source=frame_source,
            frame_size=(width, height),
            patch=args.patch,
            window=args.window,
            stride=args.stride,
            overhang=False,
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
        "notes": [
            "random weights: speed only, the heatmaps mean nothing",
            "both ways use streamdet's grid (last row/column of cells kept, no overhang); the "
            "write-up drops the margins, which would give fewer windows (136 at 1280x720)",
            "writeup crops are clipped at the frame edge and go through CLIPProcessor (uint8 RGB)",
            "writeup ms_per_frame is extrapolated: mean ms per sampled window x windows per frame",
            "interleaved: each round times its share of the sampled write-up windows and one "
            "frame of every other way, so that a change of machine load hits all ways alike",
            "streamdet is ONNX Runtime fp32 as exported; streamdet-<precision> the same Detector "
            "with that image-tower precision; streamdet-torch[-<precision>] the same Detector on "
            "its PyTorch backend; best_streamdet names the fastest",
        ],
        "results": [asdict(r) for r in results],
        "ratios": ratios(results),
        "best_streamdet": best_streamdet(results),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _log(message: str) -> None:
    print(f"[bench_reference] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/bench_reference.py", *argv])
    report = run(args, command)
    default = "bench_reference-quick.json" if args.quick else "bench_reference.json"
    out = args.out or RESULTS_DIR / default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
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
