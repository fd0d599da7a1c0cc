"""Text for the terminal while a run goes: a progress bar for files, a stats line for ``--stats``.

Both are plain functions of a ``Progress`` snapshot so they are tested without a terminal;
``Terminal`` puts them on stderr (the bar only when stderr is a terminal, redrawn in place).
"""

from __future__ import annotations

import sys
import time

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


def files_line(done: int, total: int, frames: int, elapsed: float, failed: int = 0) -> str:
    """``[#####.......] 3/10 files  1200 frames  48.0 FPS  ETA 0:21  1 failed`` (a folder run)."""
    done = min(done, total)
    filled = int(BAR_WIDTH * done / total) if total else BAR_WIDTH
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    fps = frames / elapsed if elapsed > 0 else 0.0
    eta = elapsed / done * (total - done) if done else None
    text = f"[{bar}] {done}/{total} files  {frames} frames  {fps:.1f} FPS  "
    text += f"ETA {_duration(eta)}" if eta is not None else "ETA ?"
    return text + (f"  {failed} failed" if failed else "")


class FilesTerminal:
    """A folder run on stderr: a line per finished or failed file, and a bar of files done
    (redrawn in place, only when stderr is a terminal). ``quiet``: nothing at all (the API)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar = not quiet and sys.stderr.isatty()
        self.total = self.done = self.failed = self.frames = self.running_frames = 0
        self.start = time.monotonic()

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        sys.stderr.write(("\r\x1b[K" if self.bar else "") + text + "\n")
        self._draw()

    def _draw(self) -> None:
        if self.bar and self.total:
            frames = self.frames + self.running_frames
            line = files_line(
                self.done, self.total, frames, time.monotonic() - self.start, self.failed
            )
            sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()

    def begin(self, total: int, skipped: int, removed_partials: int = 0) -> None:
        self.total, self.done, self.start = total, skipped, time.monotonic()
        if skipped:
            self._print(f"streamdet: {skipped} of {total} inputs skipped: their outputs exist")
        if removed_partials:
            self._print(f"streamdet: removed {removed_partials} partial file(s) of a killed run")

    def file_done(self, line: str, frames: int) -> None:
        self.done += 1
        self.frames += frames
        self.running_frames = 0
        self._print(line)

    def file_failed(self, line: str) -> None:
        self.done += 1
        self.failed += 1
        self._print(f"streamdet: failed: {line}")

    def tick(self, running_frames: int) -> None:
        """Frames done so far in the files being run."""
        self.running_frames = running_frames
        if not self.quiet:
            self._draw()

    def end(self) -> None:
        if self.bar and self.total:
            sys.stderr.write("\n")
            sys.stderr.flush()
