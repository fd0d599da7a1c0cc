"""Which write rule a run picks: a live source's MP4 and JSONL are at their paths while it runs (a
file's appear when complete), ``--live-outputs`` asks for the live rule on a file, and a real
Ctrl-C still leaves both complete with as many frames as lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from fakes import FakeDetector, FakeSource
from test_run_cli import make_video

from streamdet.pipeline import job as job_module
from streamdet.pipeline.job import RunJob, plan_job, run_job
from streamdet.sinks import probe_video


class WatchingDetector(FakeDetector):
    """Notes, at its 5th frame, whether the outputs are already at their paths."""

    def __init__(self, targets: list[Path]) -> None:
        super().__init__()
        self.targets = targets
        self.seen_mid_run: list[bool] | None = None

    def detect(self, frame: np.ndarray):
        if len(self.seen) == 5:
            self.seen_mid_run = [t.exists() for t in self.targets]
        return super().detect(frame)


@pytest.mark.parametrize(("spec", "live"), [("0", True), ("clip.mp4", False)])
def test_a_live_source_writes_at_the_paths_and_a_file_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, live: bool
) -> None:
    mp4, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    source = FakeSource(40, live=live, fps=100)  # paced like a camera: few drops
    monkeypatch.setattr(job_module, "open_source", lambda *args, **kwargs: source)
    planned = plan_job(
        RunJob(source=spec, prompts=("a thing",), video_out=str(mp4), jsonl_out=str(jsonl))
    )
    detector = WatchingDetector([mp4, jsonl])
    assert run_job(planned, detector) == 0
    assert detector.seen_mid_run == [live, live]
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == probe_video(mp4).frames == len(detector.seen) > 5
    assert (b"moof" in mp4.read_bytes()) is live  # live: fragmented; file: one index
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


def _decodable(path: Path) -> int:
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except av.error.FFmpegError:  # not even the header yet
        return 0


def test_live_outputs_on_a_file_can_be_followed_and_ctrl_c_completes_them(
    tmp_path: Path,
) -> None:
    """A real process: the JSONL and MP4 are read at their paths mid-run, then a real SIGINT."""
    clip = make_video(tmp_path / "long.mp4", n=400, fps=12, w=320, h=192)
    out, jl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamdet", "run", str(clip), "-p", "a car"]
    command += ["-o", str(out), "--jsonl", str(jl), "--live-outputs"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        mid_lines = mid_frames = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if jl.exists() and out.exists():
                mid_lines = len([json.loads(x) for x in jl.read_text().splitlines()])
                mid_frames = _decodable(out)
                if mid_frames > 0:
                    break
            time.sleep(0.1)
        assert proc.poll() is None and mid_frames > 0, "nothing playable during the run"
        assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    n = len(jl.read_text().splitlines())
    assert mid_frames <= mid_lines <= n < 400
    assert probe_video(out).frames == n
    assert f"wrote {out} ({n} frames)" in err and "Traceback" not in err
