"""What a written video really holds, found by decoding it (tests check sinks' output with it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from streamdet.errors import VideoReadError


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, found by decoding every frame of its first video stream.

    fps is the container's average rate (frames / duration); duration is in seconds.
    """

    frames: int
    fps: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    duration: float


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
            frames = sum(1 for _ in container.decode(stream))
            ctx = stream.codec_context
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            rate = stream.average_rate
            fps = float(rate) if rate else (frames / duration if duration > 0 else 0.0)
            return VideoInfo(
                frames=frames,
                fps=fps,
                width=ctx.width,
                height=ctx.height,
                codec=ctx.name,
                pix_fmt=ctx.pix_fmt or "",
                duration=duration,
            )
    except av.error.FFmpegError as err:
        raise VideoReadError(f"cannot decode video '{p}': {err}") from None
