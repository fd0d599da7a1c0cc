"""Local cameras through OpenCV: a live source that reconnects when the camera drops out.

Cameras always decode on the CPU; ``pts`` are seconds since the first frame (monotonic clock).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from streamdet.detect.frames import as_bgr
from streamdet.errors import SourceError
from streamdet.sources.live import LiveSource, ReadFailure, ReconnectPolicy


def open_camera(index: int) -> cv2.VideoCapture | None:
    """An opened OpenCV capture for camera ``index``, or None (tests replace this function).

    OpenCV's own warnings ("can't open camera by index", one per backend tried) are silenced
    while it probes: the one-line ``SourceError`` says what happened.
    """
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            return capture
        capture.release()
        return None
    finally:
        cv2.utils.logging.setLogLevel(previous)


class CameraSource(LiveSource[Any]):
    """A local camera through OpenCV."""

    def __init__(self, index: int, *, live: bool, reconnect: ReconnectPolicy | None) -> None:
        self._index = index
        self._what = f"camera {index}"
        capture = open_camera(index)
        if capture is None:
            raise SourceError(
                f"camera {index} cannot be opened: no such device or it is busy; check the "
                "index (on Linux list cameras with `ls /dev/video*`) and close other programs "
                "using it"
            )
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        super().__init__(
            f"camera {index}",
            capture,
            live=live,
            reconnect=reconnect,
            fps=fps if math.isfinite(fps) and fps > 0 else None,
            size=(width, height) if width > 0 and height > 0 else None,
        )

    def _connect(self) -> Any:
        capture = open_camera(self._index)
        if capture is None:
            raise ReadFailure("cannot be opened: no such device or it is busy")
        return capture

    def _read(self, resource: Any) -> Iterator[tuple[np.ndarray, float | None]]:
        while True:
            try:
                ok, image = resource.read()
            except cv2.error as err:  # OpenCV's text is several lines; keep the last one
                lines = str(err).strip().splitlines() or ["OpenCV error"]
                raise ReadFailure(f"reading failed: {lines[-1]}") from None
            if not ok or image is None:
                raise ReadFailure("the camera returned no frame")
            yield np.ascontiguousarray(as_bgr(image)), None

    def _release(self, resource: Any) -> None:
        resource.release()
