"""``streamdet demo``: the first thing a new user runs, with nothing to download.

It generates a short video of a street with cars, people and coloured shapes moving about (the
same scene generator the built-in model was trained on), detects a few prompts in every frame
with the shipped ``streamdet/scenes-clip`` model, and writes an annotated H.264 MP4 and a JSONL
file with one line per frame. The clip is a :class:`GeneratedSource`, so the demo runs through
the same capture thread, runner and sinks as ``streamdet run``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.config import DEFAULT_MODEL
from streamdet.detect.detector import Detector
from streamdet.errors import ConfigError
from streamdet.pipeline.runner import run
from streamdet.sinks import JsonlSink, Mp4Sink
from streamdet.sources import GeneratedSource
from streamdet.synth.scenes import moving_video
from streamdet.types import Frame, FrameResult

DEMO_PROMPTS: tuple[str, ...] = ("a red car", "a green car", "a person")


@dataclass(frozen=True)
class DemoReport:
    """What the demo wrote and how fast it ran."""

    video: Path
    jsonl: Path
    frames: int
    detections: dict[str, int]
    seconds: float
    provider: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def demo_frames(n_frames: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    """A reproducible street clip: cars, people and coloured shapes moving about."""
    rng = np.random.default_rng(seed)
    scenes = moving_video(
        rng,
        n_frames,
        height,
        width,
        speed=4.0,
        background="street",
        include=[*DEMO_PROMPTS, "a blue square", "a blue circle"],
        n_objects=1,
        sizes=("large",),
    )
    return [s.image for s in scenes]


def run_demo(
    out_dir: str | Path = "streamdet-demo",
    *,
    model: str | Path = DEFAULT_MODEL,
    prompts: Sequence[str] = DEMO_PROMPTS,
    n_frames: int = 48,
    fps: float = 12.0,
    size: tuple[int, int] = (360, 640),
    seed: int = 0,
    overwrite: bool = False,
    preset: str | None = None,
    **overrides: Any,
) -> DemoReport:
    """Generate the clip, detect ``prompts`` in it and write ``demo.mp4`` + ``demo.jsonl``.

    preset, overrides: the detector's settings (``streamdet.config``; default: the model's)."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ConfigError(f"the demo needs at least one frame, but got {n_frames!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"'{out}' exists and is not a folder; pass another -o folder")
    out.mkdir(parents=True, exist_ok=True)
    detector = Detector(model, prompts, preset=preset, **overrides)
    pictures = demo_frames(n_frames, size[0], size[1], seed)
    source = GeneratedSource(
        lambda: iter(pictures),
        fps=fps,
        frame_count=n_frames,
        name="the demo street clip",
        size=(size[1], size[0]),
    )
    counts = _LabelCounts()
    with (
        Mp4Sink(out / "demo.mp4", fps=fps, overwrite=overwrite) as video,
        JsonlSink(out / "demo.jsonl", overwrite=overwrite) as jsonl,
    ):
        report = run(source, detector, [video, jsonl, counts])
    return DemoReport(
        video=out / "demo.mp4",
        jsonl=out / "demo.jsonl",
        frames=report.frames_processed,
        detections={p: counts.counts[p] for p in detector.prompts},
        seconds=report.seconds,
        provider=report.provider,
    )


class _LabelCounts:
    """A sink that counts the boxes of each prompt, for the demo's summary line."""

    needs_picture = False

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None) -> None:
        self.counts.update(result.labels())

    def close(self) -> tuple[str, int] | None:
        return None
