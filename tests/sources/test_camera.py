"""Cameras: a missing one fails fast, and a camera that drops out is reconnected by the live
loop (index and pts keep increasing) until it stays away too long. OpenCV's capture is replaced by
a fake one, so no camera is needed.
"""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest
from video_helpers import check_frame, increasing
from video_helpers import pattern as _pattern

from streamdet.errors import SourceError, StreamLostError
from streamdet.sources import ReconnectPolicy, camera, open_source
from streamdet.types import Frame

W, H = 64, 48


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    return _pattern(i, width, height)


def test_missing_camera_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="camera 97 cannot be opened"):
        open_source(97)
    with pytest.raises(SourceError, match="camera 97 cannot be opened"):
        open_source("97")
    assert time.monotonic() - started < 5


class FakeCapture:
    """Stands in for cv2.VideoCapture: ``frames`` good reads, then every read fails."""

    def __init__(self, frames: int, gray: bool = False) -> None:
        self.left = frames
        self.gray = gray
        self.released = False

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: W, cv2.CAP_PROP_FRAME_HEIGHT: H}[
            prop
        ]

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        image = pattern(self.left)
        return True, (image[:, :, 0].copy() if self.gray else image)

    def release(self) -> None:
        self.released = True


def fake_cameras(
    monkeypatch: pytest.MonkeyPatch, plan: list[FakeCapture | None]
) -> list[FakeCapture | None]:
    """Each open of camera 0 takes the next entry of ``plan`` (None: the open fails)."""
    opened: list[FakeCapture | None] = []

    def fake_open(index: int) -> FakeCapture | None:
        assert index == 0
        capture = plan.pop(0) if plan else None
        opened.append(capture)
        return capture

    monkeypatch.setattr(camera, "open_camera", fake_open)
    return opened


def test_camera_reconnects_and_keeps_index_and_pts_increasing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opened = fake_cameras(monkeypatch, [FakeCapture(3, gray=True), None, FakeCapture(4)])
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, give_up_after=0.3)
    frames: list[Frame] = []
    with caplog.at_level(logging.INFO, logger="streamdet.sources"):
        source = open_source(0, reconnect=policy)
        assert (source.name, source.live, source.fps) == ("camera 0", True, 30.0)
        assert source.size == (W, H)
        # 3 frames, a failed reopen, 4 frames, then the camera never opens again: give up.
        with source, pytest.raises(StreamLostError, match=r"camera 0 lost .* within 0.3 s"):
            for frame in source.frames(threading.Event()):
                frames.append(frame)
    assert [f.index for f in frames] == list(range(7))
    assert increasing([f.pts for f in frames])
    assert frames[0].pts == 0.0
    for frame in frames:
        check_frame(frame, W, H)  # the gray camera frames came out BGR
    assert all(c is None or c.released for c in opened)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == (
        "camera 0 lost (the camera returned no frame); reconnecting in 0.0 s (attempt 1)"
    )
    assert any("(attempt 2)" in w for w in warnings)  # the failed reopen backed off
    assert any("camera 0 is back" in r.getMessage() for r in caplog.records)


def test_camera_that_does_not_come_back_raises_stream_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, [FakeCapture(2)])
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.1, give_up_after=0.5)
    got = []
    started = time.monotonic()
    with open_source("0", reconnect=policy) as source, pytest.raises(StreamLostError):
        for frame in source.frames(threading.Event()):
            got.append(frame.index)
    assert got == [0, 1]
    assert time.monotonic() - started < 2


def test_stop_during_camera_backoff_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, [FakeCapture(1)])
    stop = threading.Event()
    with open_source(0, reconnect=ReconnectPolicy(initial_delay=30, max_delay=30)) as source:
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        assert [f.index for f in source.frames(stop)] == [0]
    assert time.monotonic() - started < 2
