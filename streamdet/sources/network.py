"""Network streams (RTSP, RTMP, HTTP, UDP, TCP, SRT) through PyAV/FFmpeg.

A URL is live unless the server reports a finite duration (a file served over HTTP, which would
otherwise replay at its end); ``live=False`` reads any stream like a file. Live streams reconnect
(``streamdet.sources.live``); a stream read as a file ends at a broken read with a WARNING.

Options, and why:

* RTSP runs over TCP: no lost UDP packets behind NAT or firewalls.
* Live streams are opened with ``fflags=nobuffer``: the packets FFmpeg reads while probing the
  stream are dropped, so the first frame is the live one, not one from a second ago.
* Live streams set the decoder's ``low_delay`` flag, which also turns frame threading off: frame
  threads hold back one frame per thread (slice threading stays on).
* ``nobuffer`` would drop the first frames of a file (what the probe read), so HTTP URLs are
  probed without it unless ``live=True``, and a stream of another scheme that turns out to have a
  finite duration is opened again without it.

Frames are turned upright by the display rotation they carry (a phone video served over HTTP),
like files. The rotation shows only in decoded frames, so ``size`` is the stream's reported size
until the first frame and the upright size of the frames from then on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import av
import av.error
import numpy as np

from streamdet.errors import SourceError
from streamdet.sources.decode import (
    PacketReader,
    close_container,
    hwaccel_kwargs,
    picture,
    reason,
    set_low_delay,
    stream_fps,
    stream_size,
    tag_rotation,
)
from streamdet.sources.live import LiveSource, ReadFailure, ReconnectPolicy
from streamdet.sources.urls import mask_url

_log = logging.getLogger("streamdet.sources")


class NetworkSource(LiveSource[av.container.InputContainer]):
    """A network stream through PyAV; see the module docstring for the options and why."""

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
                close_container(container)
                self._nobuffer = False
                container = self._first_connect()
        stream = container.streams.video[0]
        start = stream.start_time
        super().__init__(
            name,
            container,
            live=live,
            reconnect=reconnect,
            fps=stream_fps(stream),
            frame_count=None if live else (stream.frames or None),
            size=stream_size(stream, tag_rotation(stream)),
            origin=None if live or start is None else float(start * stream.time_base),
            reconnects=live,
        )

    def _first_connect(self) -> av.container.InputContainer:
        """Connect once, failing fast with a ``SourceError`` (no retries before any frame)."""
        try:
            return self._connect()
        except ReadFailure as err:
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
                **hwaccel_kwargs(self._hwaccel),
            )
        except Exception as err:
            if isinstance(err, av.error.ProtocolNotFoundError):
                raise ReadFailure(
                    f"this FFmpeg build (PyAV) cannot read '{self._scheme}' streams"
                ) from None
            if isinstance(err, av.error.ExitError) or time.monotonic() - started >= 0.95 * timeout:
                raise ReadFailure(f"no answer within {timeout:g} s") from None
            raise ReadFailure(reason(err)) from None
        if not container.streams.video:
            close_container(container)
            raise ReadFailure("it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container

    def _read(
        self, resource: av.container.InputContainer
    ) -> Iterator[tuple[np.ndarray, float | None]]:
        stream = resource.streams.video[0]
        if self.live:  # the decoder opens at the first packet, so it is not too late for this
            set_low_delay(stream.codec_context)
        tag = tag_rotation(stream)
        reader = PacketReader(resource, stream)
        first = True
        try:
            for frame in reader:
                image = picture(frame, tag)
                if first:  # the upright size is only known from a decoded frame
                    self.size, first = (image.shape[1], image.shape[0]), False
                yield image, (float(frame.time) if frame.time is not None else None)
        except av.error.ExitError:
            raise ReadFailure(f"no data for {self._read_timeout:g} s") from None
        except av.error.FFmpegError as err:
            raise ReadFailure(reason(err)) from None
        finally:
            if reader.bad_packets:
                _log.warning(
                    "%s: %d packet(s) could not be decoded and were skipped (%s)",
                    self._what, reader.bad_packets, reader.first_bad,
                )  # fmt: skip

    def _release(self, resource: av.container.InputContainer) -> None:
        close_container(resource)
