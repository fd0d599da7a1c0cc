"""Fixtures for the source tests: a real RTSP server (GStreamer) that tests can kill and restart.

The server is ``tests/rtsp_server.py`` run by Debian's ``/usr/bin/python3``, because python3-gi
and the GstRtspServer typelib are system packages, not wheels in the venv. When they (or the
GStreamer plugins the pipeline needs) are missing, the RTSP tests skip with the reason; CI installs
them (``.ci/run``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from _rtsp import RtspServer, free_port, rtsp_server_problem  # benchmarks/, on pytest's path


@pytest.fixture
def rtsp_server() -> Iterator[Callable[..., RtspServer]]:
    """Factory: ``rtsp_server(fps=30, size=(320, 240), path="/test")`` starts a server on a free
    port and returns it (started); every server is killed at teardown. Skips when GStreamer's RTSP
    server is not installed."""
    problem = rtsp_server_problem()
    if problem is not None:
        pytest.skip(problem)
    servers: list[RtspServer] = []

    def start(fps: int = 30, size: tuple[int, int] = (320, 240), path: str = "/test") -> RtspServer:
        server = RtspServer(free_port(), path, fps, size)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def free_tcp_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    return free_port()
