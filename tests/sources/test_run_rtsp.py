"""``streamdet run`` on a real RTSP camera (GStreamer's server on 127.0.0.1): the server dies
mid-run and comes back, the run goes on; its MP4 and JSONL are at their paths during the run;
Ctrl-C ends it with an MP4 whose frame count matches its JSONL; the password never shows.
Skipped without GStreamer's RTSP server (see conftest.py)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamdet.sinks import probe_video

pytestmark = pytest.mark.network  # local stream servers on 127.0.0.1

SECRET = "pa55-w0rd"


def _lines(path: Path) -> int:
    """Lines of a camera's JSONL so far: it is written at its path as the run goes."""
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_for(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_a_live_run_survives_a_camera_restart_and_stops_cleanly(rtsp_server, tmp_path):
    server = rtsp_server(fps=15, size=(160, 96))
    out, jl = tmp_path / "cam.mp4", tmp_path / "cam.jsonl"
    cmd = [
        sys.executable, "-m", "streamdet", "run", server.url(f"admin:{SECRET}"),
        "-p", "a car", "-o", str(out), "--jsonl", str(jl), "--max-fps", "5",
        "--timeout", "3", "--reconnect-timeout", "30", "-v",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert _wait_for(lambda: _lines(jl) >= 3, 60), "no frames from the camera"
        assert out.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]
        server.kill()
        time.sleep(1.5)
        before = _lines(jl)
        server.start()
        assert _wait_for(lambda: _lines(jl) >= before + 3, 45), "the run did not resume"
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    records = [json.loads(x) for x in jl.read_text().splitlines()]
    assert len(records) >= 6 and probe_video(out).frames == len(records)
    pts = [r["pts"] for r in records]
    assert all(a < b for a, b in itertools.pairwise(pts))  # time goes on across the gap
    assert "reconnecting" in err and "***@127.0.0.1" in err
    assert SECRET not in err + stdout


def test_a_stream_that_dies_for_good_ends_the_run_with_one_line_and_keeps_the_video(
    rtsp_server, tmp_path
):
    server = rtsp_server(fps=15, size=(160, 96))
    out, jl = tmp_path / "cam.mp4", tmp_path / "cam.jsonl"
    cmd = [
        sys.executable, "-m", "streamdet", "run", server.url(f"admin:{SECRET}"),
        "-p", "a car", "-o", str(out), "--jsonl", str(jl), "--max-fps", "5",
        "--timeout", "2", "--reconnect-timeout", "3",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: _lines(jl) >= 3, 60), "no frames from the camera"
        server.kill()
        stdout, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("streamdet: error: ") and "***@127.0.0.1" in last
    assert "Traceback" not in err and SECRET not in err + stdout
    n = len(jl.read_text().splitlines())
    assert n >= 3 and probe_video(out).frames == n  # what was processed is kept, finalised
