"""The ``Source`` interface every input kind implements, and the helpers they share.

A source is opened by ``open_source`` (which fails at once with a one-line ``SourceError`` when the
input cannot be read) and then read with ``frames(stop)``. ``close()`` may come from another
thread than the reader: it only marks the source closed and releases what ``frames()`` has not
taken over yet, because closing a PyAV container under a blocked read is not safe; the reader
notices the mark between frames and releases its input itself.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import TypeVar

from streamdet.errors import ConfigError, SourceError
from streamdet.types import Frame

_S = TypeVar("_S", bound="Source")


def check_seconds(name: str, value: object) -> None:
    """A ``ConfigError`` unless ``value`` is a positive finite number (of seconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, but got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive finite number of seconds, but got {value}")


class Source(abc.ABC):
    """An opened input. Use it as a context manager; ``close()`` is idempotent.

    Attributes: ``name`` (what logs and outputs show: the file path, ``"camera 0"``, or the URL
    with credentials masked), ``live`` (cameras and network streams: the pipeline may drop old
    frames), ``fps`` (nominal frame rate, if known), ``frame_count`` (frames expected from a file;
    ``None`` when unknown or live) and ``size`` ((width, height) of the upright picture, if known
    before reading).
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
    def frames(self, stop: threading.Event) -> Iterator[Frame]:
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
