"""bench_modes' table of modes and how one mode is run end to end on one clip.

A mode is a name, a preset and setting overrides by flat name (``streamdet.config.SETTINGS``):
exactly what ``Detector(model, prompts, preset=..., **overrides)`` takes, nothing else. A mode
whose settings today's code refuses (``REFUSED``: an unknown setting such as ``reuse``, a
method it does not have) is recorded as skipped with the one-line reason, so the harness runs
before the modes exist and measures them once they do, without a change here.

Windows computed and reused are read from each frame's result with ``getattr`` (on its
``timings``, then on the result itself): reported where the detector reports them, absent
otherwise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from _common import generated_frame
from bench_pipeline import run_file
from streamdet.detect.detector import Detector
from streamdet.errors import ConfigError, MissingDependencyError, ProviderError
from streamdet.quality.settings import NamedSetting
from streamdet.types import FrameResult

#: Per-frame counts a detector may report, looked up on ``result.timings`` then on ``result``.
COUNTS = (
    "windows_computed",
    "windows_reused",
    "views_computed",
    "views_reused",
    "frames_computed",
    "frames_reused",
)


@dataclass(frozen=True)
class Mode:
    """One way of running the detector: ``preset`` (None: the model's own settings) plus
    ``overrides``; ``without`` names the mode this one is compared with for windows computed
    (a reuse mode's mode without reuse)."""

    name: str
    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    without: str | None = None

    def setting(self, run_overrides: Mapping[str, Any]) -> NamedSetting:
        """The mode as the quality benchmark's named setting, the run's settings below its own."""
        merged = MappingProxyType({**run_overrides, **self.overrides})
        return NamedSetting(self.name, merged, self.preset)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the preset and overrides."""
        return {"preset": self.preset, "overrides": dict(self.overrides), "without": self.without}


def _mode(
    name: str, preset: str | None = None, without: str | None = None, **overrides: Any
) -> Mode:
    return Mode(name, preset, MappingProxyType(overrides), without)


#: THE table of modes: a new mode is one line here.
MODES: Mapping[str, Mode] = MappingProxyType(
    {
        m.name: m
        for m in (
            _mode("windows", method="windows", reuse=False),
            _mode("windows+reuse", without="windows", method="windows", reuse=True),
            _mode("dense", method="dense", reuse=False),
            _mode("dense+reuse", without="dense", method="dense", reuse=True),
            # the default before it took the mean of two crops: one crop for each of 16 boxes
            _mode("dense+reuse+1crop", method="dense", reuse=True, verify_margins=(1.5,)),
            # two crops for every box, the best one (the default: the best within 16 crops)
            _mode(
                "dense+reuse+2crops",
                method="dense",
                reuse=True,
                verify_margins=(1.5, 2.0),
                verify_recheck=0.0,
                verify_combine="best",
                verify_budget=32,
            ),
            # the 2x crop as a second opinion for boxes the 1.5x one is unsure of, at most 12
            # boxes a frame (bench_verify's "second opinion"; not the default: docs/benchmarks.md)
            _mode(
                "dense+reuse+recheck",
                method="dense",
                reuse=True,
                verify_margins=(1.5, 2.0),
                verify_recheck=0.05,
                verify_recheck_floor=0.4,
                verify_max=12,
                verify_combine="best",
            ),
            # the default before it trusted sure boxes: the mean of two crops within 16, every
            # box held to one floor (verify_trust 0)
            _mode(
                "dense+reuse+untrusted",
                method="dense",
                reuse=True,
                verify_trust=0.0,
                verify_floor=0.2,
                verify_combine="mean",
            ),
            # every frame at its own size (max_side 0): 16-pixel tokens over a 1280x720 frame, as
            # before the built-in model saw frames longer than 640 pixels at 640 (the same as
            # the default at 640x360: run with --size 1280x720)
            _mode("dense+reuse+full-res", method="dense", reuse=True, max_side=0),
            # the default with touching objects' regions never cut (split 0, the default before)
            _mode("dense+reuse+unsplit", method="dense", reuse=True, split=0),
            # the default verifying up to 32 boxes a frame (the default is 16)
            _mode("dense+reuse+verify32", method="dense", reuse=True, verify_max=32),
            # the default with boxes left where the frame's heatmap put them (verify_refine 0)
            _mode("dense+reuse+unrefined", method="dense", reuse=True, verify_refine=0.0),
            # the default moving boxes by their first view's tokens alone, as it did before it
            # blended in the second view's (verify_refine_second 0.4)
            _mode(
                "dense+reuse+first-view",
                method="dense",
                reuse=True,
                verify_refine=0.4,
                verify_refine_second=0.0,
            ),
            # tokens 12 pixels apart instead of 16 (the frame scaled up): more found on held-out
            # scenes, about twice the one pass's work (not the default: docs/benchmarks.md)
            _mode("dense+reuse+ts0.75", method="dense", reuse=True, token_scale=0.75),
            _mode("fast", "fast"),
            # two passes: coarse tokens over the frame, 12-pixel ones over its candidates
            # (streamdet.detect.zoom; not the default: docs/benchmarks.md)
            _mode("fine", "fine", reuse=True),
            _mode("writeup-int8", "writeup", precision="int8"),
        )
    }
)
#: What makes a mode skipped rather than failed: settings today's code does not have or refuses,
#: a device it cannot start, a package it lacks.
REFUSED = (ConfigError, ProviderError, MissingDependencyError)
#: The mode every other is compared with for speed (the write-up's grid in int8).
WRITEUP = "writeup-int8"


def frame_counts(result: FrameResult) -> dict[str, int]:
    """The window counts ``result`` reports (``COUNTS``), by name; empty when it reports none."""
    found = {}
    for name in COUNTS:
        for holder in (getattr(result, "work", None), getattr(result, "timings", None), result):
            value = getattr(holder, name, None)
            if value is not None:
                found[name] = int(value)
                break
    return found


class CountingDetector:
    """A detector that keeps what each frame's result reports of windows computed and reused;
    everything else is the wrapped detector's (the pipeline sees no difference)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.counts: list[dict[str, int]] = []

    @property
    def provider(self) -> str:
        return self.detector.provider

    @property
    def config(self) -> Any:
        return self.detector.config

    def set_prompts(self, prompts: Sequence[str]) -> None:
        self.detector.set_prompts(prompts)

    def detect(self, frame: np.ndarray) -> FrameResult:
        result = self.detector.detect(frame)
        self.counts.append(frame_counts(result))
        return result

    def summary(self) -> dict[str, float]:
        """Mean per frame of each count every frame reported (a count some frames lack is left
        out: it would not be a mean over the run)."""
        out = {}
        for name in COUNTS:
            values = [c[name] for c in self.counts if name in c]
            if values and len(values) == len(self.counts):
                out[name] = round(statistics.mean(values), 2)
        return out


@dataclass(frozen=True)
class ModeRun:
    """One mode end to end on one clip with one model; ``reason`` says why it was skipped."""

    model: str
    clip: str
    size: str
    mode: str
    frames: int = 0
    s_per_frame: float | None = None
    fps: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    grid_windows: int | None = None  # the window grid's size (windows method)
    windows: dict[str, float] = field(default_factory=dict)  # COUNTS, mean per frame
    provider: str | None = None
    config: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def build_detector(
    model: str | Path, prompts: Sequence[str], mode: Mode, run_overrides: Mapping[str, Any]
) -> Detector:
    """The mode's detector: its preset, the run's settings, its own overrides above them."""
    setting = mode.setting(run_overrides)
    return Detector(model, prompts, preset=setting.preset, **setting.overrides)


def run_mode(
    slot: str,
    model: str | Path,
    prompts: Sequence[str],
    mode: Mode,
    clip: Path,
    size: tuple[int, int],
    *,
    run_overrides: Mapping[str, Any],
    work: Path,
    codec: str = "libx264",
    hwaccel: str | None = None,
) -> ModeRun:
    """``mode`` end to end on ``clip`` (already ``size``, w x h): build the detector, warm it on a
    generated frame of that size (sessions, graphs, first-call allocations; not the clip's own
    first frame, which would let a reuse mode start with a primed cache), then decode -> detect
    -> draw -> H.264 encode the whole clip (``bench_pipeline.run_file``).

    Settings, a device or a dependency the code refuses when the detector is built or first run
    (``REFUSED``) make the run skipped, with the one-line reason; anything else is raised."""
    w, h = size
    base = ModeRun(model=slot, clip=clip.name, size=f"{w}x{h}", mode=mode.name)
    try:
        detector = build_detector(model, prompts, mode, run_overrides)
        detector.detect(generated_frame(w, h))
    except REFUSED as error:
        return replace(base, reason=f"{type(error).__name__}: {error}")
    counting = CountingDetector(detector)
    report = run_file(counting, clip, work / f"{slot}-{mode.name}-{clip.name}", codec, hwaccel)
    grid = detector.grid(h, w) if detector.config.scoring.method == "windows" else None
    return replace(
        base,
        frames=report.frames_processed,
        s_per_frame=round(report.seconds / report.frames_processed, 6),
        fps=round(report.fps, 3),
        stages_ms={k: round(v.mean, 2) for k, v in report.stages.items()},
        grid_windows=None if grid is None else len(grid),
        windows=counting.summary(),
        provider=detector.provider,
        config=detector.config.to_dict(),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 4 places; None when either is missing or zero."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 4)


def windows_computed(run: Mapping[str, Any]) -> float | None:
    """Windows computed per frame: as reported, else the whole grid (nothing is reused)."""
    reported = run["windows"].get("windows_computed")
    return reported if reported is not None else run["grid_windows"]


def run_ratios(
    runs: Sequence[Mapping[str, Any]], peer_s: Mapping[tuple[str, str], Mapping[str, float]]
) -> list[dict[str, Any]]:
    """Each run's speed-ups from the recorded numbers (x > 1: the mode is x times faster):
    against the peer's model time in each precision on the same clip and model slot, against
    ``writeup-int8`` on the same clip and model, and the mode without reuse's windows computed
    over this one's (``fewer_windows_than_without``)."""
    by_key = {(r["model"], r["clip"], r["mode"]): r for r in runs}
    out = []
    for r in runs:
        ratios: dict[str, float | None] = {}
        if r["reason"] is None:
            s = r["s_per_frame"]
            for precision, peer in peer_s.get((r["model"], r["clip"]), {}).items():
                ratios[f"vs_peer_{precision}"] = ratio(peer, s)
            writeup = by_key.get((r["model"], r["clip"], WRITEUP))
            if writeup is not None and writeup["reason"] is None:
                ratios["vs_writeup_int8"] = ratio(writeup["s_per_frame"], s)
            without = MODES[r["mode"]].without if r["mode"] in MODES else None
            other = by_key.get((r["model"], r["clip"], without)) if without else None
            if other is not None and other["reason"] is None:
                ratios["fewer_windows_than_without"] = ratio(
                    windows_computed(other), windows_computed(r)
                )
        out.append({**r, "ratios": ratios})
    return out
