"""The newest frame, shared by every viewer: the pipeline offers pictures, viewers await them.

Why this shape: the pipeline must never wait for a viewer, and a slow viewer must never hold
up another. So the pipeline only *offers* its picture (one reference swap, no copy, no
encoding); a daemon encoder thread turns the newest offer into one JPEG and one JSON text, which
every viewer then shares; each viewer asks for "a frame newer than the one I have" and gets the
newest, skipping whatever it was too slow for. Nothing queues up anywhere, so memory stays flat
and a stalled viewer sees the present when it wakes. With no viewer connected nothing is
encoded at all (the newest offer waits, so a viewer that connects gets a picture at once).

Viewers live on the server's asyncio loop; the encoder wakes them with one
``call_soon_threadsafe`` per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

#: JPEG quality of the frames sent to viewers (OpenCV's 0..100).
JPEG_QUALITY = 80


@dataclass(frozen=True)
class Offer:
    """One frame as the pipeline hands it over: the picture and a function that builds the
    frame's JSON metadata (called on the encoder thread, only when someone watches)."""

    picture: np.ndarray
    meta: Callable[[], dict]


@dataclass(frozen=True)
class LiveFrame:
    """One encoded frame: sequence number (1, 2, ...), JPEG bytes, metadata as a dict and as
    the JSON text sent to viewers (made once, shared by all)."""

    seq: int
    jpeg: bytes
    meta: dict
    text: str


class FrameHub:
    """Newest-frame exchange between the pipeline (``offer``) and viewers (``next_frame``)."""

    def __init__(self, quality: int = JPEG_QUALITY) -> None:
        self.quality = quality
        self._cond = threading.Condition()
        self._pending: Offer | None = None
        self._offered = 0  # offers so far (the encoder skips the ones it was too slow for)
        self._newest: LiveFrame | None = None
        self._closed = False
        self._viewers = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._encode_loop, name="streamdet-jpeg", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ pipeline side

    def offer(self, offer: Offer) -> None:
        """Make ``offer`` the newest frame; never blocks on viewers or encoding."""
        with self._cond:
            self._pending = offer
            self._offered += 1
            self._cond.notify()

    @property
    def offered(self) -> int:
        return self._offered

    # ------------------------------------------------------------------ server side

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the server's loop (call on that loop): viewers are woken on it."""
        self._loop = loop
        self._event = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def viewers(self) -> int:
        return self._viewers

    def viewer_joined(self) -> None:
        with self._cond:
            self._viewers += 1
            self._cond.notify()  # an offer kept while nobody watched is encoded now

    def viewer_left(self) -> None:
        with self._cond:
            self._viewers = max(0, self._viewers - 1)

    @property
    def newest(self) -> LiveFrame | None:
        return self._newest

    async def next_frame(self, after: int) -> LiveFrame | None:
        """The newest frame with ``seq > after``, waiting for one; None once the hub closed."""
        while not self._closed:
            newest = self._newest
            if newest is not None and newest.seq > after:
                return newest
            assert self._event is not None, "bind() the hub to the server's loop first"
            await self._event.wait()
        return None

    def close(self) -> None:
        """Stop the encoder and wake every waiting viewer (they get None). Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    # ------------------------------------------------------------------ encoder thread

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self._wake_on_loop)

    def _wake_on_loop(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    def _encode_loop(self) -> None:
        seq = 0
        while True:
            with self._cond:
                while not self._closed and (self._pending is None or self._viewers == 0):
                    self._cond.wait()
                if self._closed:
                    return
                offer, self._pending = self._pending, None
            assert offer is not None
            ok, buf = cv2.imencode(
                ".jpg", offer.picture, [int(cv2.IMWRITE_JPEG_QUALITY), self.quality]
            )
            if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR picture
                continue
            seq += 1
            meta = {**offer.meta(), "seq": seq}
            self._newest = LiveFrame(seq, buf.tobytes(), meta, json.dumps(meta))
            self._wake()
