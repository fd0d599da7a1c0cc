"""The RTSP test server (GStreamer's, on 127.0.0.1) for tests and benchmarks that need a camera.

The server is ``tests/rtsp_server.py`` run by Debian's ``/usr/bin/python3``, because python3-gi
and the GstRtspServer typelib are system packages, not wheels in the venv. ``rtsp_server_problem``
says why it cannot run here (None when it can); ``.ci/run`` installs what it needs.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = REPO / "tests" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"

_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
need = ("videotestsrc", "x264enc", "rtph264pay", "capsfilter")
print(" ".join(n for n in need if Gst.ElementFactory.find(n) is None))
"""

_probe_result: list[str | None] = []  # cached per session: None = usable, else the skip reason


def rtsp_server_problem() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or None if it can (probed once)."""
    if _probe_result:
        return _probe_result[0]
    reason: str | None = None
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        reason = f"{SYSTEM_PYTHON} is absent (the RTSP test server runs on Debian's python3-gi)"
    else:
        try:
            done = subprocess.run(
                [SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired:
            done = None
            reason = "probing GStreamer timed out"
        if done is not None and done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            reason = (
                f"python3-gi / gir1.2-gst-rtsp-server-1.0 unusable ({last}); install them with "
                "apt (see .ci/run)"
            )
        elif done is not None and done.stdout.strip():
            reason = f"GStreamer plugins missing: {done.stdout.strip()} (see .ci/run)"
    _probe_result.append(reason)
    return reason


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RtspServer:
    """One test server on a fixed port; ``kill()`` and ``start()`` again reuse the same port."""

    def __init__(self, port: int, path: str, fps: int, size: tuple[int, int]) -> None:
        self.port = port
        self.path = path
        self.fps = fps
        self.size = size
        self.process: subprocess.Popen[str] | None = None

    def url(self, userinfo: str | None = None) -> str:
        """The stream URL; ``userinfo`` like ``"user:secret"`` (the server does not check it)."""
        auth = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RtspServer:
        """Start the server and return once it said "ready" and its port accepts connections."""
        if self.running:
            return self
        width, height = self.size
        self.process = subprocess.Popen(
            [
                SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path,
                "--fps", str(self.fps), "--size", f"{width}x{height}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        line = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if line.strip() == "ready":
                    break
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"RTSP test server on port {self.port} did not start: {line!r}")
        while not _port_accepts(self.port):
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"RTSP test server port {self.port} does not accept")
            time.sleep(0.05)
        return self

    def freeze(self) -> None:
        """Stop the server process (SIGSTOP): connections stay open but no data comes."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL, like a crash): clients see the connection drop."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process = None
