"""Local files: video files (PyAV) and still images (OpenCV).

* **Video files** are read completely and in order: no frame is dropped, ``pts`` comes from the
  file (variable frame rate kept). A damaged or truncated file yields every frame that decodes,
  then a WARNING says where it broke and the read ends normally; a file where nothing decodes is
  an error. A display rotation (phone videos) is read from the first frame when the file is
  opened, so ``size`` is the upright size before any frame is read, and every frame comes out
  upright (see ``streamdet.sources.decode``).
* **Still images** are one frame at ``pts`` 0.0 (OpenCV applies their EXIF orientation).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from streamdet.detect.frames import as_bgr
from streamdet.errors import SourceError
from streamdet.sources.base import Source
from streamdet.sources.decode import (
    PacketReader,
    close_container,
    first_rotation,
    hwaccel_kwargs,
    picture,
    reason,
    stream_fps,
    stream_size,
    tag_rotation,
)
from streamdet.types import Frame

_log = logging.getLogger("streamdet.sources")


def open_video_file(path: Path, hwaccel: str | None = None) -> av.container.InputContainer:
    """Open ``path`` with PyAV (read-only; with hardware decoder `hwaccel` if given) and check
    that it has a video stream."""
    kwargs = hwaccel_kwargs(hwaccel)
    try:
        container = av.open(str(path), mode="r", **kwargs)
    except Exception as err:
        if hwaccel is not None:  # PyAV creates the device here: no GPU, no driver, ...
            close_container(open_video_file(path))  # a bad file says so itself
            raise SourceError(
                f"hardware decoding ({hwaccel}) cannot start for '{path}' ({reason(err)}); "
                "drop --hwaccel to decode on the CPU"
            ) from None
        raise SourceError(
            f"'{path}' is not a readable video ({reason(err)}); check that it is a complete "
            "video file (an MP4 cut short before its index cannot be read)"
        ) from None
    if not container.streams.video:
        close_container(container)
        raise SourceError(f"'{path}' has no video stream; give a video or image file")
    return container


class FileSource(Source):
    """A video file read with PyAV: every frame, in order, with the file's timestamps."""

    def __init__(self, path: Path, hwaccel: str | None = None) -> None:
        # Opened here so that a bad file fails at open; its first frame gives the rotation, so
        # the probe has read from it and frames() opens the file again to start from frame 0.
        container = open_video_file(path, hwaccel)
        try:
            stream = container.streams.video[0]
            fps, frame_count = stream_fps(stream), stream.frames or None
            size = stream_size(stream, first_rotation(container, stream))
        finally:
            close_container(container)
        super().__init__(str(path), live=False, fps=fps, frame_count=frame_count, size=size)
        self._path = path
        self._hwaccel = hwaccel

    def _release_unused(self) -> None:
        pass  # nothing stays open between open_source and frames()

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self._check_open()
        container = open_video_file(self._path, self._hwaccel)
        try:
            yield from self._read(container, stop)
        finally:
            close_container(container)

    def _read(
        self, container: av.container.InputContainer, stop: threading.Event
    ) -> Iterator[Frame]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tag = tag_rotation(stream)
        # pts are seconds from the stream's start time (from the first timestamp if it has none).
        origin = (
            float(stream.start_time * stream.time_base) if stream.start_time is not None else None
        )
        step = 1.0 / self.fps if self.fps else None
        reader = PacketReader(container, stream)
        frames = iter(reader)
        index, pts, broke = 0, None, None
        while not self._should_stop(stop):
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as err:  # a read error: the file is cut or damaged here
                broke = reason(err)
                break
            if frame.time is not None:
                origin = float(frame.time) if origin is None else origin
                pts = float(frame.time) - origin
            elif index == 0:
                pts = 0.0
            elif pts is not None:  # no timestamp: one nominal interval after the previous frame
                pts = pts + step if step is not None else None
            yield Frame(picture(frame, tag), index, pts, time.monotonic())
            index += 1
        else:
            return  # stopped: not the end of the file, so there is nothing to check
        if index == 0:
            why = broke or reader.first_bad or "no frame decodes"
            raise SourceError(
                f"'{self._path}' is not a readable video: no frame could be decoded ({why}); "
                "check that the file is complete"
            )
        self._warn_if_damaged(reader, index, broke, pts, stream, container)

    def _warn_if_damaged(
        self,
        reader: PacketReader,
        count: int,
        broke: str | None,
        last_pts: float | None,
        stream: av.VideoStream,
        container: av.container.InputContainer,
    ) -> None:
        """Log one WARNING when the file broke off, had undecodable packets or ended early."""
        if broke is not None:
            _log.warning(
                "'%s' is damaged after frame %d (%s); read the %d frames before it",
                self._path, count, broke, count,
            )  # fmt: skip
        elif reader.bad_packets:
            _log.warning(
                "'%s' is damaged after frame %d: %d packet(s) could not be decoded and were "
                "skipped (%s); read %d frames",
                self._path, reader.frames_before_first_bad, reader.bad_packets, reader.first_bad,
                count,
            )  # fmt: skip
        elif self.frame_count is not None and count < self.frame_count:
            _log.warning(
                "'%s' is damaged after frame %d: it ended there but its header lists %d frames "
                "(truncated file?)",
                self._path, count, self.frame_count,
            )  # fmt: skip
        elif self._ends_early(last_pts, stream, container):
            _log.warning(
                "'%s' is damaged after frame %d: it ended at %.2f s but its header says %.2f s "
                "(truncated file?)",
                self._path, count, last_pts, self._duration(stream, container),
            )  # fmt: skip

    @staticmethod
    def _duration(stream: av.VideoStream, container: av.container.InputContainer) -> float | None:
        """The video's duration from the header, in seconds, if it has one of its own."""
        if stream.duration:
            return float(stream.duration * stream.time_base)
        if container.duration and len(container.streams) == 1:
            return container.duration / av.time_base
        return None

    def _ends_early(
        self,
        last_pts: float | None,
        stream: av.VideoStream,
        container: av.container.InputContainer,
    ) -> bool:
        """Last frame well before the header's duration (formats that do not store a count)."""
        duration = self._duration(stream, container)
        if duration is None or last_pts is None or self.frame_count is not None:
            return False
        slack = 0.5 + (2.0 / self.fps if self.fps else 0.0)
        return last_pts + slack < duration


class ImageSource(Source):
    """A still image: one frame at pts 0.0."""

    def __init__(self, path: Path) -> None:
        image = self._decode(path)
        super().__init__(
            str(path), live=False, fps=None, frame_count=1, size=(image.shape[1], image.shape[0])
        )
        self._path = path
        self._image: np.ndarray | None = image

    @staticmethod
    def _decode(path: Path) -> np.ndarray:
        try:
            data = np.fromfile(path, np.uint8)  # not cv2.imread: it fails on non-ASCII paths
        except OSError as err:
            raise SourceError(f"'{path}' cannot be read ({err.strerror}); check it") from None
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise SourceError(
                f"'{path}' is not a readable image; PNG, JPEG, BMP, TIFF and WebP are supported"
            )
        return np.ascontiguousarray(as_bgr(image))

    def _release_unused(self) -> None:
        self._image = None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self._check_open()
        image = self._image if self._image is not None else self._decode(self._path)
        if not self._should_stop(stop):
            yield Frame(image, 0, 0.0, time.monotonic())
