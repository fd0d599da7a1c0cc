"""Test videos and checks shared by the source, sink and pipeline tests (tests/ is on the import
path through its conftest.py, so ``from video_helpers import ...`` works from every folder)."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamdet.sources import Source
from streamdet.types import Frame

#: The MPEG clock: exact for 24 fps and for the variable frame rates the tests use.
TB = Fraction(1, 90000)


def pattern(i: int, width: int, height: int) -> np.ndarray:
    """A smooth BGR pattern that moves with i (smooth, so H.264 keeps it within a few levels)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    b = 128 + 60 * np.sin(2 * np.pi * (x + 4 * i) / max(width, 2))
    g = 128 + 60 * np.cos(2 * np.pi * (y + 2 * i) / max(height, 2))
    r = 60 + 120 * (x + y) / max(width + height, 1)
    return np.stack([b, g, r], axis=-1).round().astype(np.uint8)


def corner_block(i: int, width: int, height: int) -> np.ndarray:
    """A dark grey picture with a red block in its top-left corner (a third of the height, a
    quarter of the width): which way up it is shows at a glance."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[: height // 3, : width // 4] = (0, 0, 255)
    return image


def make_video(
    path: Path,
    n: int = 12,
    *,
    fps: int = 24,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    times: Sequence[float] | None = None,
    faststart: bool = False,
    time_base: Fraction = TB,
    rotation: float | None = None,
    metadata: dict[str, str] | None = None,
    picture: Callable[[int, int, int], np.ndarray] = pattern,
) -> Path:
    """Encode n frames of ``picture(i, width, height)`` at ``fps`` (or at ``times``, seconds) with
    PyAV. ``rotation``: a display rotation (counter-clockwise degrees) stored in the stream's
    display matrix, as a phone does. ``metadata``: tags of the video stream."""
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        stream.codec_context.max_b_frames = 0
        if rotation is not None:
            stream.set_display_rotation(rotation)
        stream.metadata.update(metadata or {})
        for i in range(n if times is None else len(times)):
            image = picture(i, width, height)
            if pix_fmt == "gray":
                frame = av.VideoFrame.from_ndarray(image[:, :, 1].copy(), format="gray")
            else:
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = round((i / fps if times is None else times[i]) / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def read_all(source: Source, stop: threading.Event | None = None) -> list[Frame]:
    return list(source.frames(stop or threading.Event()))


def increasing(values: Sequence[float | None]) -> bool:
    """Every value is a number and larger than the one before."""
    return all(v is not None for v in values) and all(
        a < b  # type: ignore[operator]
        for a, b in itertools.pairwise(values)
    )


def fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def check_frame(frame: Frame, width: int, height: int) -> None:
    assert frame.image.shape == (height, width, 3)
    assert frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous
