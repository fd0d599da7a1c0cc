"""Where a run's frames go: MP4, JSONL (file or stdout), an annotated image, a live window.

Each output takes the source frame, the detector's result and the rendered picture, and says on
``close`` what it wrote. They wrap the writers of ``streamdet.video.sinks``, which own the
crash rule (a partial file published only when finished, finalised on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import IO, Protocol

import cv2
import numpy as np

from streamdet.errors import ConfigError, OutputFolderError
from streamdet.types import FrameResult
from streamdet.video.sinks import ImageWriter, JsonlWriter, Mp4Writer, jsonl_line
from streamdet.video.sources import VideoFrame

_log = logging.getLogger("streamdet.outputs")

#: ``--jsonl -``: write the lines to standard output.
STDOUT = "-"


class Output(Protocol):
    """One destination of a run."""

    needs_picture: bool  # False: the renderer can be skipped for this output

    def write(self, frame: VideoFrame, result: FrameResult, picture: np.ndarray | None) -> None: ...

    def close(self) -> tuple[str, int] | None:
        """Finalise; (what was written, how many frames or lines), or None if nothing."""
        ...


class Mp4Output:
    """Annotated frames to an H.264 MP4 at the source's timestamps (``codec``: libx264, or a
    hardware encoder PyAV offers, e.g. ``h264_nvenc`` on NVIDIA).

    A frame whose size differs from the first one (a camera that reconnected at another
    resolution) is resized to the first size, so one video never breaks mid-run.
    """

    needs_picture = True

    def __init__(
        self, path: Path, *, fps: float | None, overwrite: bool, codec: str = "libx264"
    ) -> None:
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self._writer = Mp4Writer(path, fps=rate, codec=codec, overwrite=overwrite)
        self._size: tuple[int, int] | None = None
        self._warned = False

    def write(self, frame: VideoFrame, result: FrameResult, picture: np.ndarray | None) -> None:
        assert picture is not None
        h, w = picture.shape[:2]
        if self._size is None:
            self._size = (h, w)
        elif (h, w) != self._size:
            if not self._warned:
                _log.warning(
                    "frame size changed from %dx%d to %dx%d; resizing to the first size in %s",
                    self._size[1],
                    self._size[0],
                    w,
                    h,
                    self._writer.path,
                )
                self._warned = True
            picture = cv2.resize(picture, (self._size[1], self._size[0]))
        self._writer.write(picture, frame.pts)

    def close(self) -> tuple[str, int] | None:
        path = self._writer.close()
        return None if path is None else (str(path), self._writer.frames_written)


class JsonlOutput:
    """One JSON line per processed frame, to a file (flushed per line) or to stdout."""

    needs_picture = False

    def __init__(self, path: str, *, overwrite: bool) -> None:
        self._stdout: IO[str] | None = sys.stdout if path == STDOUT else None
        self._writer = None if self._stdout else JsonlWriter(path, overwrite=overwrite)
        self._lines = 0

    def write(self, frame: VideoFrame, result: FrameResult, picture: np.ndarray | None) -> None:
        if self._writer is not None:
            self._writer.write(frame.index, frame.pts, result)
            return
        assert self._stdout is not None
        self._stdout.write(jsonl_line(frame.index, frame.pts, result))
        self._stdout.flush()
        self._lines += 1

    def close(self) -> tuple[str, int] | None:
        if self._writer is None:
            return ("<stdout>", self._lines) if self._lines else None
        path = self._writer.close()
        return None if path is None else (str(path), self._writer.lines_written)


class ImageOutput:
    """The annotated picture of a still-image input, written on close."""

    needs_picture = True

    def __init__(self, path: Path, *, overwrite: bool) -> None:
        self._writer = ImageWriter(path, overwrite=overwrite)

    def write(self, frame: VideoFrame, result: FrameResult, picture: np.ndarray | None) -> None:
        assert picture is not None
        self._writer.write(picture)

    def close(self) -> tuple[str, int] | None:
        path = self._writer.close()
        return None if path is None else (str(path), 1)


class WindowOutput:
    """A live OpenCV window. ``q`` or Esc (or closing the window) asks the run to stop.

    Checked on creation: a display must exist (``DISPLAY``/``WAYLAND_DISPLAY`` on Linux) and
    OpenCV must have a GUI (the ``opencv-python-headless`` wheel streamdet installs by default
    has none; ``pip install opencv-python`` in its place gives one).
    """

    needs_picture = True

    def __init__(self, title: str, on_quit: Callable[[], None]) -> None:
        check_display()
        self._title = title
        self._on_quit = on_quit
        self._shown = 0
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as err:  # pragma: no cover - depends on the machine's GUI
            raise ConfigError(f"--show: OpenCV cannot open a window: {err}") from None

    def write(self, frame: VideoFrame, result: FrameResult, picture: np.ndarray | None) -> None:
        assert picture is not None
        cv2.imshow(self._title, picture)
        self._shown += 1
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self._title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self._on_quit()

    def close(self) -> tuple[str, int] | None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self._title)
        return None


def check_display() -> None:
    """Raise a one-line ``ConfigError`` when no window can be shown here."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise ConfigError(
            "--show needs a display, and none is set (DISPLAY/WAYLAND_DISPLAY are empty); "
            "run without --show and write a file with -o, or run on a desktop session"
        )
    gui = _opencv_gui()
    if not gui:
        raise ConfigError(
            "--show needs OpenCV with a GUI, but this OpenCV has none (opencv-python-headless); "
            "run `pip uninstall -y opencv-python-headless && pip install opencv-python`, "
            "or write a file with -o instead"
        )


def _opencv_gui() -> str:
    """The GUI backend OpenCV was built with ('' when none)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            value = value.strip()
            return "" if value.upper() in ("NONE", "") else value
    return ""


def ensure_folder(path: Path) -> None:
    """Create an output folder (and parents); a one-line error if it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputFolderError(
            f"cannot create output folder '{path}' ({err.strerror}); choose a writable place"
        ) from None
