"""Annotated frames to a browser-playable H.264 MP4, finalised however a run ends.

PyAV is used because OpenCV's wheels cannot encode H.264. The write rules are those of
``streamdet.sinks.publish``: a file source's MP4 is an ordinary one (``faststart``: the index
first) written beside the target and moved there on close; a live source's is a fragmented MP4
written at the target as the run goes, so it plays while the run goes on and a hard kill keeps
every fragment written.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from fractions import Fraction

import av
import cv2
import numpy as np
from av.codec import Codec

from streamdet.detect.frames import as_bgr
from streamdet.errors import ConfigError, WriterClosedError
from streamdet.sinks.base import check_frame, check_pts
from streamdet.sinks.publish import PublishedOnClose
from streamdet.types import Frame, FrameResult

_log = logging.getLogger("streamdet.sinks")

#: The MPEG clock: exact for 24, 25, 30, 50, 60 and the NTSC rates (30000/1001, ...).
DEFAULT_TIME_BASE = Fraction(1, 90000)

#: The frame rate written when the source has none (a camera that does not say, an image).
DEFAULT_FPS = 30

#: A live MP4's longest stretch between keyframes, in seconds of video: each keyframe starts a
#: fragment, so this is about how far the playable file trails the run (plus the encoder's delay:
#: about 11 frames for libx264 veryfast, which is 11 s at 1 fps) and what a hard kill can lose.
LIVE_KEYFRAME_INTERVAL = 1.0

#: The live MP4's layout: an empty index first, then one self-contained fragment (``moof`` +
#: ``mdat``) per keyframe, each fragment's offsets relative to itself (what browsers' Media
#: Source Extensions and players expect of a fragmented MP4).
LIVE_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def _h264_encoders() -> list[str]:
    """The H.264 encoders this PyAV build knows (hardware ones may still fail to open)."""
    names = []
    for name in sorted(av.codecs_available):
        if "264" not in name:
            continue
        try:
            if Codec(name, "w").type == "video":
                names.append(name)
        except Exception:  # a decoder-only name
            continue
    return names


def _resolve_encoder(codec: str) -> str:
    """The real encoder name behind ``codec`` ("h264" -> "libx264"), or a one-line error."""
    try:
        found = Codec(codec, "w")
    except Exception:
        found = None
    if found is None or found.type != "video":
        raise ConfigError(
            f"video encoder '{codec}' is not available in this PyAV build; "
            f"H.264 encoders available: {', '.join(_h264_encoders()) or 'none'}"
        )
    return found.name


def _frame_rate(fps: float | Fraction | None) -> Fraction:
    """The stream's nominal rate: ``DEFAULT_FPS`` for None, a float read as the nearest fraction
    with a denominator up to 1001 (29.97002997 -> 30000/1001), a fraction or an int as is."""
    if fps is None:
        return Fraction(DEFAULT_FPS)
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise ConfigError(f"fps must be a number, but got {type(fps).__name__}")
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive finite number, but got {fps}")
    if isinstance(fps, numbers.Rational):
        return Fraction(fps).limit_denominator(1_000_000)
    return Fraction(fps).limit_denominator(1001)


class Mp4Sink(PublishedOnClose):
    """Writes pictures to an H.264 MP4 (yuv420p, ``movflags=+faststart``) at the frames' times.

    ``write(frame, result, picture)`` encodes ``picture`` (the rendered frame; None encodes
    ``frame.image`` as it is). The first picture fixes the video's size; a later one of another
    size (a camera that reconnected at another resolution) is resized to it, with one WARNING, so
    one video never breaks mid-run. yuv420p needs an even width and height, so an odd dimension is
    padded by one pixel that repeats the last row or column: a 95x63 picture gives a 96x64 video
    (1x1 gives 2x2), with the picture at the top-left. B-frames are off, so the MP4 durations stay
    exact when the frame rate varies.

    Timestamps: a frame without ``pts`` goes one nominal interval (1/fps) after the previous one
    (frame i at i/fps when none has one). With source timestamps (seconds), the video starts at 0
    and each frame keeps its source interval from the one before (variable frame rate survives, to
    the ``time_base`` tick). A timestamp that is not later than the previous one (a duplicate, or
    a stream that restarted) is moved to one nominal interval after the previous frame and later
    frames keep their spacing from it, so no frame is dropped; ``timestamps_repaired`` counts
    these.

    ``fps`` is the nominal rate (None: ``DEFAULT_FPS``). ``codec``: libx264, or a hardware encoder
    PyAV offers (e.g. ``h264_nvenc`` on NVIDIA). ``crf`` and ``preset`` are libx264/libx265
    settings and are not passed to other encoders.

    ``live=False`` (files): an ordinary MP4 with its index first (``+faststart``), written to a
    hidden partial file and moved to ``path`` on close. ``live=True`` (cameras, streams): a
    fragmented MP4 (``LIVE_MOVFLAGS``) written at ``path`` from the first frame, with a keyframe
    forced at least every ``keyframe_interval`` seconds of video (by timestamp, so a sampled or
    slow source still gets them) and each fragment flushed to the file as it is finished: the
    file plays (browsers, ffprobe, PyAV) while the run goes on, trailing it by about one interval;
    ``close`` (also after Ctrl-C) writes the last fragment; a hard kill keeps every fragment
    written before it. ``keyframe_interval`` is used only when ``live``.
    """

    needs_picture = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | Fraction | None = DEFAULT_FPS,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "veryfast",
        time_base: Fraction | None = None,
        overwrite: bool = False,
        live: bool = False,
        keyframe_interval: float = LIVE_KEYFRAME_INTERVAL,
    ) -> None:
        rate = _frame_rate(fps)
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ConfigError(f"crf must be an int in 0..51 (lower is better), but got {crf!r}")
        tb = DEFAULT_TIME_BASE if time_base is None else Fraction(time_base)
        if tb <= 0:
            raise ConfigError(f"time_base must be a positive fraction, but got {time_base}")
        if (
            isinstance(keyframe_interval, bool)
            or not isinstance(keyframe_interval, numbers.Real)
            or not (math.isfinite(keyframe_interval) and keyframe_interval > 0)
        ):
            raise ConfigError(
                f"keyframe_interval must be a positive number of seconds, but got "
                f"{keyframe_interval!r}"
            )
        self._encoder = _resolve_encoder(codec)
        self._fps = rate
        self._crf = crf
        self._preset = preset
        self._time_base = tb
        self._step = max(1, round(1 / (self._fps * tb)))  # one nominal frame interval, in ticks
        self._key_every = max(1, round(Fraction(keyframe_interval) / tb))  # in ticks
        self._last_key: int | None = None  # ticks of the last forced keyframe (live only)
        super().__init__(path, overwrite=overwrite, live=live)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (height, width) of the first picture
        self._resized = False
        self._origin: int | None = None  # source tick that maps to output tick 0 (see class doc)
        self._last_ticks: int | None = None
        self._frames = 0
        self._repaired = 0

    @property
    def frames_written(self) -> int:
        """Frames handed to the encoder; after ``close`` the MP4 holds exactly this many."""
        return self._frames

    @property
    def timestamps_repaired(self) -> int:
        """Frames whose timestamp was not later than the previous one and were moved."""
        return self._repaired

    def _open(self, height: int, width: int) -> None:
        """Open the container and stream once the first picture gives the size."""
        assert self.writing_path is not None
        if self.live:
            # flush_packets: each finished fragment goes to the file at once, not to a buffer.
            layout = {"movflags": LIVE_MOVFLAGS, "flush_packets": "1"}
        else:
            layout = {"movflags": "+faststart"}
        container = av.open(str(self.writing_path), "w", format="mp4", container_options=layout)
        options = {}
        if self._encoder in ("libx264", "libx265"):
            options = {"crf": str(self._crf), "preset": self._preset}
        if self.live and (self._encoder == "libx264" or self._encoder.endswith("_nvenc")):
            # A forced keyframe must be an IDR frame (NVENC otherwise makes a plain I frame, which
            # the MP4 muxer does not see as a keyframe, so no fragment would start there).
            options["forced-idr"] = "1"
        try:
            stream = container.add_stream(self._encoder, rate=self._fps, options=options)
            stream.width = width + width % 2
            stream.height = height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.time_base = self._time_base
            stream.codec_context.time_base = self._time_base
            stream.codec_context.max_b_frames = 0
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream

    def _next_ticks(self, pts: float | None) -> int:
        """Output timestamp of the next frame, in time_base ticks (rule in the class docstring)."""
        expected = 0 if self._last_ticks is None else self._last_ticks + self._step
        if pts is None:
            return expected
        source = round(Fraction(pts) / self._time_base)
        if self._origin is None:
            self._origin = source - expected
        ticks = source - self._origin
        if self._last_ticks is not None and ticks <= self._last_ticks:
            self._origin = source - expected
            self._repaired += 1
            ticks = expected
        return ticks

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """``image`` at the video's size: the first picture sets it, later ones are resized."""
        height, width = image.shape[:2]
        if self._size is None:
            self._open(height, width)
            self._size = (height, width)
        elif self._size != (height, width):
            if not self._resized:
                _log.warning(
                    "frame size changed from %dx%d to %dx%d; resizing to the first size in %s",
                    self._size[1], self._size[0], width, height, self.path,
                )  # fmt: skip
                self._resized = True
            image = cv2.resize(image, (self._size[1], self._size[0]))
        return image

    def write(
        self, frame: Frame, result: FrameResult | None = None, picture: np.ndarray | None = None
    ) -> None:
        """Encode ``picture`` (HxWx3 uint8 BGR; gray and BGRA are converted; None: the frame's
        own image) at ``frame.pts``."""
        if self._closed:
            raise WriterClosedError(f"Mp4Sink for '{self.path}' is closed; open a new one")
        check_frame(frame)
        image = as_bgr(frame.image if picture is None else picture)
        pts = check_pts(frame.pts)
        image = self._fit(image)
        height, width = image.shape[:2]
        if height % 2 or width % 2:  # yuv420p: repeat the last row/column to reach even sizes
            image = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        ticks = self._next_ticks(pts)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        video_frame = video_frame.reformat(format="yuv420p")
        video_frame.pts = ticks
        video_frame.time_base = self._time_base
        if self.live and (self._last_key is None or ticks - self._last_key >= self._key_every):
            video_frame.pict_type = av.video.frame.PictureType.I  # a keyframe starts a fragment
            self._last_key = ticks
        assert self._container is not None and self._stream is not None
        try:
            packets = self._stream.encode(video_frame)
        except av.error.FFmpegError as err:
            if self._frames:
                raise
            # The encoder opens on the first frame: a hardware one without its device fails here.
            raise ConfigError(
                f"video encoder '{self._encoder}' cannot be opened here ({err.strerror}); "
                "use libx264 (hardware encoders need their GPU and driver)"
            ) from None
        for packet in packets:
            self._container.mux(packet)
        self._last_ticks = ticks
        self._frames += 1

    def _finish(self) -> int:
        """Flush the encoder and close the container; the number of frames written."""
        if self._container is not None:
            assert self._stream is not None
            if self._frames:  # an encoder that never took a frame (it failed to open) has none
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            self._container.close()
        return self._frames
