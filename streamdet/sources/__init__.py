"""Where frames come from: video files, still images, cameras and network streams, behind one API.

``open_source(spec)`` picks the kind and opens it at once, so a wrong path, a URL with a bad
scheme, an unreachable server or a missing camera fails before any model work with a one-line
``SourceError``. ``source.frames(stop)`` then yields :class:`streamdet.types.Frame` objects
(upright BGR uint8, a running index, a presentation time in seconds) until the input ends or
``stop`` is set. ``expand_inputs`` turns a folder or a glob pattern into the inputs it holds.

The kinds differ in what "the end" means, and each module says how:

* ``files``: video files (every frame, in order; a damaged file ends with a WARNING) and still
  images (one frame);
* ``camera`` and ``network``: *live* sources (the pipeline drops old frames for them) that
  reconnect with the loop and :class:`ReconnectPolicy` of ``live``;
* ``generated``: frames made by a function (the demo), read like a file.

Files and network streams decode with PyAV (``decode``: display rotation applied, optional
hardware decoding with ``hwaccel``); cameras and still images decode on the CPU with OpenCV.
Credentials never leave this package: a source's ``name`` and every message and log line go
through :func:`streamdet.sources.urls.mask_url`.

Thread safety: ``frames()`` runs in one thread (the pipeline's reader); ``close()`` may be called
from another. It then only marks the source closed: the reader notices within ``read_timeout``
and releases the file, camera or connection itself.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from urllib.parse import urlsplit

from streamdet.errors import SourceError, StreamLostError
from streamdet.sources.base import Source, check_seconds
from streamdet.sources.camera import CameraSource
from streamdet.sources.decode import hardware_decoder, hardware_decoders
from streamdet.sources.files import FileSource, ImageSource
from streamdet.sources.generated import GeneratedSource
from streamdet.sources.live import ReconnectPolicy
from streamdet.sources.network import NetworkSource
from streamdet.sources.urls import SUPPORTED_SCHEMES, is_url, mask_url

__all__ = [
    "IMAGE_SUFFIXES",
    "SUPPORTED_SCHEMES",
    "VIDEO_SUFFIXES",
    "GeneratedSource",
    "ReconnectPolicy",
    "Source",
    "SourceError",
    "StreamLostError",
    "expand_inputs",
    "hardware_decoder",
    "hardware_decoders",
    "is_url",
    "mask_url",
    "open_source",
]

#: File suffixes read as videos (lower case). Other existing non-image files are tried as videos.
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts",
    ".mts", ".m2ts", ".3gp", ".ogv", ".y4m", ".h264", ".264", ".h265", ".hevc", ".mjpeg", ".gif",
)  # fmt: skip
#: File suffixes read as still images (lower case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_GLOB_CHARS = frozenset("*?[")
_DEFAULT_RECONNECT = ReconnectPolicy()  # frozen, so one shared default is safe


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    live: bool | None = None,
    open_timeout: float = 10.0,
    read_timeout: float = 10.0,
    reconnect: ReconnectPolicy | None = _DEFAULT_RECONNECT,
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
    check_seconds("open_timeout", open_timeout)
    check_seconds("read_timeout", read_timeout)
    hardware_decoder(hwaccel)  # an unknown decoder type fails here, whatever the input
    if isinstance(spec, bool):
        raise SourceError(f"{spec!r} is not an input; give a path, URL or camera index")
    if isinstance(spec, int):
        return _open_camera(spec, live, reconnect)
    if not isinstance(spec, (str, os.PathLike)):
        raise SourceError(
            f"an input must be a path, URL or camera index, but got {type(spec).__name__}"
        )
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.strip().isdigit() and isinstance(spec, str):
        return _open_camera(int(text), live, reconnect)
    if is_url(text):
        return _open_url(text.strip(), live, open_timeout, read_timeout, reconnect, hwaccel)
    return _open_path(Path(os.path.expanduser(text)), hwaccel)


def _open_camera(index: int, live: bool | None, reconnect: ReconnectPolicy | None) -> Source:
    if index < 0:
        raise SourceError(f"camera index must be 0 or more, but got {index}")
    return CameraSource(index, live=True if live is None else live, reconnect=reconnect)


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
    return NetworkSource(
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
        return ImageSource(path)
    return FileSource(path, hwaccel)


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
