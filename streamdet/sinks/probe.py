"""What a written video really holds, found by decoding it (tests check sinks' output with it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from streamdet.errors import VideoReadError
from streamdet.sources.decode import frame_rotation, quarter_turns, tag_rotation


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, found by decoding every frame of its first video stream.

    ``width`` and ``height`` are those of the picture as a player shows it: turned by
    ``rotation``, the counter-clockwise display rotation the stream carries (0 when none; the
    MP4s streamdet writes are upright and carry none). ``fps`` is the container's average rate
    (frames / duration); ``duration`` is in seconds.
    """

    frames: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    duration: float
    rotation: int = 0


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Decode ``path`` and count its frames; ``VideoReadError`` if it is missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise VideoReadError(f"video '{p}' does not exist or is not a file")
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoReadError(f"'{p}' has no video stream")
            stream = container.streams.video[0]
            rotation = tag_rotation(stream)
            frames = 0
            for frame in container.decode(stream):
                if frames == 0:
                    rotation = frame_rotation(frame, rotation)
                frames += 1
            ctx = stream.codec_context
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            rate = stream.average_rate
            fps = float(rate) if rate else (frames / duration if duration > 0 else 0.0)
            width, height = ctx.width, ctx.height
            if quarter_turns(rotation) % 2:
                width, height = height, width
            return VideoInfo(
                frames=frames,
                fps=fps,
                width=width,
                height=height,
                codec=ctx.name,
                pix_fmt=ctx.pix_fmt or "",
                duration=duration,
                rotation=rotation,
            )
    except av.error.FFmpegError as err:
        raise VideoReadError(f"cannot decode video '{p}': {err}") from None
