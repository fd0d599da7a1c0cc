"""The parts of the Ray folder run that need no cluster: the resume rule, worker sizing,
address checks, the missing-extra error, progress text, and the same run in this process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from video_helpers import make_video

from streamdet.cli import main
from streamdet.distributed.cluster import (
    RAY_MISSING,
    check_reachable,
    import_ray,
    worker_shape,
)
from streamdet.distributed.folder import run_folder
from streamdet.errors import ClusterError, ConfigError, MissingDependencyError
from streamdet.pipeline.plan import InputPlan
from streamdet.pipeline.progress import files_line
from streamdet.pipeline.resume import resume_plan, stale_partials


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plan(folder: Path, name: str) -> InputPlan:
    return InputPlan(f"in/{name}.mp4", folder / f"{name}.mp4", str(folder / f"{name}.jsonl"))


def test_resume_skips_finished_inputs_and_keeps_only_missing_outputs(tmp_path):
    done, half, new = (_plan(tmp_path, n) for n in ("done", "half", "new"))
    for path in (done.video, Path(done.jsonl), half.video):
        path.write_bytes(b"x")
    resume = resume_plan([done, half, new], overwrite=False)
    assert resume.finished == (done,)
    assert [p.source for p in resume.todo] == [half.source, new.source]
    half_todo, new_todo = resume.todo
    assert half_todo.video is None and half_todo.jsonl == half.jsonl  # the MP4 is finished
    assert new_todo == new
    assert resume_plan([done, half, new], overwrite=True).todo == (done, half, new)


def test_only_partial_files_of_ended_processes_are_stale(tmp_path):
    target = tmp_path / "clip.mp4"
    dead = tmp_path / f".clip.mp4.{_dead_pid()}.partial"
    alive = tmp_path / f".clip.mp4.{__import__('os').getpid()}.partial"
    other = tmp_path / f".other.mp4.{_dead_pid()}.partial"
    for path in (dead, alive, other):
        path.write_bytes(b"x")
    assert stale_partials(target) == [dead]
    resume = resume_plan([InputPlan("clip.mp4", target, None)], overwrite=False)
    assert resume.stale == (dead,)


def test_workers_follow_the_cluster_and_refuse_what_it_cannot_hold():
    assert worker_shape({"CPU": 8.0}).workers == 8
    shape = worker_shape({"CPU": 8.0}, threads=3)
    assert (shape.workers, shape.cpus, shape.gpus) == (2, 3.0, 0.0)
    assert worker_shape({"CPU": 1.0}).workers == 1
    cuda = worker_shape({"CPU": 16.0, "GPU": 2.0}, device="cuda", gpus=0.5)
    assert (cuda.workers, cuda.gpus) == (4, 0.5)
    with pytest.raises(ConfigError, match="need 3 x 1 CPU"):
        worker_shape({"CPU": 2.0}, workers=3)
    with pytest.raises(ClusterError, match="no GPU"):
        worker_shape({"CPU": 4.0}, device="cuda")
    with pytest.raises(ConfigError, match="--device cuda"):
        worker_shape({"CPU": 4.0}, gpus=1)
    with pytest.raises(ConfigError, match="at least 1"):
        worker_shape({"CPU": 4.0}, workers=0)


def test_an_address_where_nothing_listens_is_one_line_at_once():
    with socket.socket() as sock:  # a free port on the loopback: bound, not listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(ClusterError) as err:
            check_reachable(f"127.0.0.1:{port}", timeout=2)
    assert f"127.0.0.1:{port}" in str(err.value) and "ray start --head" in str(err.value)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        check_reachable("127.0.0.1:port")
    check_reachable("auto")  # Ray finds that one itself


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "streamdet\[ray\]"'):
        import_ray()
    make_video(tmp_path / "a.mp4", 2)
    rc = main(["run", str(tmp_path), "-p", "a car", "--jsonl", str(tmp_path / "out"), "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == [f"streamdet: error: {RAY_MISSING}"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--show"], "--show"),
        (["--stats"], "--stats"),
        (["--ray-workers", "2"], None),  # without --ray
    ],
)
def test_what_a_ray_run_cannot_do_is_refused_before_it_starts(extra, message, tmp_path, capsys):
    make_video(tmp_path / "a.mp4", 2)
    args = ["run", str(tmp_path), "-p", "a car", "--jsonl", str(tmp_path / "out")]
    rc = main([*args, *extra] if message is None else [*args, *extra, "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1
    assert (message or "go with --ray") in err[0]


def test_stdout_and_streams_are_refused_with_ray(capsys):
    assert main(["run", "rtsp://127.0.0.1/cam", "-p", "a car", "--jsonl", "x/", "--ray"]) == 1
    assert "without --ray" in capsys.readouterr().err
    assert main(["run", "clip.mp4", "-p", "a car", "--jsonl", "-", "--ray"]) == 1
    assert "give a folder" in capsys.readouterr().err


def test_files_line_counts_files_frames_and_failures():
    line = files_line(3, 10, 1200, 25.0, failed=1)
    assert "3/10 files" in line and "1200 frames" in line and "48.0 FPS" in line
    assert "1 failed" in line and "#" * 7 in line and "#" * 8 not in line
    assert "ETA ?" in files_line(0, 4, 0, 1.0)


def test_the_same_run_in_this_process_is_resumable(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    make_video(clips / "a.mp4", 5)
    make_video(clips / "b.mp4", 3)
    (clips / "c.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    first = run_folder(clips, "a red car", jsonl_out=out, ray=False)
    assert sorted(Path(r.source).name for r in first.reports) == ["a.mp4", "b.mp4"]
    assert [Path(s).name for s, _ in first.failed] == ["c.mp4"]
    assert not first.on_ray and "this process" in first.summary()
    lines = [json.loads(x) for x in (out / "a.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(5))
    (out / "b.jsonl").unlink()
    again = run_folder(clips, "a red car", jsonl_out=out, ray=False)
    assert [Path(r.source).name for r in again.reports] == ["b.mp4"]
    assert [Path(s).name for s in again.skipped] == ["a.mp4"]
    assert len((out / "b.jsonl").read_text().splitlines()) == 3
