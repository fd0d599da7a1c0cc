"""Text for the terminal while a run goes: a progress bar for files, a stats line for ``--stats``.

Both are plain functions of a ``Progress`` snapshot so they are tested without a terminal;
``Terminal`` puts them on stderr (the bar only when stderr is a terminal, redrawn in place).
"""

from __future__ import annotations

import sys

from streamdet.pipeline.runner import Progress
from streamdet.pipeline.stats import StageClock

BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(p: Progress, name: str = "") -> str:
    """``name [#####.......] 120/300 frames  11.8 FPS  ETA 0:15`` (no bar when the total is
    unknown)."""
    head = f"{name} " if name else ""
    if p.expected:
        done = min(p.processed, p.expected)
        filled = int(BAR_WIDTH * done / p.expected)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        eta = (p.expected - done) / p.fps if p.fps > 0 else None
        eta_text = f"ETA {_duration(eta)}" if eta is not None else "ETA ?"
        return f"{head}[{bar}] {done}/{p.expected} frames  {p.fps:.1f} FPS  {eta_text}"
    return f"{head}{p.processed} frames  {p.fps:.1f} FPS  {_duration(p.elapsed)}"


def stats_line(p: Progress, clock: StageClock) -> str:
    """One line of live stats: FPS, drops, latency and the recent mean of each stage."""
    parts = [f"{p.processed} frames", f"{p.fps:.1f} FPS", f"dropped {p.dropped}"]
    for stage in ("capture_wait", "preprocess", "encode", "score", "render", "write", "latency"):
        value = clock.recent_mean(stage)
        if value is not None:
            parts.append(f"{stage} {value:.1f} ms")
    return "stats: " + ", ".join(parts)


class Terminal:
    """Progress bar (files, when stderr is a terminal) and live stats lines on stderr."""

    def __init__(self, name: str, live: bool) -> None:
        self.name = name
        self.bar = sys.stderr.isatty() and not live
        self._drawn = False

    def progress(self, p: Progress) -> None:
        if self.bar:
            sys.stderr.write("\r" + progress_line(p, self.name) + "\x1b[K")
            sys.stderr.flush()
            self._drawn = True

    def live_stats(self, p: Progress, clock: StageClock) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            self._drawn = False
        print(stats_line(p, clock), file=sys.stderr, flush=True)

    def end(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._drawn = False
