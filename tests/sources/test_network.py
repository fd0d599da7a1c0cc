"""Network streams that need no streaming server: bad schemes, unreachable or silent servers,
HTTP errors, and files served over HTTP (read like files, upright). The RTSP server tests are in
test_rtsp.py and test_run_rtsp.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from video_helpers import check_frame, corner_block, make_video, mean_error, read_all

from streamdet.errors import SourceError, StreamLostError
from streamdet.sources import open_source

pytestmark = pytest.mark.network  # local stream servers on 127.0.0.1

W, H = 64, 48


@pytest.mark.parametrize("url", ["ftp://u:secret@h/x.mp4", "file:///tmp/x.mp4", "gopher://h/x"])
def test_unsupported_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(SourceError, match="unsupported stream scheme") as info:
        open_source(url)
    message = str(info.value)
    assert "rtsp, rtsps, rtmp" in message and "secret" not in message


def test_unreachable_url_fails_fast_without_showing_the_password(
    caplog: pytest.LogCaptureFixture, free_tcp_port: int
) -> None:
    url = f"rtsp://user:secret@127.0.0.1:{free_tcp_port}/x"
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as info:
        open_source(url, open_timeout=3)
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "stream rtsp://***@127.0.0.1:" in message and "cannot be opened" in message
    assert "secret" not in message and "secret" not in caplog.text
    assert not isinstance(info.value, StreamLostError)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_server_that_never_answers_times_out(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer within 1 s"):
        open_source(f"rtsp://u:secret@127.0.0.1:{silent_server}/x", open_timeout=1)
    assert time.monotonic() - started < 4


def test_http_404_is_reported(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(SourceError, match="404"):
            open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4", open_timeout=3)
    finally:
        server.shutdown()
        server.server_close()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the files of ``folder``; yields its base URL."""
    handler = functools.partial(_QuietFiles, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_file_served_over_http_is_not_live(tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4", 10, faststart=True)
    with serving(tmp_path) as url, open_source(f"{url}/clip.mp4", open_timeout=5) as source:
        assert (source.live, source.frame_count, source.size) == (False, 10, (W, H))
        frames = read_all(source)
    assert [f.index for f in frames] == list(range(10))  # none lost to probing, no replay at EOF
    assert [f.pts for f in frames] == pytest.approx([i / 24 for i in range(10)], abs=1e-6)


def test_a_phone_video_served_over_http_comes_out_upright(tmp_path: Path) -> None:
    """A rotation-tagged MP4 over HTTP: frames upright, and ``size`` upright from the first
    frame on (a stream's rotation only shows in its decoded frames)."""
    make_video(tmp_path / "phone.mp4", 5, rotation=90, picture=corner_block, faststart=True)
    upright = np.rot90(corner_block(0, W, H), 1)  # a counter-clockwise quarter turn
    with serving(tmp_path) as url, open_source(f"{url}/phone.mp4", open_timeout=5) as source:
        assert not source.live
        frames = read_all(source)
        assert source.size == (H, W)
    assert [f.index for f in frames] == list(range(5))
    for frame in frames:
        check_frame(frame, H, W)
        assert mean_error(frame.image, upright) < 3
