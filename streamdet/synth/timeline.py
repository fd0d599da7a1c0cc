"""Generated videos whose objects appear and leave at known times: ground truth for search.

``timed_video`` draws a fixed background with a few drifting distractor objects that are there
throughout, and one object per ``Appearance`` that is there only from ``start`` to ``end``
seconds. Searching for an appearance's prompt must find a moment inside its interval; the
benchmark (benchmarks/bench_search.py) and the tests (tests/search) grade search with it.
``write_video`` encodes the frames as an H.264 MP4 with PyAV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamdet.synth.backgrounds import random_background
from streamdet.synth.drawing import Placement
from streamdet.synth.scenes import Scene, random_placement, random_placements, render_scene
from streamdet.synth.vocabulary import SHAPES, parse_prompt


@dataclass(frozen=True)
class Appearance:
    """``prompt``'s object is in the video from ``start`` to ``end`` seconds (end excluded)."""

    prompt: str
    start: float
    end: float

    def covers(self, time: float, slack: float = 0.0) -> bool:
        return self.start - slack <= time < self.end + slack


@dataclass(frozen=True)
class TimedVideo:
    """The frames (Scenes, with their objects' boxes), the frame rate and the appearances."""

    scenes: tuple[Scene, ...]
    fps: float
    appearances: tuple[Appearance, ...]

    @property
    def duration(self) -> float:
        return len(self.scenes) / self.fps


def _drift(p: Placement, velocity: np.ndarray, width: int, height: int) -> Placement:
    """One step of ``p``: moved by ``velocity`` (flipped in place at a frame edge)."""
    half = p.extent / 2
    x, y = p.center[0] + velocity[0], p.center[1] + velocity[1]
    if not half <= x <= width - half:
        velocity[0] *= -1
    if not half <= y <= height - half:
        velocity[1] *= -1
    angle = p.angle + (1.0 if p.kind in SHAPES else 0.0)
    return replace(p, center=(float(x), float(y)), angle=float(angle))


def timed_video(
    rng: np.random.Generator,
    appearances: Sequence[Appearance],
    *,
    seconds: float,
    fps: float = 5.0,
    height: int = 180,
    width: int = 320,
    distractors: int = 2,
    speed: float = 2.0,
    size: str | None = None,
    exclude: Sequence[str] = (),
) -> TimedVideo:
    """A video of ``seconds`` at ``fps`` with ``appearances`` (see the module docstring).

    Distractors never match any appearance's prompt, nor any prompt in ``exclude``. ``size``
    ("small"/"large") fixes the size of the appearing objects (None: random); ``speed`` is in
    pixels per frame.
    """
    exclude = [a.prompt for a in appearances] + list(exclude)
    background = random_background(rng, height, width)
    placements = random_placements(
        rng, height, width, n_objects=distractors, exclude=exclude, edge_probability=0.0
    )
    n_static = len(placements)
    for a in appearances:
        kind, colour, chosen = parse_prompt(a.prompt).sample(rng)
        placements.append(
            random_placement(rng, height, width, kind, colour, size or chosen, edge_probability=0)
        )
    angles = rng.uniform(0, 2 * math.pi, size=len(placements))
    velocities = np.stack([np.cos(angles), np.sin(angles)], axis=1) * speed
    jitter = int(rng.integers(2**31))
    scenes = []
    for i in range(round(seconds * fps)):
        t = i / fps
        shown = placements[:n_static] + [
            p for a, p in zip(appearances, placements[n_static:], strict=True) if a.covers(t)
        ]
        scenes.append(render_scene(background, shown, rng=np.random.default_rng(jitter)))
        placements = [_drift(p, velocities[j], width, height) for j, p in enumerate(placements)]
    return TimedVideo(tuple(scenes), fps, tuple(appearances))


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Encode BGR frames (even width and height) as an H.264 MP4 at ``fps`` with PyAV."""
    out = Path(path)
    rate = Fraction(fps).limit_denominator(1000)
    height, width = frames[0].shape[:2]
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.max_b_frames = 0
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out
