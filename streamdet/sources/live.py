"""Live sources (cameras and network streams): the read / lose / reconnect loop they share.

Once frames have flowed, a read error or the end of the stream is not the end: the source
reconnects with exponential backoff (:class:`ReconnectPolicy`), logging a WARNING per attempt and
an INFO when the stream is back, and ``index`` and ``pts`` keep increasing across the gap. Only
when no frame arrived for ``give_up_after`` seconds does it raise ``StreamLostError``. An initial
failure to open is reported at once, without retrying: a wrong URL or password should not look
like a flaky network.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from streamdet.errors import ConfigError, SourceError, StreamLostError
from streamdet.sources.base import Source, check_seconds
from streamdet.types import Frame

_log = logging.getLogger("streamdet.sources")
_T = TypeVar("_T")


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
            check_seconds(name, getattr(self, name))
        if self.max_delay < self.initial_delay:
            raise ConfigError(
                f"max_delay ({self.max_delay:g} s) must not be below initial_delay "
                f"({self.initial_delay:g} s)"
            )
        if self.give_up_after is not None:
            check_seconds("give_up_after", self.give_up_after)


class Handle(Generic[_T]):
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


class ReadFailure(Exception):
    """A live read or (re)connect failed; ``str()`` is the credential-free reason."""


class Timeline:
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


class Outage:
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


class LiveSource(Source, Generic[_T]):
    """The read / lose / reconnect loop shared by cameras and network streams.

    Subclasses implement ``_connect`` (open; raise ``ReadFailure``), ``_read`` (yield
    ``(image, stream_time or None)`` until the stream ends; raise ``ReadFailure`` on errors) and
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
        self._handle: Handle[_T] = Handle(resource, self._release)
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
        except ReadFailure as err:
            raise SourceError(f"{self._what} cannot be opened again ({err})") from None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        self._check_open()
        resource = self._handle.take()
        if resource is None:
            resource = self._connect_or_fail()
        timeline = Timeline(self.fps, self._origin)
        index = 0
        last_frame_at = time.monotonic()
        outage: Outage | None = None
        while True:
            assert resource is not None
            reason = "end of stream"
            failed = False
            reads = self._read(resource)
            try:
                for image, stream_time in reads:
                    at = time.monotonic()
                    yield Frame(image, index, timeline.pts(stream_time, at), at)
                    index, last_frame_at, outage = index + 1, at, None
                    if self._should_stop(stop):
                        return
            except ReadFailure as err:
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
            outage = outage or Outage(self._policy, last_frame_at)
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

    def _reconnect(self, stop: threading.Event, outage: Outage, reason: str) -> _T | None:
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
            except ReadFailure as err:
                reason = str(err)
                outage.failed()
                continue
            _log.info(
                "%s is back after %.1f s without frames (attempt %d)",
                self._what, time.monotonic() - outage.since, outage.attempt,
            )  # fmt: skip
            outage.failed()  # if this connection gives no frame, the next attempt waits longer
            return resource
