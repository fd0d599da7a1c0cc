"""Where frames come from: video files, still images, cameras and network streams, behind one API.

``open_source(spec)`` picks the kind and opens it at once, so a wrong path, a URL with a bad
scheme, an unreachable server or a missing camera fails before any model work with a one-line
``SourceError``. ``source.frames(stop)`` then yields :class:`VideoFrame` objects (BGR uint8, a
running index, a presentation time in seconds) until the input ends or ``stop`` is set.

The kinds differ in what "the end" means, and the differences are the point of this module:

* **Files** are read completely and in order: no frame is dropped, ``pts`` comes from the file
  (variable frame rate kept). A damaged or truncated file yields every frame that decodes, then a
  WARNING says where it broke and the read ends normally; a file where nothing decodes is an error.
* **Still images** are one frame at ``pts`` 0.0.
* **Cameras** (OpenCV) and **network streams** (PyAV/FFmpeg) are *live*: the pipeline drops old
  frames for them. Once frames have flowed, a read error or the end of the stream is not the end:
  the source reconnects with exponential backoff (:class:`ReconnectPolicy`), logging a WARNING per
  attempt and an INFO when the stream is back, and ``index`` and ``pts`` keep increasing across
  the gap. Only when no frame arrived for ``give_up_after`` seconds does it raise
  ``StreamLostError``. An initial failure to open is reported at once, without retrying: a wrong
  URL or password should not look like a flaky network. A URL is live unless the server reports a
  finite duration (a file served over HTTP, which would otherwise replay at its end); ``live=False``
  reads any stream like a file.

Network streams are opened with RTSP over TCP (no lost UDP packets behind NAT or firewalls) and,
for live streams, ``fflags=nobuffer`` (the packets FFmpeg reads while probing the stream are
dropped, so the first frame is the live one, not one from a second ago) and the decoder's
``low_delay`` flag (which also turns frame threading off: frame threads hold back one frame per
thread, about half a second on a 16-core machine; slice threading stays on). ``nobuffer`` would
drop the first frames of a file (up to a second of video: what the probe read), so HTTP URLs are
probed without it unless ``live=True``, and a stream of another scheme that turns out to have a
finite duration is opened again without it.

Files and network streams can be decoded by the GPU's video decoder (``hwaccel="cuda"``: NVDEC
through PyAV's ``HWAccel``; frames are copied back to the host as PyAV does by default). A
hardware decoder that cannot start is a one-line ``SourceError``, never a silent fallback to the
CPU. Cameras (OpenCV) and still images always decode on the CPU.

Credentials never leave this module: a source's ``name`` and every message and log line go through
:func:`streamdet.video.urls.mask_url`.

Thread safety: ``frames()`` runs in one thread (the pipeline's reader); ``close()`` may be called
from another. It then only marks the source closed: the reader notices within ``read_timeout``
and releases the file, camera or connection itself, since closing a PyAV container under a
blocked read is not safe.
"""

from __future__ import annotations

import abc
import glob
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import av
import av.error
import cv2
import numpy as np
from av.codec.context import Flags

from streamdet.detect.frames import as_bgr
from streamdet.errors import ConfigError, SourceError, StreamLostError
from streamdet.video.urls import SUPPORTED_SCHEMES, is_url, mask_url

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ReconnectPolicy",
    "Source",
    "SourceError",
    "StreamLostError",
    "VideoFrame",
    "expand_inputs",
    "hardware_decoder",
    "hardware_decoders",
    "open_source",
]

_log = logging.getLogger("streamdet.sources")

#: File suffixes read as videos (lower case). Other existing non-image files are tried as videos.
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
    ".mts", ".m2ts", ".3gp", ".ogv", ".y4m", ".h264", ".264", ".h265", ".hevc", ".mjpeg", ".gif",
)  # fmt: skip
#: File suffixes read as still images (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_GLOB_CHARS = frozenset("*?[")
_T = TypeVar("_T")
_S = TypeVar("_S", bound="Source")


# --- public value types ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded frame.

    ``image`` is (H, W, 3) uint8 BGR and C-contiguous whatever the input was (gray, alpha, 4:4:4,
    odd sizes). ``index`` counts the frames this source produced, from 0. ``pts`` is the
    presentation time in seconds from the start of the source: from the file for files (variable
    frame rate kept), and for live sources increasing across reconnects (the gap is the wall-clock
    time without frames); ``None`` only when the source has no timing at all. ``captured_at`` is
    ``time.monotonic()`` when the frame was read, so a consumer can tell how old it is.

    Compared by identity (``eq=False``): comparing the arrays elementwise is never what is meant.
    """

    image: np.ndarray
    index: int
    pts: float | None
    captured_at: float


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source retries after it lost its stream or camera.

    The first retry comes ``initial_delay`` seconds after the loss; each failed attempt doubles the
    delay up to ``max_delay``. ``give_up_after`` seconds without a frame (counted from the last
    frame, so time spent in failed attempts counts) raise ``StreamLostError``; ``None`` retries
    forever. No attempt starts after that deadline, but one already connecting is given its full
    ``open_timeout`` (an RTSP server needs up to a key-frame interval to answer), so the error can
    come up to ``open_timeout`` late.
    """

    initial_delay: float = 0.5
    max_delay: float = 8.0
    give_up_after: float | None = 60.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay"):
            _check_seconds(name, getattr(self, name))
        if self.max_delay < self.initial_delay:
            raise ConfigError(
                f"max_delay ({self.max_delay:g} s) must not be below initial_delay "
                f"({self.initial_delay:g} s)"
            )
        if self.give_up_after is not None:
            _check_seconds("give_up_after", self.give_up_after)


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, but got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive finite number of seconds, but got {value}")


# --- the Source interface --------------------------------------------------------------------


class Source(abc.ABC):
    """An opened input. Use it as a context manager; ``close()`` is idempotent.

    Attributes: ``name`` (what logs and outputs show: the file path, ``"camera 0"``, or the URL
    with credentials masked), ``live`` (cameras and network streams: the pipeline may drop old
    frames), ``fps`` (nominal frame rate, if known), ``frame_count`` (frames expected from a file;
    ``None`` when unknown or live) and ``size`` ((width, height), if known before reading).
    """

    name: str
    live: bool
    fps: float | None
    frame_count: int | None
    size: tuple[int, int] | None

    def __init__(
        self,
        name: str,
        *,
        live: bool,
        fps: float | None = None,
        frame_count: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.live = live
        self.fps = fps
        self.frame_count = frame_count
        self.size = size
        self._closed = threading.Event()

    @abc.abstractmethod
    def frames(self, stop: threading.Event) -> Iterator[VideoFrame]:
        """Yield frames until the input ends or ``stop`` is set.

        ``stop`` (or ``close()`` from another thread) is noticed between frames, within about
        ``read_timeout`` while a network read is blocked (``open_timeout`` while reconnecting), and
        at once during a reconnect backoff. Iterate it once per source: a second call starts over
        (files from frame 0, live sources with a new connection).
        """

    def close(self) -> None:
        """Release the input (safe to call twice, and from another thread than ``frames()``)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._release_unused()

    @abc.abstractmethod
    def _release_unused(self) -> None:
        """Release what ``open_source`` opened if ``frames()`` never took it over."""

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise SourceError(f"source {self.name} is closed; open it again with open_source")

    def _should_stop(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "?"
        return (
            f"{type(self).__name__}({self.name!r}, live={self.live}, fps={self.fps}, "
            f"frame_count={self.frame_count}, size={size})"
        )


class _Handle(Generic[_T]):
    """The one opened resource (container, capture) that ``open_source`` leaves for ``frames()``.

    ``take`` hands it over once; ``close`` releases it only if nobody took it, so a reader thread
    that is using it is never pulled from under.
    """

    def __init__(self, resource: _T | None, release: Callable[[_T], None]) -> None:
        self._resource = resource
        self._release = release
        self._lock = threading.Lock()

    def take(self) -> _T | None:
        with self._lock:
            resource, self._resource = self._resource, None
            return resource

    def close(self) -> None:
        resource = self.take()
        if resource is not None:
            self._release(resource)


# --- FFmpeg helpers --------------------------------------------------------------------------


def _reason(err: BaseException) -> str:
    """A short, credential-free reason from an exception (FFmpeg's text without the URL)."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return mask_url(str(text))


def _close_container(container: av.container.InputContainer) -> None:
    try:
        container.close()
    except Exception as err:  # closing after a broken connection may fail; nothing to keep
        _log.debug("closing a container failed: %s", _reason(err))


def _stream_fps(stream: av.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    value = float(rate) if rate else 0.0
    return value if math.isfinite(value) and value > 0 else None


def _stream_size(stream: av.VideoStream) -> tuple[int, int] | None:
    width, height = stream.codec_context.width, stream.codec_context.height
    return (width, height) if width > 0 and height > 0 else None


def _set_low_delay(codec_context: Any) -> None:
    """Set the decoder's low_delay flag (before it opens): frames come out as soon as decoded.

    Passing ``flags=low_delay`` in ``av.open(options=...)`` does not reach the decoder PyAV uses
    (checked: its ``flags`` stay 0), so it is set here. It also makes FFmpeg use slice threads
    instead of frame threads, which hold back one frame per thread.
    """
    try:
        codec_context.flags |= Flags.low_delay
    except (AttributeError, TypeError):  # an older PyAV: an optimisation only, so go on without
        _log.debug("this PyAV cannot set the decoder's low_delay flag")


def _to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """PyAV frame -> C-contiguous HxWx3 uint8 BGR (swscale converts gray, alpha, 4:4:4, ...)."""
    return np.ascontiguousarray(frame.to_ndarray(format="bgr24"))


class _PacketReader:
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
                    self.first_bad = _reason(err)
                    self.frames_before_first_bad = self._decoded
                self.bad_packets += 1
                continue
            for frame in frames:
                self._decoded += 1
                yield frame


# --- files -----------------------------------------------------------------------------------


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


def _hwaccel_kwargs(name: str | None) -> dict[str, Any]:
    """``av.open`` keyword arguments for hardware decoder `name` (none for the CPU)."""
    return {} if name is None else {"hwaccel": hardware_decoder(name)}


def _open_video_file(path: Path, hwaccel: str | None = None) -> av.container.InputContainer:
    """Open ``path`` with PyAV (read-only; with hardware decoder `hwaccel` if given) and check
    that it has a video stream."""
    kwargs = _hwaccel_kwargs(hwaccel)
    try:
        container = av.open(str(path), mode="r", **kwargs)
    except Exception as err:
        if hwaccel is not None:  # PyAV creates the device here: no GPU, no driver, ...
            _close_container(_open_video_file(path))  # a bad file says so itself
            raise SourceError(
                f"hardware decoding ({hwaccel}) cannot start for '{path}' ({_reason(err)}); "
                "drop --hwaccel to decode on the CPU"
            ) from None
        raise SourceError(
            f"'{path}' is not a readable video ({_reason(err)}); check that it is a complete "
            "video file (an MP4 cut short before its index cannot be read)"
        ) from None
    if not container.streams.video:
        _close_container(container)
        raise SourceError(f"'{path}' has no video stream; give a video or image file")
    return container


class _FileSource(Source):
    """A video file read with PyAV: every frame, in order, with the file's timestamps."""

    def __init__(self, path: Path, hwaccel: str | None = None) -> None:
        container = _open_video_file(path, hwaccel)
        stream = container.streams.video[0]
        super().__init__(
            str(path),
            live=False,
            fps=_stream_fps(stream),
            frame_count=stream.frames or None,
            size=_stream_size(stream),
        )
        self._path = path
        self._hwaccel = hwaccel
        self._handle: _Handle[av.container.InputContainer] = _Handle(container, _close_container)

    def _release_unused(self) -> None:
        self._handle.close()

    def frames(self, stop: threading.Event) -> Iterator[VideoFrame]:
        self._check_open()
        container = self._handle.take()
        if container is None:
            container = _open_video_file(self._path, self._hwaccel)
        try:
            yield from self._read(container, stop)
        finally:
            _close_container(container)

    def _read(
        self, container: av.container.InputContainer, stop: threading.Event
    ) -> Iterator[VideoFrame]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # pts are seconds from the stream's start time (from the first timestamp if it has none).
        origin = (
            float(stream.start_time * stream.time_base) if stream.start_time is not None else None
        )
        step = 1.0 / self.fps if self.fps else None
        reader = _PacketReader(container, stream)
        frames = iter(reader)
        index, pts, broke = 0, None, None
        while not self._should_stop(stop):
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as err:  # a read error: the file is cut or damaged here
                broke = _reason(err)
                break
            if frame.time is not None:
                origin = float(frame.time) if origin is None else origin
                pts = float(frame.time) - origin
            elif index == 0:
                pts = 0.0
            elif pts is not None:  # no timestamp: one nominal interval after the previous frame
                pts = pts + step if step is not None else None
            yield VideoFrame(_to_bgr(frame), index, pts, time.monotonic())
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
        reader: _PacketReader,
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


# --- still images ----------------------------------------------------------------------------


class _ImageSource(Source):
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

    def frames(self, stop: threading.Event) -> Iterator[VideoFrame]:
        self._check_open()
        image = self._image if self._image is not None else self._decode(self._path)
        if not self._should_stop(stop):
            yield VideoFrame(image, 0, 0.0, time.monotonic())


# --- live sources: cameras and network streams -----------------------------------------------


class _ReadFailure(Exception):
    """Internal: a live read or (re)connect failed; ``str()`` is the credential-free reason."""


class _Timeline:
    """Maps each connection's own timestamps onto one increasing timeline from 0.

    A connection's first frame is placed after the previous frame by the wall-clock gap between
    them; later frames keep their spacing from the stream's timestamps (or from the monotonic
    clock when the stream has none). A timestamp that goes backwards within a connection (a
    camera that restarted its clock) re-anchors the same way, so ``pts`` always increases.
    """

    def __init__(self, fps: float | None, origin: float | None = None) -> None:
        self._step = 1.0 / fps if fps else 1e-3
        self._first_origin = origin
        self._anchor: tuple[float, float, bool] | None = None  # (base pts, stream time, stream?)
        self._last: tuple[float, float] | None = None  # (pts, captured_at) of the last frame

    def restart(self) -> None:
        """A new connection: its timestamps start over."""
        self._anchor = None

    def pts(self, stream_time: float | None, captured_at: float) -> float:
        has_time = stream_time is not None
        clock = float(stream_time) if stream_time is not None else captured_at
        if self._anchor is not None and self._anchor[2] == has_time:
            base, origin, _ = self._anchor
            pts = base + (clock - origin)
            if self._last is None or pts > self._last[0]:
                self._last = (pts, captured_at)
                return pts
        if self._last is None:
            origin = self._first_origin if self._first_origin is not None and has_time else clock
            base = clock - origin
        else:
            last_pts, last_at = self._last
            base = last_pts + max(captured_at - last_at, self._step)
        self._anchor = (base, clock, has_time)
        self._last = (base, captured_at)
        return base


class _LiveSource(Source, Generic[_T]):
    """The read / lose / reconnect loop shared by cameras and network streams.

    Subclasses implement ``_connect`` (open; raise ``_ReadFailure``), ``_read`` (yield
    ``(image, stream_time or None)`` until the stream ends; raise ``_ReadFailure`` on errors) and
    ``_release``. ``reconnect=None`` turns reconnecting off; with ``reconnects=False`` (a network
    stream read as a file) a broken read ends the read with a WARNING, like a damaged file.
    """

    _what: str  # how messages name it: "stream rtsp://..." or "camera 0"

    def __init__(
        self,
        name: str,
        resource: _T,
        *,
        live: bool,
        reconnect: ReconnectPolicy | None,
        fps: float | None = None,
        frame_count: int | None = None,
        size: tuple[int, int] | None = None,
        origin: float | None = None,
        reconnects: bool = True,
    ) -> None:
        super().__init__(name, live=live, fps=fps, frame_count=frame_count, size=size)
        self._policy = reconnect if reconnects else None
        self._reconnects = reconnects
        self._handle: _Handle[_T] = _Handle(resource, self._release)
        self._origin = origin

    @abc.abstractmethod
    def _connect(self) -> _T: ...

    @abc.abstractmethod
    def _read(self, resource: _T) -> Iterator[tuple[np.ndarray, float | None]]: ...

    @abc.abstractmethod
    def _release(self, resource: _T) -> None: ...

    def _release_unused(self) -> None:
        self._handle.close()

    def _connect_or_fail(self) -> _T:
        try:
            return self._connect()
        except _ReadFailure as err:
            raise SourceError(f"{self._what} cannot be opened again ({err})") from None

    def frames(self, stop: threading.Event) -> Iterator[VideoFrame]:
        self._check_open()
        resource = self._handle.take()
        if resource is None:
            resource = self._connect_or_fail()
        timeline = _Timeline(self.fps, self._origin)
        index = 0
        last_frame_at = time.monotonic()
        outage: _Outage | None = None
        while True:
            assert resource is not None
            reason = "end of stream"
            failed = False
            reads = self._read(resource)
            try:
                for image, stream_time in reads:
                    at = time.monotonic()
                    yield VideoFrame(image, index, timeline.pts(stream_time, at), at)
                    index, last_frame_at, outage = index + 1, at, None
                    if self._should_stop(stop):
                        return
            except _ReadFailure as err:
                reason, failed = str(err), True
            finally:
                reads.close()
                self._release(resource)
                resource = None
            if self._should_stop(stop):
                return
            if index == 0:
                raise SourceError(
                    f"{self._what} opened but gave no frame ({reason}); check that it sends video"
                )
            if self._policy is None:
                self._end_without_reconnect(reason, failed, index)
                return
            outage = outage or _Outage(self._policy, last_frame_at)
            resource = self._reconnect(stop, outage, reason)
            if resource is None:
                return
            timeline.restart()

    def _end_without_reconnect(self, reason: str, failed: bool, count: int) -> None:
        if not failed:
            return
        if self._reconnects:
            raise StreamLostError(
                f"{self._what} lost after frame {count} ({reason}); reconnecting is off "
                "(reconnect=None): pass a ReconnectPolicy to retry"
            )
        _log.warning(
            "%s broke after frame %d (%s); ending the read there", self._what, count, reason
        )

    def _reconnect(self, stop: threading.Event, outage: _Outage, reason: str) -> _T | None:
        """Retry until a connection opens (returned), ``stop`` is set (None), or give up."""
        while True:
            wait = outage.next_wait()
            if wait is None:
                tries = outage.attempt - 1
                raise StreamLostError(
                    f"{self._what} lost ({reason}) and not back within "
                    f"{outage.policy.give_up_after:g} s ({tries} attempt{'s' * (tries != 1)}); "
                    "check that it is up and reachable, or wait longer with "
                    "ReconnectPolicy(give_up_after=...)"
                )
            _log.warning(
                "%s lost (%s); reconnecting in %.1f s (attempt %d)",
                self._what, reason, wait, outage.attempt,
            )  # fmt: skip
            if stop.wait(wait) or self._closed.is_set():
                return None
            try:
                resource = self._connect()
            except _ReadFailure as err:
                reason = str(err)
                outage.failed()
                continue
            _log.info(
                "%s is back after %.1f s without frames (attempt %d)",
                self._what, time.monotonic() - outage.since, outage.attempt,
            )  # fmt: skip
            outage.failed()  # if this connection gives no frame, the next attempt waits longer
            return resource


class _Outage:
    """Backoff state while a live source is down: attempt number, next delay, give-up time."""

    def __init__(self, policy: ReconnectPolicy, since: float) -> None:
        self.policy = policy
        self.since = since  # monotonic time of the last frame
        self.attempt = 1
        self._delay = policy.initial_delay

    def time_left(self) -> float | None:
        if self.policy.give_up_after is None:
            return None
        return self.since + self.policy.give_up_after - time.monotonic()

    def next_wait(self) -> float | None:
        """Seconds to wait before the next attempt; None when it is time to give up."""
        left = self.time_left()
        if left is None:
            return self._delay
        if left <= 0:
            return None
        return min(self._delay, left)

    def failed(self) -> None:
        self.attempt += 1
        self._delay = min(self._delay * 2, self.policy.max_delay)


# --- cameras ---------------------------------------------------------------------------------


def _open_camera(index: int) -> cv2.VideoCapture | None:
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


class _CameraSource(_LiveSource[Any]):
    """A local camera through OpenCV; pts are seconds since the first frame (monotonic clock)."""

    def __init__(self, index: int, *, live: bool, reconnect: ReconnectPolicy | None) -> None:
        self._index = index
        self._what = f"camera {index}"
        capture = _open_camera(index)
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
        capture = _open_camera(self._index)
        if capture is None:
            raise _ReadFailure("cannot be opened: no such device or it is busy")
        return capture

    def _read(self, resource: Any) -> Iterator[tuple[np.ndarray, float | None]]:
        while True:
            try:
                ok, image = resource.read()
            except cv2.error as err:  # OpenCV's text is several lines; keep the last one
                lines = str(err).strip().splitlines() or ["OpenCV error"]
                raise _ReadFailure(f"reading failed: {lines[-1]}") from None
            if not ok or image is None:
                raise _ReadFailure("the camera returned no frame")
            yield np.ascontiguousarray(as_bgr(image)), None

    def _release(self, resource: Any) -> None:
        resource.release()


# --- network streams -------------------------------------------------------------------------


class _NetworkSource(_LiveSource[av.container.InputContainer]):
    """A network stream (RTSP, RTMP, HTTP, UDP, TCP, SRT) through PyAV; see the module docstring
    for the options and why."""

    def __init__(
        self,
        url: str,
        *,
        live: bool | None,
        open_timeout: float,
        read_timeout: float,
        reconnect: ReconnectPolicy | None,
        hwaccel: str | None = None,
    ) -> None:
        self._url = url
        self._hwaccel = hwaccel
        self._scheme = urlsplit(url).scheme.lower()
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        name = mask_url(url)
        self._what = f"stream {name}"
        # Until known, streams over RTSP/RTMP/UDP/... are assumed live (nobuffer); HTTP may well
        # be a file, which nobuffer would cut, so it is probed buffered.
        self._nobuffer = live if live is not None else self._scheme not in ("http", "https")
        container = self._first_connect()
        if live is None:
            live = container.duration is None  # a finite duration: a file served over the network
            if not live and self._nobuffer:  # nobuffer would drop its first frames: open again
                _close_container(container)
                self._nobuffer = False
                container = self._first_connect()
        stream = container.streams.video[0]
        start = stream.start_time
        super().__init__(
            name,
            container,
            live=live,
            reconnect=reconnect,
            fps=_stream_fps(stream),
            frame_count=None if live else (stream.frames or None),
            size=_stream_size(stream),
            origin=None if live or start is None else float(start * stream.time_base),
            reconnects=live,
        )

    def _first_connect(self) -> av.container.InputContainer:
        """Connect once, failing fast with a ``SourceError`` (no retries before any frame)."""
        try:
            return self._connect()
        except _ReadFailure as err:
            raise SourceError(
                f"{self._what} cannot be opened ({err}); check the URL, credentials and that "
                "the server is up"
            ) from None

    def _options(self) -> dict[str, str]:
        options = {}
        if self._scheme in ("rtsp", "rtsps"):
            options["rtsp_transport"] = "tcp"
        if self._nobuffer:
            options["fflags"] = "nobuffer"
        return options

    def _connect(self) -> av.container.InputContainer:
        timeout = self._open_timeout
        started = time.monotonic()
        try:
            container = av.open(
                self._url,
                mode="r",
                options=self._options(),
                timeout=(timeout, self._read_timeout),
                **_hwaccel_kwargs(self._hwaccel),
            )
        except Exception as err:
            if isinstance(err, av.error.ProtocolNotFoundError):
                raise _ReadFailure(
                    f"this FFmpeg build (PyAV) cannot read '{self._scheme}' streams"
                ) from None
            if isinstance(err, av.error.ExitError) or time.monotonic() - started >= 0.95 * timeout:
                raise _ReadFailure(f"no answer within {timeout:g} s") from None
            raise _ReadFailure(_reason(err)) from None
        if not container.streams.video:
            _close_container(container)
            raise _ReadFailure("it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container

    def _read(
        self, resource: av.container.InputContainer
    ) -> Iterator[tuple[np.ndarray, float | None]]:
        stream = resource.streams.video[0]
        if self.live:  # the decoder opens at the first packet, so it is not too late for this
            _set_low_delay(stream.codec_context)
        reader = _PacketReader(resource, stream)
        try:
            for frame in reader:
                yield _to_bgr(frame), (float(frame.time) if frame.time is not None else None)
        except av.error.ExitError:
            raise _ReadFailure(f"no data for {self._read_timeout:g} s") from None
        except av.error.FFmpegError as err:
            raise _ReadFailure(_reason(err)) from None
        finally:
            if reader.bad_packets:
                _log.warning(
                    "%s: %d packet(s) could not be decoded and were skipped (%s)",
                    self._what, reader.bad_packets, reader.first_bad,
                )  # fmt: skip

    def _release(self, resource: av.container.InputContainer) -> None:
        _close_container(resource)


# --- choosing and expanding inputs -----------------------------------------------------------


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    live: bool | None = None,
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
    reconnect: ReconnectPolicy | None = ReconnectPolicy(),  # frozen, so sharing the default is safe
    hwaccel: str | None = None,
) -> Source:
    """Open a video file, still image, camera or network stream; ``SourceError`` if it can't be.

    ``spec``: an int or a string of digits is a camera index (OpenCV); ``scheme://...`` is a
    network stream (schemes in ``SUPPORTED_SCHEMES``); anything else is a path, read as an image
    when its suffix is in ``IMAGE_SUFFIXES`` and as a video otherwise.

    ``live``: for cameras and network streams, ``None`` decides (cameras are live; a stream is live
    unless the server reports a finite duration, as for a file over HTTP); ``False`` reads a stream
    like a file (no reconnecting, its end is the end). Files and images are never live, whatever
    is passed. ``open_timeout`` / ``read_timeout`` (seconds) bound connecting to a network stream
    and each read from it; ``reconnect`` is the retry policy of live sources (``None``: none).
    ``hwaccel``: a hardware decoder type (``hardware_decoders()``, e.g. ``"cuda"`` for NVDEC) for
    video files and network streams; one that is unknown or cannot start is a ``SourceError``.
    Cameras and still images decode on the CPU whatever is passed.
    """
    _check_seconds("open_timeout", open_timeout)
    _check_seconds("read_timeout", read_timeout)
    hardware_decoder(hwaccel)  # an unknown decoder type fails here, whatever the input
    if isinstance(spec, bool):
        raise SourceError(f"{spec!r} is not an input; give a path, URL or camera index")
    if isinstance(spec, int):
        return _open_camera_source(spec, live, reconnect)
    if not isinstance(spec, (str, os.PathLike)):
        raise SourceError(
            f"an input must be a path, URL or camera index, but got {type(spec).__name__}"
        )
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.strip().isdigit() and isinstance(spec, str):
        return _open_camera_source(int(text), live, reconnect)
    if is_url(text):
        return _open_url(text.strip(), live, open_timeout, read_timeout, reconnect, hwaccel)
    return _open_path(Path(os.path.expanduser(text)), hwaccel)


def _open_camera_source(index: int, live: bool | None, reconnect: ReconnectPolicy | None) -> Source:
    if index < 0:
        raise SourceError(f"camera index must be 0 or more, but got {index}")
    return _CameraSource(index, live=True if live is None else live, reconnect=reconnect)


def _open_url(
    url: str,
    live: bool | None,
    open_timeout: float,
    read_timeout: float,
    reconnect: ReconnectPolicy | None,
    hwaccel: str | None = None,
) -> Source:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        hint = "; for a local file give its path" if scheme == "file" else ""
        raise SourceError(
            f"unsupported stream scheme '{scheme}' in {mask_url(url)}; use one of "
            f"{', '.join(SUPPORTED_SCHEMES)}{hint}"
        )
    return _NetworkSource(
        url,
        live=live,
        open_timeout=open_timeout,
        read_timeout=read_timeout,
        reconnect=reconnect,
        hwaccel=hwaccel,
    )


def _open_path(path: Path, hwaccel: str | None = None) -> Source:
    if not path.exists():
        hint = " (a pattern: expand it with expand_inputs)" if _GLOB_CHARS & set(str(path)) else ""
        raise SourceError(
            f"'{path}' does not exist{hint}; check the path (a camera is an index like 0, a "
            "stream a URL like rtsp://host/path)"
        )
    if path.is_dir():
        raise SourceError(
            f"'{path}' is a folder; pass it as a folder input (expand_inputs) to read the videos "
            "and images in it one by one"
        )
    try:
        empty = path.stat().st_size == 0 and path.is_file()
    except OSError as err:
        raise SourceError(f"'{path}' cannot be read ({err.strerror}); check it") from None
    if empty:
        raise SourceError(f"'{path}' is empty (0 bytes); give a complete video or image file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _ImageSource(path)
    return _FileSource(path, hwaccel)


def _is_media(path: Path) -> bool:
    return (
        not path.name.startswith(".")
        and path.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES
        and path.is_file()
    )


def expand_inputs(spec: str | os.PathLike[str]) -> list[str]:
    """The inputs ``spec`` stands for, in the order to process them.

    A folder gives its video and image files sorted by name (not recursive; hidden files
    skipped); a glob pattern (``*``, ``?``, ``[``) gives its matches that are video or image
    files, sorted; a URL, camera index or plain path is returned as is (``open_source`` checks
    it). A folder or pattern with no media raises ``SourceError``.
    """
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [str(spec)]
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if is_url(text) or text.strip().isdigit():
        return [text]
    path = Path(os.path.expanduser(text))
    suffixes = ", ".join(VIDEO_SUFFIXES[:5] + IMAGE_SUFFIXES[:3])
    if path.is_dir():
        found = sorted((p for p in path.iterdir() if _is_media(p)), key=lambda p: p.name)
        if not found:
            raise SourceError(
                f"folder '{path}' has no video or image files ({suffixes}, ...); check the folder"
            )
        return [str(p) for p in found]
    if _GLOB_CHARS & set(text) and not path.exists():
        matches = sorted(glob.glob(os.path.expanduser(text)))
        found_paths = [m for m in matches if _is_media(Path(m))]
        if not found_paths:
            raise SourceError(
                f"pattern '{text}' matches no video or image files ({suffixes}, ...); check it "
                "(quote it so the shell does not expand it)"
            )
        return found_paths
    return [text]
