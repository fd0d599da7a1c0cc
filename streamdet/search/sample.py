"""Frames of a video every few seconds, and one frame at a given time (for contact sheets).

Decoding uses the project's sources (``streamdet.sources.files`` / ``decode``): packets one by
one so one bad packet is skipped, timestamps from the file, upright pictures. Every frame is
decoded (a video has no cheaper way to reach the next sampled time than its key frames), but only
the sampled ones are converted to BGR, which costs about as much as decoding. A still image is
one frame at time 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import numpy as np

from streamdet.errors import SourceError
from streamdet.sources import IMAGE_SUFFIXES
from streamdet.sources.decode import PacketReader, close_container, picture, reason, tag_rotation
from streamdet.sources.files import ImageSource, open_video_file

_log = logging.getLogger("streamdet.search")


def read_image(path: Path) -> np.ndarray:
    """A still image as HxWx3 uint8 BGR, read by the project's image source."""
    return next(ImageSource(path).frames(threading.Event())).image


def _frame_time(frame: av.VideoFrame, origin: float | None) -> tuple[float | None, float | None]:
    """(seconds from the stream's start, origin) for one decoded frame; None when untimed."""
    if frame.time is None:
        return None, origin
    origin = float(frame.time) if origin is None else origin
    return float(frame.time) - origin, origin


def _origin(stream: av.VideoStream) -> float | None:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else None


def sample_frames(path: Path, every: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, HxWx3 uint8 BGR) of the first frame at or after 0, every, 2 * every, ...

    A damaged file yields what decodes before the damage (with a WARNING); a file where no frame
    decodes raises ``SourceError``.
    """
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield 0.0, read_image(path)
        return
    container = open_video_file(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tag, origin = tag_rotation(stream), _origin(stream)
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        frames = iter(PacketReader(container, stream))
        index, due, yielded = 0, 0.0, 0
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as err:
                _log.warning("'%s' is damaged after frame %d (%s)", path, index, reason(err))
                break
            t, origin = _frame_time(frame, origin)
            if t is None:
                t = index / rate if rate else float(index)
            index += 1
            if t + 1e-6 >= due:
                yield t, picture(frame, tag)
                yielded += 1
                due = (int((t + 1e-6) / every) + 1) * every
        if index == 0:
            raise SourceError(f"'{path}' is not a readable video: no frame could be decoded")
    finally:
        close_container(container)


def frame_at(path: Path, time: float) -> np.ndarray:
    """The frame of ``path`` shown at ``time`` seconds (the last one at or before it)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path)
    container = open_video_file(path)
    try:
        stream = container.streams.video[0]
        tag, origin = tag_rotation(stream), _origin(stream)
        start = origin or 0.0
        if stream.time_base is not None and time > 0:
            target = int((start + time) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                container.seek(0)
        best = None
        for frame in PacketReader(container, stream):
            t = float(frame.time) - start if frame.time is not None else 0.0
            if best is not None and t > time + 1e-3:
                break
            best = frame
        if best is None:
            raise SourceError(f"'{path}' has no frame at {time:.2f} s")
        return picture(best, tag)
    except av.error.FFmpegError as err:
        raise SourceError(f"'{path}' cannot be read at {time:.2f} s ({reason(err)})") from None
    finally:
        close_container(container)
