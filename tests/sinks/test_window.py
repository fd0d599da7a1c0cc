"""The live window (``--show``): refused with one line where no window can be shown; shows each
picture and asks the run to stop on ``q``. OpenCV's GUI calls are replaced, so no display is
needed."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.errors import ConfigError
from streamdet.sinks import window
from streamdet.types import Detections, Frame, FrameResult


def test_show_needs_a_display(monkeypatch):
    monkeypatch.setattr(window.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ConfigError, match="needs a display"):
        window.check_display()


def test_show_needs_an_opencv_with_a_gui(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(window, "_opencv_gui", lambda: "")
    with pytest.raises(ConfigError, match="pip install opencv-python"):
        window.check_display()
    monkeypatch.setattr(window, "_opencv_gui", lambda: "GTK3")
    window.check_display()  # no error


def test_the_window_shows_pictures_and_stops_on_q(monkeypatch):
    shown, keys = [], iter([-1, ord("q")])
    monkeypatch.setattr(window, "check_display", lambda: None)
    monkeypatch.setattr(window.cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(window.cv2, "imshow", lambda title, img: shown.append(img.shape))
    monkeypatch.setattr(window.cv2, "waitKey", lambda ms: next(keys))
    monkeypatch.setattr(window.cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(window.cv2, "destroyWindow", lambda *a: None)
    quit_calls = []
    sink = window.WindowSink("t", lambda: quit_calls.append(1))
    img = np.zeros((4, 6, 3), np.uint8)
    frame = Frame(img, 0, 0.0, 0.0)
    result = FrameResult(Detections.empty(), np.zeros((1, 1, 1), np.float32), ("a",), (4, 6), 8)
    assert sink.needs_picture
    sink.write(frame, result, img)
    assert quit_calls == []
    sink.write(frame, result, img)
    assert quit_calls == [1] and shown == [(4, 6, 3), (4, 6, 3)]
    assert sink.close() is None
