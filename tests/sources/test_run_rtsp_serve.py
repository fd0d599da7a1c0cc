"""``streamdet run rtsp://... --serve``: a real RTSP camera (GStreamer's server on 127.0.0.1)
watched through the live view; the camera's password reaches neither the page, the API, the
MJPEG stream's headers nor the log. Skipped without GStreamer's RTSP server (see conftest.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.network

SECRET = "s3cr3t-cam-pw"


def test_a_camera_is_served_live_and_its_password_never_shows(rtsp_server):
    pytest.importorskip("aiohttp")
    server = rtsp_server(fps=15, size=(160, 96))
    cmd = [
        sys.executable, "-m", "streamdet", "run", server.url(f"admin:{SECRET}"),
        "-p", "a car", "--serve", "127.0.0.1:0", "--timeout", "5", "-v",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"live view at (http://\S+)", line)
            url = found.group(1).rstrip("/") if found else None
        assert url, "".join(seen)
        state: dict = {}
        while time.monotonic() < deadline:
            state = json.loads(urllib.request.urlopen(url + "/api/state", timeout=5).read())
            if state["frames_processed"] >= 3:
                break
            time.sleep(0.2)
        assert state["live"] and state["frames_processed"] >= 3
        assert state["source"].startswith("rtsp://***@127.0.0.1")
        page = urllib.request.urlopen(url + "/", timeout=5).read().decode()
        with urllib.request.urlopen(url + "/stream.mjpg", timeout=5) as stream:
            head = stream.read(2048)
        assert head.startswith(b"--frame")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    for text in (json.dumps(state), page, "".join(seen), err):
        assert SECRET not in text
