"""What the speed benchmarks share: where things are, the prompt sets, the frame, the PyTorch
clip normaliser and text embeddings, and how a report is written.

benchmarks/ is a folder of scripts, not a package: each script runs with this folder on its path
(Python puts a script's folder there), and the tests get it from pytest's ``pythonpath``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
CACHE_DIR = HERE / ".cache"
SHARED = HERE.parent.parent / "shared"
SHARED_CLIP_DIR = SHARED / "models" / "clip-vit-base-patch32-noweights"
MEDIA = SHARED / "media"
VIDEO = MEDIA / "dashcam-highway-1280x720.mp4"

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


def ms_since(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - start) * 1e3


def command_line(script: str, argv: Sequence[str]) -> str:
    """How the run is recorded in its JSON: ``python benchmarks/<script> ARGS``."""
    return shlex.join(["python", f"benchmarks/{script}", *argv])


def write_report(report: Mapping[str, Any], out: Path) -> None:
    """The report as indented JSON at ``out`` (written whole, then moved into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    partial.replace(out)


def logger(name: str) -> Callable[[str], None]:
    """A function printing ``[name] message`` to stderr (progress, not results)."""

    def log(message: str) -> None:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    return log


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


def read_clip(path: Path, size: tuple[int, int] | None, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of a clip as BGR uint8, at ``size`` (width, height; area
    resampling) or as they are (None); fewer when the clip is shorter, none when it is missing."""
    capture = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    try:
        while len(out) < frames:
            ok, image = capture.read()
            if not ok:
                break
            if size is not None and image.shape[1::-1] != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            out.append(np.ascontiguousarray(image))
    finally:
        capture.release()
    return out


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


def text_embeddings(model: Any, processor: Any, prompts: Sequence[str]) -> np.ndarray:
    """(K, D) L2-normalised text embeddings from the PyTorch model, computed once (cached)."""
    import torch

    tokens = processor.tokenizer(list(prompts), padding=True, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.get_text_features(**tokens)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out).cpu().numpy()


def parse_size(text: str) -> tuple[int, int]:
    """A ``--size`` value: ``640x360`` -> (640, 360); argparse's error otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h
