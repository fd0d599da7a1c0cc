"""Per-stage latency, FPS and drop counts for a run, live and at the end.

Stages (milliseconds per frame): ``capture_wait`` (inference waiting for a frame: near zero means
inference is the bottleneck), ``preprocess``, ``encode``, ``score`` (scoring and boxes, from the
detector's own ``Timings``), ``track`` (the tracker, when the run tracks), ``render``, ``write``
(all sinks), and ``latency``: from the moment the frame was read from the source to the moment its
output was written, the number a live user feels. Percentiles come from the last ``WINDOW`` frames
so that a long live run keeps a fixed memory; means and counts cover the whole run.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np

STAGES: tuple[str, ...] = (
    "capture_wait",
    "preprocess",
    "encode",
    "score",
    "track",
    "render",
    "write",
    "latency",
)

#: Frames kept for percentiles.
WINDOW = 2000


@dataclass(frozen=True)
class StageSummary:
    """Milliseconds for one stage: mean over the run, median/p95/max over the last frames."""

    mean: float
    p50: float
    p95: float
    max: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(getattr(self, k), 2) for k in ("mean", "p50", "p95", "max")}


class StageClock:
    """Collects per-frame milliseconds for each stage; safe to feed from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent = {s: collections.deque(maxlen=WINDOW) for s in STAGES}
        self._total = dict.fromkeys(STAGES, 0.0)
        self._count = dict.fromkeys(STAGES, 0)

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self._recent[stage].append(ms)
            self._total[stage] += ms
            self._count[stage] += 1

    def summary(self) -> dict[str, StageSummary]:
        """Stages that saw at least one frame."""
        with self._lock:
            out = {}
            for s in STAGES:
                if not self._count[s]:
                    continue
                recent = np.asarray(self._recent[s], np.float64)
                out[s] = StageSummary(
                    mean=self._total[s] / self._count[s],
                    p50=float(np.percentile(recent, 50)),
                    p95=float(np.percentile(recent, 95)),
                    max=float(recent.max()),
                )
            return out

    def recent_mean(self, stage: str, last: int = 30) -> float | None:
        with self._lock:
            values = list(self._recent[stage])[-last:]
        return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class RunReport:
    """How one run went: what it read, processed, dropped and wrote, and how fast."""

    source: str
    live: bool
    frames_read: int
    frames_processed: int
    frames_dropped: int
    frames_skipped: int
    seconds: float
    stages: dict[str, StageSummary]
    outputs: dict[str, int]  # path -> frames (MP4, image) or lines (JSONL) written
    interrupted: bool
    provider: str
    #: The detector's resolved configuration (``DetectorConfig.to_dict()``), when it has one.
    config: dict | None = None
    #: Image-tower work summed over the run: windows and verification crops computed and
    #: reused (``streamdet.types.Workload.to_dict()``).
    work: dict[str, int] | None = None
    #: Why the source ended early (a many-stream run goes on without it), in one line.
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "live": self.live,
            "frames_read": self.frames_read,
            "frames_processed": self.frames_processed,
            "frames_dropped": self.frames_dropped,
            "frames_skipped": self.frames_skipped,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "stages_ms": {k: v.to_dict() for k, v in self.stages.items()},
            "outputs": dict(self.outputs),
            "interrupted": self.interrupted,
            "provider": self.provider,
            "config": self.config,
            "work": self.work,
            "error": self.error,
        }

    def lines(self) -> list[str]:
        """The human summary printed at the end of a run."""
        how = "stopped" if self.interrupted else "done"
        if self.error is not None:
            how = f"ended early ({self.error})"
        head = (
            f"{self.source}: {how}: {self.frames_processed} frames in {self.seconds:.1f} s "
            f"({self.fps:.1f} FPS, {self.provider})"
        )
        if self.live or self.frames_dropped or self.frames_skipped:
            head += f"; read {self.frames_read}, dropped {self.frames_dropped}"
            if self.frames_skipped:
                head += f", skipped by --max-fps {self.frames_skipped}"
        out = [head]
        if self.work and self.work.get("windows_reused"):
            computed, reused = self.work["windows_computed"], self.work["windows_reused"]
            share = reused / max(1, computed + reused)
            out.append(f"  windows computed {computed}, reused {reused} ({share:.0%})")
        if self.stages:
            parts = [f"{k} {v.mean:.1f}/{v.p95:.1f}" for k, v in self.stages.items()]
            out.append("  ms per frame (mean/p95): " + ", ".join(parts))
        for path, n in self.outputs.items():
            unit = "line" if path.endswith(".jsonl") or path == "<stdout>" else "frame"
            out.append(f"  wrote {path} ({n} {unit}{'' if n == 1 else 's'})")
        if not self.outputs:
            out.append("  wrote nothing")
        return out
