"""Decoding with PyAV (FFmpeg), shared by video files and network streams.

* **Packets one by one** (:class:`PacketReader`): one undecodable packet is skipped and counted,
  not fatal; the decoder resyncs at the next key frame.
* **Upright pictures** (:func:`picture`): a phone holds its camera upright but records the sensor's
  landscape frames and tags the stream with a display rotation (the display matrix side data, or
  on older files a ``rotate`` tag). Players turn the picture before showing it; PyAV hands out the
  frame as stored, so every frame is turned here by the rotation it carries, and detection, boxes
  and outputs all see what a viewer sees. Rotations are quarter turns (90/180/270 degrees); a 90 or
  270 degree turn swaps width and height.
* **Hardware decoding** (``hwaccel="cuda"``: NVDEC through PyAV's ``HWAccel``; frames are copied
  back to the host as PyAV does by default). A hardware decoder that cannot start is a one-line
  ``SourceError``, never a silent fallback to the CPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import av
import av.error
import cv2
import numpy as np
from av.codec.context import Flags

from streamdet.errors import SourceError
from streamdet.sources.urls import mask_url

_log = logging.getLogger("streamdet.sources")

#: cv2.rotate codes that turn a picture counter-clockwise by 1, 2 and 3 quarter turns.
_TURNS = {
    1: cv2.ROTATE_90_COUNTERCLOCKWISE,
    2: cv2.ROTATE_180,
    3: cv2.ROTATE_90_CLOCKWISE,
}

#: How many packets reading a file's rotation at open may look at before giving up.
_PROBE_PACKETS = 64


def reason(err: BaseException) -> str:
    """A short, credential-free reason from an exception (FFmpeg's text without the URL)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return mask_url(str(text))


def close_container(container: av.container.InputContainer) -> None:
    try:
        container.close()
    except Exception as err:  # closing after a broken connection may fail; nothing to keep
        _log.debug("closing a container failed: %s", reason(err))


def stream_fps(stream: av.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    value = float(rate) if rate else 0.0
    return value if math.isfinite(value) and value > 0 else None


def stream_size(stream: av.VideoStream, rotation: int = 0) -> tuple[int, int] | None:
    """(width, height) of the stream's pictures once turned by ``rotation`` degrees."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        return None
    return (height, width) if quarter_turns(rotation) % 2 else (width, height)


def set_low_delay(codec_context: Any) -> None:
    """Set the decoder's low_delay flag (before it opens): frames come out as soon as decoded.

    Passing ``flags=low_delay`` in ``av.open(options=...)`` does not reach the decoder PyAV uses
    (its ``flags`` stay 0), so it is set here. It also makes FFmpeg use slice threads instead of
    frame threads, which hold back one frame per thread.
    """
    try:
        codec_context.flags |= Flags.low_delay
    except (AttributeError, TypeError):  # an older PyAV: an optimisation only, so go on without
        _log.debug("this PyAV cannot set the decoder's low_delay flag")


# --- rotation --------------------------------------------------------------------------------


def quarter_turns(degrees: float) -> int:
    """Counter-clockwise quarter turns (0-3) nearest to ``degrees``."""
    return round(degrees / 90) % 4


def tag_rotation(stream: av.VideoStream) -> int:
    """The legacy ``rotate`` tag as counter-clockwise degrees (0 when absent or unreadable).

    The tag counts clockwise (``rotate=90``: turn 90 degrees clockwise to show), the display
    matrix counter-clockwise, so the tag is negated. Its name is matched in any case, as FFmpeg
    matches metadata keys (Matroska stores it as ``ROTATE``).
    """
    text = next((v for k, v in stream.metadata.items() if k.lower() == "rotate"), "0")
    try:
        clockwise = float(text)
    except (TypeError, ValueError):
        return 0
    return 90 * quarter_turns(-clockwise) if math.isfinite(clockwise) else 0


def frame_rotation(frame: av.VideoFrame, fallback: int = 0) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) that make ``frame`` upright.

    From the frame's display matrix (FFmpeg copies the stream's onto every frame); ``fallback``
    (the stream's ``rotate`` tag) when it has none.
    """
    try:
        degrees = frame.rotation
    except AttributeError:  # a PyAV without VideoFrame.rotation
        degrees = 0
    return 90 * quarter_turns(degrees) if degrees else fallback


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` turned counter-clockwise by ``rotation`` degrees (a quarter-turn multiple)."""
    turns = quarter_turns(rotation)
    return image if turns == 0 else cv2.rotate(image, _TURNS[turns])


def picture(frame: av.VideoFrame, fallback_rotation: int = 0) -> np.ndarray:
    """PyAV frame -> upright, C-contiguous HxWx3 uint8 BGR (swscale converts gray, alpha, 4:4:4,
    ...; the display rotation is applied, see the module docstring)."""
    image = frame.to_ndarray(format="bgr24")
    return np.ascontiguousarray(upright(image, frame_rotation(frame, fallback_rotation)))


def first_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """The display rotation of the first frame that decodes (the ``rotate`` tag if none does in
    the first packets). Reads from ``container``: open the file again to read it from the start.
    """
    fallback = tag_rotation(stream)
    try:
        for count, packet in enumerate(container.demux(stream)):
            if count >= _PROBE_PACKETS:
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            if frames:
                return frame_rotation(frames[0], fallback)
    except av.error.FFmpegError:  # a damaged file: reading it says so later
        pass
    return fallback


class PacketReader:
    """Decodes one video stream packet by packet, so one undecodable packet is skipped, not fatal.

    Errors while *reading* (truncated file, dropped connection, read timeout) propagate to the
    caller; errors while *decoding* a packet are counted in ``bad_packets`` (the decoder resyncs
    at the next key frame).
    """

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        self.container = container
        self.stream = stream
        self.bad_packets = 0
        self.first_bad: str | None = None
        self.frames_before_first_bad = 0
        self._decoded = 0

    def __iter__(self) -> Iterator[av.VideoFrame]:
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as err:
                if self.bad_packets == 0:
                    self.first_bad = reason(err)
                    self.frames_before_first_bad = self._decoded
                self.bad_packets += 1
                continue
            for frame in frames:
                self._decoded += 1
                yield frame


# --- hardware decoders -----------------------------------------------------------------------


def hardware_decoders() -> tuple[str, ...]:
    """The hardware decoder types this PyAV/FFmpeg build knows (e.g. cuda, qsv, vaapi); whether
    the machine has the hardware is only known when a decoder starts."""
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:  # PyAV < 14
        return ()
    return tuple(hwdevices_available())


def hardware_decoder(name: str | None) -> Any:
    """PyAV's HWAccel for decoder type `name` (None: decode on the CPU); SourceError if unknown."""
    if name is None:
        return None
    known = hardware_decoders()
    if name not in known:
        offered = ", ".join(known) if known else "none (PyAV >= 14 is needed)"
        raise SourceError(
            f"hardware decoder '{name}' is not one this PyAV/FFmpeg build offers ({offered}); "
            "pick one of those or drop --hwaccel to decode on the CPU"
        )
    from av.codec.hwaccel import HWAccel

    return HWAccel(device_type=name, allow_software_fallback=False)


def hwaccel_kwargs(name: str | None) -> dict[str, Any]:
    """``av.open`` keyword arguments for hardware decoder `name` (none for the CPU)."""
    return {} if name is None else {"hwaccel": hardware_decoder(name)}
