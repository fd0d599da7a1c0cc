"""RTSP sources against a real server (GStreamer, ``tests/rtsp_server.py``): live frames, masked
credentials, reconnecting after the server died and came back, giving up when it does not, and
``stop`` during the backoff. Skipped when GStreamer's RTSP server is not installed (see
conftest.py). Each test starts its own server on a free port; the file runs in about 15 s.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamdet.errors import SourceError, StreamLostError
from streamdet.sources import ReconnectPolicy, open_source
from streamdet.types import Frame

pytestmark = pytest.mark.network  # local stream servers on 127.0.0.1

SECRET = "s3cr3t-pw"


def take(frames: Iterator[Frame], n: int) -> list[Frame]:
    return list(itertools.islice(frames, n))


def increasing(values: list[float | None]) -> bool:
    return all(v is not None for v in values) and all(
        a < b  # type: ignore[operator]
        for a, b in itertools.pairwise(values)
    )


def test_reads_live_frames(rtsp_server: Callable[..., Any]) -> None:
    server = rtsp_server(fps=30, size=(320, 240))
    stop = threading.Event()
    with open_source(server.url(), open_timeout=10, read_timeout=5) as source:
        assert source.live is True
        assert (source.size, source.fps, source.frame_count) == ((320, 240), 30.0, None)
        frames = take(source.frames(stop), 15)
    assert [f.index for f in frames] == list(range(15))
    assert frames[0].pts == 0.0
    assert increasing([f.pts for f in frames])
    assert frames[-1].pts == pytest.approx(14 / 30, abs=0.02)  # the stream's own clock
    for frame in frames:
        assert frame.image.shape == (240, 320, 3) and frame.image.flags.c_contiguous
        assert frame.image.max() > 0  # the test pattern, not a blank frame


def test_unknown_path_on_a_live_server_fails_at_once(
    rtsp_server: Callable[..., Any],
) -> None:
    server = rtsp_server()
    started = time.monotonic()
    with pytest.raises(SourceError, match="404") as info:
        open_source(server.url(f"admin:{SECRET}").replace("/test", "/nope"))
    assert time.monotonic() - started < 3
    assert SECRET not in str(info.value)


def test_reconnects_after_the_server_comes_back_and_never_shows_the_password(
    rtsp_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = rtsp_server(fps=30, size=(160, 120))
    url = server.url(f"admin:{SECRET}")
    policy = ReconnectPolicy(initial_delay=0.25, max_delay=1.0, give_up_after=20)
    restart_errors: list[BaseException] = []

    def restart() -> None:
        try:
            server.start()
        except BaseException as err:  # reported by the assertion below
            restart_errors.append(err)

    frames: list[Frame] = []
    stop = threading.Event()
    killed_at = back_at = None
    with caplog.at_level(logging.DEBUG):
        source = open_source(url, read_timeout=5, reconnect=policy)
        assert SECRET not in source.name and SECRET not in repr(source)
        assert source.name == f"rtsp://***@127.0.0.1:{server.port}/test"
        with source:
            for frame in source.frames(stop):
                frames.append(frame)
                if len(frames) == 10:
                    server.kill()
                    killed_at = time.monotonic()
                    timer = threading.Timer(2.0, restart)  # same port, two seconds later
                    timer.start()
                if killed_at is not None and frame.captured_at > killed_at + 2.0:
                    back_at = back_at or len(frames) - 1
                    if len(frames) - back_at == 8:  # eight frames from the restarted server
                        break
        timer.join()
    assert not restart_errors
    assert back_at is not None
    assert [f.index for f in frames] == list(range(len(frames)))
    assert increasing([f.pts for f in frames])
    # A few frames already on their way may come after the kill; then the gap, in pts too.
    gap = frames[back_at].pts - frames[back_at - 1].pts  # type: ignore[operator]
    assert frames[back_at].captured_at - frames[back_at - 1].captured_at > 1.5
    assert gap > 1.5

    masked = f"stream rtsp://***@127.0.0.1:{server.port}/test"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # a server killed mid-stream may cut its last packet (one "could not be decoded" warning
    # before the loss is noticed); every warning names the stream masked
    assert warnings and all(w.startswith(masked) for w in warnings)
    lost = [w for w in warnings if w.startswith(f"{masked} lost (")]
    assert lost and lost[0].startswith(f"{masked} lost (end of stream); reconnecting in")
    assert "(attempt 1)" in lost[0] and any("(attempt 2)" in w for w in lost)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith(f"{masked} is back after") for m in infos)
    assert SECRET not in caplog.text


def test_gives_up_when_the_server_does_not_come_back(
    rtsp_server: Callable[..., Any],
) -> None:
    server = rtsp_server(fps=30, size=(160, 120))
    policy = ReconnectPolicy(initial_delay=0.25, max_delay=1.0, give_up_after=3)
    got = 0
    with open_source(server.url(f"admin:{SECRET}"), reconnect=policy) as source:
        with pytest.raises(StreamLostError, match=r"not back within 3 s") as info:
            for _ in source.frames(threading.Event()):
                got += 1
                if got == 5:
                    server.kill()
                    killed_at = time.monotonic()
        gave_up_after = time.monotonic() - killed_at
    assert 2.5 < gave_up_after < 5
    assert got >= 5  # frames already on their way may still come
    message = str(info.value)
    assert message.startswith(f"stream rtsp://***@127.0.0.1:{server.port}/test lost (")
    assert SECRET not in message and "\n" not in message


def test_a_stalled_stream_times_out_after_read_timeout(
    rtsp_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = rtsp_server(fps=30, size=(160, 120))
    policy = ReconnectPolicy(initial_delay=0.25, max_delay=0.5, give_up_after=2)
    got = 0
    source = open_source(server.url(), open_timeout=1, read_timeout=1, reconnect=policy)
    with caplog.at_level(logging.WARNING, logger="streamdet.sources"), source:
        with pytest.raises(StreamLostError, match=r"not back within 2 s"):
            for _ in source.frames(threading.Event()):
                got += 1
                if got == 5:
                    server.freeze()  # the TCP connection stays up, but goes silent
                    frozen_at = time.monotonic()
        gave_up_after = time.monotonic() - frozen_at
    assert gave_up_after < 4.5  # give_up_after, plus at most one open_timeout
    warnings = [r.getMessage() for r in caplog.records]
    assert "lost (no data for 1 s); reconnecting in" in warnings[0]


def test_stop_during_reconnect_backoff_returns_at_once(
    rtsp_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = rtsp_server(fps=30, size=(160, 120))
    policy = ReconnectPolicy(initial_delay=30, max_delay=30, give_up_after=None)
    stop = threading.Event()
    got = 0
    with caplog.at_level(logging.WARNING, logger="streamdet.sources"):
        with open_source(server.url(), reconnect=policy) as source:
            for _ in source.frames(stop):
                got += 1
                if got == 5:
                    server.kill()
                    threading.Timer(0.5, stop.set).start()
                    stopping_from = time.monotonic()
        returned_after = time.monotonic() - stopping_from
    assert returned_after < 2  # not 30 s: the backoff sleep wakes on stop
    assert any("reconnecting in 30.0 s (attempt 1)" in r.getMessage() for r in caplog.records)
