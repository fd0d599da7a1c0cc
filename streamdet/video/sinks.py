"""Where results go: an annotated H.264 MP4 and a JSON-lines log, both finalised however a run ends.

Both writers share one crash rule. They write to a hidden partial file next to the target
(``.NAME.PID.partial``) and move it into place only once it is complete, so a file at the target
path is always a finished one. Leaving a ``with`` block by an exception (``KeyboardInterrupt``
included) still finalises what was written and re-raises: after Ctrl-C the MP4 plays and holds
exactly ``frames_written`` frames, and the JSONL holds exactly ``lines_written`` lines. Only a hard
kill (SIGKILL, power loss) leaves the partial file behind, and never at the target path. A writer
that got no frame leaves no file and its ``close()`` returns ``None``. An existing file is never
replaced unless ``overwrite=True``; a missing or read-only folder fails before anything is encoded.

``probe_video`` decodes a file and reports what is really in it; tests and the pipeline use it.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import operator
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

import av
import cv2
import numpy as np
from av.codec import Codec

from streamdet.detect.frames import as_bgr
from streamdet.errors import (
    ConfigError,
    FrameError,
    FrameTypeError,
    OutputExistsError,
    OutputFolderError,
    VideoReadError,
    WriterClosedError,
)
from streamdet.types import FrameResult

_log = logging.getLogger(__name__)

#: The MPEG clock: exact for 24, 25, 30, 50, 60 and the NTSC rates (30000/1001, ...).
DEFAULT_TIME_BASE = Fraction(1, 90000)


# --- output files: partial file, publish, discard -------------------------------------------


def _prepare_output(path: str | os.PathLike[str], overwrite: bool) -> tuple[Path, Path]:
    """Check the target and create its empty partial file; return (target, partial).

    Creating the partial file is the writability check: it is real (``os.access`` can lie on
    network shares and for root) and it happens before anything is encoded.
    """
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise OutputFolderError(
            f"output folder '{folder}' does not exist or is not a folder; create it first"
        )
    if target.is_dir():
        raise OutputFolderError(f"output path '{target}' is a folder; give a file name inside it")
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"'{target}' already exists; choose another name or pass overwrite=True to replace it"
        )
    partial = folder / f".{target.name}.{os.getpid()}.partial"
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise OutputExistsError(
            f"partial file '{partial}' exists: another writer in this process is writing "
            f"'{target}'; close it first"
        ) from None
    except OSError as err:
        raise OutputFolderError(
            f"cannot write in output folder '{folder}' ({err.strerror}); choose a writable folder"
        ) from None
    return target, partial


def _publish(partial: Path, target: Path, overwrite: bool) -> None:
    """Move the finished partial file to the target, refusing to clobber unless ``overwrite``."""
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # atomic "create only if absent"
    except FileExistsError:
        raise OutputExistsError(
            f"'{target}' appeared while writing; the result is kept as '{partial}': "
            "move it yourself or pass overwrite=True"
        ) from None
    except OSError:  # no hard links on this file system (FAT, some shares): check, then rename
        if target.exists():
            raise OutputExistsError(
                f"'{target}' appeared while writing; the result is kept as '{partial}': "
                "move it yourself or pass overwrite=True"
            ) from None
        os.replace(partial, target)
        return
    partial.unlink()


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)


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


def _check_pts(pts: float | None) -> float | None:
    if pts is None:
        return None
    value = float(pts)
    if not math.isfinite(value):
        raise FrameError(f"pts must be a finite number of seconds or None, but got {pts!r}")
    return value


# --- the partial file, published on close ----------------------------------------------------

_W = TypeVar("_W", bound="_PublishedOnClose")


class _PublishedOnClose:
    """An output written under a hidden partial name and moved to its path by ``close``.

    Subclasses open their writer in ``__init__`` and implement ``_finish`` (flush and close it,
    return how many items were written). The crash rule lives here, once: leaving a ``with`` block
    by an exception (Ctrl-C included) still finalises what was written, then the exception goes on.
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool) -> None:
        self._overwrite = overwrite
        self._path, self._partial = _prepare_output(path, overwrite)
        self._closed = False
        self._result: Path | None = None

    @property
    def path(self) -> Path:
        """The final output path (the file appears there on ``close``)."""
        return self._path

    @property
    def partial_path(self) -> Path:
        """The hidden file being written until ``close``."""
        return self._partial

    def _finish(self) -> int:
        raise NotImplementedError

    def close(self) -> Path | None:
        """Finalise and move the file into place; ``None`` (no file) when nothing was written."""
        if self._closed:
            return self._result
        self._closed = True
        try:
            written = self._finish()
        except BaseException:
            _discard(self._partial)
            raise
        if written == 0:
            _discard(self._partial)
            return None
        _publish(self._partial, self._path, self._overwrite)
        self._result = self._path
        return self._result

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # Keep what was written, and let the original exception (Ctrl-C included) propagate.
        try:
            self.close()
        except Exception as err:
            _log.warning("could not finalise '%s' after %s: %s", self._path, exc_type.__name__, err)


# --- MP4 -------------------------------------------------------------------------------------


class Mp4Writer(_PublishedOnClose):
    """Writes BGR frames to a browser-playable H.264 MP4 (yuv420p, ``movflags=+faststart``).

    PyAV is used because OpenCV's wheels cannot encode H.264. The frame size is fixed by the first
    frame; a later frame of another size raises ``FrameError``. yuv420p needs an even width and
    height, so an odd dimension is padded by one pixel that repeats the last row or column: a
    95x63 input gives a 96x64 video (1x1 gives 2x2), with the picture at the top-left. B-frames are
    off, so the MP4 durations stay exact when the frame rate varies.

    Timestamps: ``write(frame)`` without ``pts_seconds`` puts frame i at i/fps. With source
    timestamps (seconds), the video starts at 0 and each frame keeps its source interval from the
    one before (variable frame rate survives, to the ``time_base`` tick). A timestamp that is not
    later than the previous one (a duplicate, or a stream that restarted) is moved to one nominal
    interval (1/fps) after the previous frame and later frames keep their spacing from it, so no
    frame is dropped; ``timestamps_repaired`` counts these.

    ``crf`` and ``preset`` are libx264/libx265 settings and are not passed to other encoders. See
    the module docstring for the partial file, the crash rule and ``overwrite``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float | Fraction = 30,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "veryfast",
        time_base: Fraction | None = None,
        overwrite: bool = False,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
            raise ConfigError(f"fps must be a number, but got {type(fps).__name__}")
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be a positive finite number, but got {fps}")
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ConfigError(f"crf must be an int in 0..51 (lower is better), but got {crf!r}")
        tb = DEFAULT_TIME_BASE if time_base is None else Fraction(time_base)
        if tb <= 0:
            raise ConfigError(f"time_base must be a positive fraction, but got {time_base}")
        self._encoder = _resolve_encoder(codec)
        self._fps = Fraction(fps).limit_denominator(1_000_000)
        self._crf = crf
        self._preset = preset
        self._time_base = tb
        self._step = max(1, round(1 / (self._fps * tb)))  # one nominal frame interval, in ticks
        super().__init__(path, overwrite)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (height, width) of the first frame
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
        """Open the container and stream once the first frame gives the size."""
        container = av.open(
            str(self._partial), "w", format="mp4", container_options={"movflags": "+faststart"}
        )
        options = {}
        if self._encoder in ("libx264", "libx265"):
            options = {"crf": str(self._crf), "preset": self._preset}
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

    def write(self, frame_bgr: np.ndarray, pts_seconds: float | None = None) -> None:
        """Encode one HxWx3 uint8 BGR frame (gray and BGRA are converted) at ``pts_seconds``."""
        if self._closed:
            raise WriterClosedError(f"Mp4Writer for '{self._path}' is closed; open a new one")
        frame = as_bgr(frame_bgr)
        pts = _check_pts(pts_seconds)
        height, width = frame.shape[:2]
        if self._size is None:
            self._open(height, width)
            self._size = (height, width)
        elif self._size != (height, width):
            raise FrameError(
                f"every frame of one video must have the first frame's size "
                f"{self._size[1]}x{self._size[0]}, but got {width}x{height}; resize it first"
            )
        if height % 2 or width % 2:  # yuv420p: repeat the last row/column to reach even sizes
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        ticks = self._next_ticks(pts)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        video_frame = video_frame.reformat(format="yuv420p")
        video_frame.pts = ticks
        video_frame.time_base = self._time_base
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


def jsonl_line(index: int, pts: float | None, result: FrameResult) -> str:
    """The JSON line of one processed frame (with its newline), as every JSONL output writes it."""
    record = {
        "frame": index,
        "pts": None if pts is None else round(pts, 6),
        "detections": result.to_records(),
    }
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


class JsonlWriter(_PublishedOnClose):
    """Writes one JSON line per processed frame, flushed as it goes.

    Line: ``{"frame": int, "pts": float seconds or null, "detections": [{"label": str,
    "prompt_index": int, "box": [x1, y1, x2, y2], "score": float}, ...]}`` (``FrameResult
    .to_records()``). Lines go to the partial file (``partial_path``) and are flushed one by one, so
    a live consumer can ``tail -f`` that file; ``close`` moves it to ``path``. Same crash rule,
    ``overwrite`` rule and zero-frames rule as ``Mp4Writer`` (see the module docstring), so after
    Ctrl-C both files exist and hold as many lines as frames written.
    """

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        super().__init__(path, overwrite)
        self._file: IO[str] = open(self._partial, "w", encoding="utf-8")  # noqa: SIM115
        self._lines = 0

    @property
    def lines_written(self) -> int:
        return self._lines

    def write(self, index: int, pts: float | None, result: FrameResult) -> None:
        """Append the line of frame ``index`` at ``pts`` seconds (None if unknown) and flush it."""
        if self._closed:
            raise WriterClosedError(f"JsonlWriter for '{self._path}' is closed; open a new one")
        if not isinstance(result, FrameResult):
            raise FrameTypeError(f"result must be a FrameResult, but got {type(result).__name__}")
        try:
            frame = operator.index(index)
        except TypeError:
            raise FrameTypeError(f"index must be an int, but got {type(index).__name__}") from None
        self._file.write(jsonl_line(frame, _check_pts(pts), result))
        self._file.flush()
        self._lines += 1

    def _finish(self) -> int:
        """Close the file; the number of lines written."""
        self._file.close()
        return self._lines


class ImageWriter(_PublishedOnClose):
    """Writes one annotated picture (the last one given) as PNG/JPEG/BMP/WebP on ``close``.

    The format follows the path's suffix. Same partial-file, overwrite and crash rules as the
    video writers; a writer that got no picture leaves no file.
    """

    SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        suffix = Path(path).suffix.lower()
        if suffix not in self.SUFFIXES:
            raise ConfigError(
                f"image output '{path}' must end in one of {', '.join(self.SUFFIXES)}"
            )
        super().__init__(path, overwrite)
        self._suffix = suffix
        self._picture: np.ndarray | None = None

    def write(self, picture_bgr: np.ndarray) -> None:
        """Keep ``picture_bgr`` (HxWx3 uint8 BGR; gray and BGRA converted) to write on close."""
        if self._closed:
            raise WriterClosedError(f"ImageWriter for '{self._path}' is closed; open a new one")
        self._picture = as_bgr(picture_bgr)

    def _finish(self) -> int:
        if self._picture is None:
            return 0
        ok, buf = cv2.imencode(self._suffix, self._picture)
        if not ok:
            raise FrameError(f"OpenCV could not encode the picture as {self._suffix}")
        self._partial.write_bytes(buf.tobytes())
        return 1


# --- probing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a video file really holds, found by decoding every frame of its first video stream.

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
