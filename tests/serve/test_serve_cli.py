"""``streamdet run SOURCE --serve`` from the command line: the real built-in model on a
generated street clip in a subprocess, watched over HTTP and stopped with Ctrl-C; and the
one-line refusals of bad --serve options before the model loads."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streamdet.cli import main
from streamdet.demo import demo_frames
from streamdet.sinks import Mp4Sink, probe_video
from streamdet.types import Frame


@pytest.fixture(scope="module")
def street_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "street.mp4"
    with Mp4Sink(path, fps=12) as sink:
        for i, image in enumerate(demo_frames(150, 360, 640, 0)):
            sink.write(Frame(image, i, None, 0.0))
    return path


def _read_url(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The URL the run prints once on stderr (the rest of stderr is kept for the end)."""
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        found = re.search(r"live view at (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("the run printed no URL")


@pytest.mark.network
@pytest.mark.timeout(120)
def test_a_run_serves_its_view_and_ctrl_c_finalises_the_outputs(street_clip, tmp_path):
    out, jl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    cmd = [sys.executable, "-m", "streamdet", "run", str(street_clip), "-p", "a red car"]
    cmd += ["-p", "a person", "-o", str(out), "--jsonl", str(jl), "--serve", "127.0.0.1:0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = _read_url(proc)
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        base = url.rstrip("/")
        deadline = time.monotonic() + 30
        while True:
            state = json.loads(urllib.request.urlopen(base + "/api/state", timeout=5).read())
            if state["frames_processed"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert state["prompts"] == ["a red car", "a person"] and state["running"]
        assert state["fps"] > 0 and state["source"].endswith("street.mp4")
        with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = stream.read(4096)
        assert head.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in head
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err  # stopped by Ctrl-C, as any interrupted run
    lines = [json.loads(line) for line in jl.read_text().splitlines()]
    assert 2 <= len(lines) < 150 and probe_video(out).frames == len(lines)
    assert f"wrote {out} ({len(lines)} frames)" in err and "Traceback" not in err
    with pytest.raises(OSError):  # the server is gone with the run
        urllib.request.urlopen(base + "/api/state", timeout=2)


@pytest.mark.network
@pytest.mark.timeout(120)
def test_a_run_of_two_sources_serves_both(street_clip, tmp_path):
    """``streamdet run a.mp4 b.mp4 --serve``: /api/state lists both, each with its own frames,
    and each has its own MJPEG stream."""
    other = tmp_path / "other.mp4"
    with Mp4Sink(other, fps=12) as sink:
        for i, image in enumerate(demo_frames(150, 360, 640, 1)):
            sink.write(Frame(image, i, None, 0.0))
    cmd = [sys.executable, "-m", "streamdet", "run", str(street_clip), str(other)]
    cmd += ["-p", "a red car", "--jsonl", str(tmp_path / "out"), "--serve", "127.0.0.1:0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        base = _read_url(proc).rstrip("/")
        deadline = time.monotonic() + 30
        while True:
            state = json.loads(urllib.request.urlopen(base + "/api/state", timeout=5).read())
            counts = [s["frames_processed"] for s in state["sources"]]
            if (len(counts) == 2 and min(counts) >= 2) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        names = [s["name"] for s in state["sources"]]
        assert [n.rsplit("/", 1)[-1] for n in names] == ["street.mp4", "other.mp4"], state
        assert min(counts) >= 2 and all(s["fps"] > 0 for s in state["sources"])
        assert state["source"] == names[0] and state["prompts"] == ["a red car"]
        second = json.loads(urllib.request.urlopen(base + "/api/state?source=1", timeout=5).read())
        assert second["source"] == names[1] and second["selected"] == 1
        with urllib.request.urlopen(base + "/stream.mjpg?source=1", timeout=10) as stream:
            assert stream.read(4096).startswith(b"--frame\r\nContent-Type: image/jpeg")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "2 sources at once" in err


def _cli_error(capsys, *args: str) -> str:
    assert main(["run", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_bad_serve_options_are_one_line_errors(capsys, street_clip):
    clip = str(street_clip)
    assert "port must be a number" in _cli_error(capsys, clip, "-p", "a car", "--serve", "x")
    assert "needs --serve" in _cli_error(
        capsys, clip, "-p", "a car", "-o", "o.mp4", "--serve-token", "abcdefgh1"
    )
    assert "at least 8" in _cli_error(
        capsys, clip, "-p", "a car", "--serve", "0", "--serve-token", "short"
    )


@pytest.mark.network
def test_a_port_in_use_is_one_line(capsys, street_clip):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = _cli_error(capsys, str(street_clip), "-p", "a car", "--serve", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in err


def test_missing_aiohttp_names_the_extra(capsys, monkeypatch, street_clip):
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    err = _cli_error(capsys, str(street_clip), "-p", "a car", "--serve", "0")
    assert 'pip install "streamdet[serve]"' in err


def test_serve_alone_is_enough_output(street_clip):
    from streamdet.pipeline.job import RunJob, plan_job

    planned = plan_job(RunJob(str(street_clip), ("a car",), serve="127.0.0.1:0"))
    assert planned.serve is not None and planned.serve.port == 0 and planned.serve.token is None
    assert planned.plans[0].video is None and planned.plans[0].jsonl is None
