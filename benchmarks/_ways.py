"""bench_reference's three ways of turning one frame into per-prompt cell heatmaps, and how they
are timed side by side.

``writeup_window``
    The original write-up's loop body: crop one window's pixels out of the frame, one
    ``CLIPProcessor(images=crop, text=prompts)`` call and one full ``CLIPModel(**inputs)`` forward
    (the text is re-encoded every time), PyTorch eager fp32; per-cell mean of the logits. Too slow
    to run on every window of a large frame, so it is timed on windows spread over the grid
    (``sample_indices``) and extrapolated to the whole grid.
``torch_batch_frame``
    The middle step: all windows cut out by streamdet's vectorised cropper and run through the
    PyTorch image tower in ONE eager batch against cached text embeddings. Separates what
    batching and caching buy from what streamdet's engine buys.
``streamdet_frame``
    ``Detector.detect`` on the whole frame, with its own timings.

``time_interleaved`` times them in turn, round by round, so that a change of machine load during
the run hits every way alike and the ratios stay comparable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from _common import clip_normaliser, ms_since
from streamdet.detect.detector import Detector
from streamdet.detect.scoring import reference_normalise, window_logits
from streamdet.detect.windows import WindowGrid, crop_windows

#: One whole frame of a way: its parts in ms.
Frame = Callable[[], dict[str, float]]


@dataclass(frozen=True)
class WayResult:
    """Milliseconds per frame of one way with one prompt count, and how they were obtained."""

    way: str
    prompts: int
    ms_per_frame: float
    measured: str  # "whole frames" or "extrapolated from N windows"
    runs_ms: tuple[float, ...]  # per frame (whole frames) or per window (extrapolated)
    parts_ms: dict[str, float]  # where the time goes, per frame


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
        return (t1 - t0) * 1e3, ms_since(t1)

    return one


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
        return {"preprocess": (t1 - t0) * 1e3, "model": (t2 - t1) * 1e3, "score": ms_since(t2)}

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
            totals[way].append(ms_since(t0))
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
