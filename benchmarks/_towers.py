"""bench_model's towers: what turns (N, S, S, 3) window crops into (N, D) embeddings, one per
backend and precision.

- ``ort_towers``: streamdet's own ONNX Runtime encoders (``OrtEncoders``) in each precision, and,
  on request, with spinning threads, ONNX Runtime's transformer fusions, or a CUDA graph.
- ``streamdet_torch_towers``: streamdet's PyTorch backend (``TorchEncoders``).
- ``torch_tower``: the PyTorch CLIPModel's image tower as it comes (eager, ``torch.compile`` or
  captured CUDA graphs; fp32, dynamic int8 or fp16).
"""

from __future__ import annotations

import argparse
import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _common import clip_normaliser
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.clip.torch_encoders import PaddedBatches

Tower = Callable[[np.ndarray], np.ndarray]  # (N, S, S, 3) float32 BGR -> (N, D) normalised


def torch_tower(
    model: Any,
    mean: Sequence[float],
    std: Sequence[float],
    precision: str = "fp32",
    *,
    mode: str = "eager",
    device: str = "cpu",
) -> Tower:
    """The PyTorch image tower, all windows in one batch.

    precision: "fp32"; "int8" (``quantize_dynamic`` of every nn.Linear, qint8 weights; CPU only);
    "fp16" (a half-precision copy of the model, half-precision input).
    mode: "eager"; "compile" (``torch.compile``; on CUDA with ``mode="reduce-overhead"``, which
    replays CUDA graphs); "cudagraph" (eager kernels captured once per batch size into a
    ``torch.cuda.CUDAGraph`` and replayed; CUDA only). Compilation and capture happen on the
    first call of a batch size, which the benchmark's warm-up frame takes.
    device: "cpu" or "cuda": the model and the normalisation run there; windows are cut on the
    host and sent once per frame, embeddings come back once.
    """
    import torch

    if mode == "cudagraph" and device != "cuda":
        raise ValueError("CUDA graphs need --device cuda")
    if precision == "int8":
        with warnings.catch_warnings():  # torch.ao eager quantisation is deprecated, still works
            warnings.simplefilter("ignore")
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
    elif precision == "fp16":
        model = copy.deepcopy(model).half()
    elif device != "cpu":
        model = copy.deepcopy(model)
    model = model.to(device)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    normalise = clip_normaliser(mean, std, device)

    def embed(x: Any) -> Any:  # (N, 3, S, S) normalised -> (N, D) float32, L2-normalised
        out = model.get_image_features(pixel_values=x)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out.float())

    if mode == "compile":
        embed = torch.compile(embed, mode="reduce-overhead" if device == "cuda" else None)
    elif mode == "cudagraph":  # one graph per batch size: streamdet's runner, padding to 1
        embed = _captured(torch, embed)

    def run(pixels: np.ndarray) -> np.ndarray:
        x = normalise(pixels).to(dtype)
        with torch.no_grad():
            return embed(x).cpu().numpy()  # .cpu() waits for the device

    return run


def _captured(torch: Any, embed: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``embed`` captured into one CUDA graph per batch size and replayed (streamdet's
    ``PaddedBatches`` with buckets of one window: no padding)."""
    graphs = PaddedBatches(torch, lambda x: (embed(x),), bucket=1, capture=True)
    return lambda x: graphs(x)[0]


def ort_towers(export_dir: Path, args: argparse.Namespace) -> dict[tuple[str, str], Tower]:
    """streamdet's own encoders in each precision (derived graphs cached under --cache-dir)."""
    cache = args.cache_dir / "streamdet"

    def tower(
        precision: str, *, spin: bool = False, fuse: bool = False, cuda_graph: bool = False
    ) -> Tower:
        return OrtEncoders(
            export_dir,
            device=args.device,
            precision=precision,
            threads=args.threads,
            spin=spin,
            cache_dir=cache,
            fuse=fuse,
            cuda_graph=cuda_graph,
        ).encode_images

    towers: dict[tuple[str, str], Tower] = {}
    for spin in (False, True) if args.spin else (False,):
        backend = "onnxruntime-spin" if spin else "onnxruntime"
        for precision in args.precisions:
            towers[backend, precision] = tower(precision, spin=spin)
    if args.fused:
        for precision in args.precisions:
            if precision != "int8":  # fusions are for float graphs; int8 stays unfused
                towers["onnxruntime", f"{precision}-fused"] = tower(precision, fuse=True)
    if args.cuda_graph:
        for precision in args.precisions:
            towers["onnxruntime-cudagraph", precision] = tower(precision, cuda_graph=True)
    return towers


def streamdet_torch_towers(
    export_dir: Path, hf_dir: Path, args: argparse.Namespace
) -> dict[tuple[str, str], Tower]:
    """streamdet's PyTorch backend in each precision it runs on this device."""
    from streamdet.clip.torch_encoders import TorchEncoders

    return {
        ("streamdet-torch", precision): TorchEncoders(
            export_dir, hf_dir, device=args.device, precision=precision, threads=args.threads
        ).encode_images
        for precision in args.precisions
        if precision == "fp32" or (precision == "fp16" and args.device == "cuda")
    }
