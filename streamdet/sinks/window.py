"""A live OpenCV window (``streamdet run --show``), and the check that one can be shown here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

import cv2
import numpy as np

from streamdet.errors import ConfigError
from streamdet.types import Frame, FrameResult


class WindowSink:
    """Shows each picture in an OpenCV window. ``q`` or Esc (or closing the window) calls
    ``on_quit``, which asks the run to stop.

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

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None) -> None:
        cv2.imshow(self._title, frame.image if picture is None else picture)
        self._shown += 1
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self._title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self._on_quit()

    def close(self) -> tuple[str, int] | None:
        """Close the window; a window writes nothing, so this returns None."""
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
