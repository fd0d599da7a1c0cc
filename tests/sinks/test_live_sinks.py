"""The live write rule: a live source's JSONL and MP4 are at their paths and usable while the run
goes on (a line per frame, MP4 fragments that decode), complete after close or Ctrl-C, usable up
to the last piece after a hard kill, and still never written over a file the user had."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest
from sink_helpers import decode, frame, leftovers, make_result, pattern

from streamdet.errors import ConfigError, OutputExistsError
from streamdet.sinks import JsonlSink, Mp4Sink, probe_video

FPS = 24


def decodable(path: Path) -> tuple[int, list[float]]:
    """How many frames a reader gets from ``path`` now, and their times (seconds)."""
    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    return len(times), times


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            float(p.pts * stream.time_base)
            for p in container.demux(stream)
            if p.is_keyframe and p.pts is not None
        ]


def test_live_jsonl_grows_at_its_path_one_whole_line_per_frame(tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    sink = JsonlSink(out, live=True)
    assert sink.live and sink.path == out and sink.writing_path == out
    assert sink.partial_path is None
    assert out.exists() and out.read_bytes() == b""  # there from the start: tail -f can begin
    seen = []
    for i in range(12):
        sink.write(frame(i, pts=i / FPS), make_result(i % 3))
        text = out.read_text(encoding="utf-8")  # a reader at the target, between two frames
        assert text.endswith("\n")
        seen.append([json.loads(line)["frame"] for line in text.splitlines()])
    assert seen == [list(range(i + 1)) for i in range(12)]
    assert sink.close() == (str(out), 12)
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [len(r["detections"]) for r in lines] == [i % 3 for i in range(12)]
    assert leftovers(tmp_path) == []


def test_live_mp4_decodes_mid_run_and_is_complete_after_close(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    sink = Mp4Sink(out, fps=FPS, live=True, keyframe_interval=0.5)
    assert sink.live and sink.partial_path is None and out.exists()
    written, counts, prefixes = [], [], []
    for i in range(96):  # 4 s of video
        sink.write(frame(i, pts=i / FPS))
        if i % 24 == 23:
            n, times = decodable(out)  # a second reader while the sink is still open
            written.append(i + 1)
            counts.append(n)
            prefixes.append(times)
    # It plays during the run, trailing the writer by about one fragment (0.5 s = 12 frames) and
    # the encoder's delay (its look-ahead and frame threads; bounded generously here).
    assert all(n > 0 for n in counts)
    assert counts == sorted(set(counts))
    assert all(w - n <= 12 + 36 for w, n in zip(written, counts, strict=True))
    for times in prefixes:  # what a reader saw mid-run is the start of the video, in order
        assert times == pytest.approx([i / FPS for i in range(len(times))], abs=1e-4)
    assert sink.close() == (str(out), 96)

    info = probe_video(out)
    assert (info.frames, info.codec, info.pix_fmt) == (96, "h264", "yuv420p")
    assert info.duration == pytest.approx(4.0, abs=0.05)
    assert b"moof" in out.read_bytes()  # fragmented
    keys = keyframe_times(out)
    assert keys[0] == 0.0 and max(np.diff(keys)) <= 0.5 + 1e-6
    images, _ = decode(out)
    first = frame(0).image.astype(np.int16)
    assert np.abs(images[0].astype(np.int16) - first).mean() < 6


def test_keyframes_follow_time_not_frame_count_when_frames_are_sparse(tmp_path: Path) -> None:
    """A camera sampled down to 2 fps while its nominal rate says 30: still a keyframe (and so a
    fragment) every interval of video time."""
    out = tmp_path / "sparse.mp4"
    with Mp4Sink(out, fps=30, live=True, keyframe_interval=1.0) as sink:
        for i in range(12):
            sink.write(frame(i, pts=i * 0.5))
    keys = keyframe_times(out)
    assert keys == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])


def test_live_ctrl_c_leaves_both_complete_with_equal_counts(tmp_path: Path) -> None:
    mp4, jsonl = tmp_path / "cam.mp4", tmp_path / "cam.jsonl"
    with (
        pytest.raises(KeyboardInterrupt),
        Mp4Sink(mp4, fps=FPS, live=True) as video,
        JsonlSink(jsonl, live=True) as log,
    ):
        for i in range(100):
            if i == 41:
                raise KeyboardInterrupt
            video.write(frame(i, pts=i / FPS))
            log.write(frame(i, pts=i / FPS), make_result(1))
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == probe_video(mp4).frames == 41
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["mp4", "jsonl"])
def test_live_refuses_an_existing_file_and_replaces_it_whole_with_overwrite(
    tmp_path: Path, kind: str
) -> None:
    make = {"mp4": Mp4Sink, "jsonl": JsonlSink}[kind]
    out = tmp_path / f"mine.{kind}"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        make(out, live=True)
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []

    kept = tmp_path / "other-name"
    os.link(out, kept)  # the old file under another name must survive: replaced, not truncated
    sink = make(out, overwrite=True, live=True)
    assert out.read_bytes() == b""
    if kind == "mp4":
        sink.write(frame(0))
    else:
        sink.write(frame(0), make_result(0))
    assert sink.close() == (str(out), 1)
    assert kept.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["mp4", "jsonl"])
def test_live_sink_that_got_nothing_leaves_no_file_but_spares_a_stranger(
    tmp_path: Path, kind: str
) -> None:
    make = {"mp4": Mp4Sink, "jsonl": JsonlSink}[kind]
    sink = make(tmp_path / f"empty.{kind}", live=True)
    assert sink.close() is None
    assert list(tmp_path.iterdir()) == []

    out = tmp_path / f"taken.{kind}"
    sink = make(out, live=True)
    out.unlink()
    out.write_bytes(b"someone else's")  # put there while the sink was open
    assert sink.close() is None
    assert out.read_bytes() == b"someone else's"


def test_bad_keyframe_interval_is_a_one_line_error(tmp_path: Path) -> None:
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ConfigError, match="keyframe_interval"):
            Mp4Sink(tmp_path / "x.mp4", live=True, keyframe_interval=bad)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = sys.argv[3:]
    from sink_helpers import frame, make_result
    from streamdet.sinks import JsonlSink, Mp4Sink

    with Mp4Sink(sys.argv[1], fps=24, live=True, keyframe_interval=0.25) as video, \\
            JsonlSink(sys.argv[2], live=True) as log:
        for i in range(100000):
            video.write(frame(i, pts=i / 24))
            log.write(frame(i, pts=i / 24), make_result(i % 3))
            time.sleep(0.002)
    """
)


def test_a_hard_kill_leaves_both_usable_up_to_the_last_piece(tmp_path: Path) -> None:
    """SIGKILL (no handler, no close) in the middle of a live run."""
    mp4, jsonl = tmp_path / "killed.mp4", tmp_path / "killed.jsonl"
    here = Path(__file__).resolve().parent
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(mp4), str(jsonl), str(here), str(here.parent)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 60:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    text = jsonl.read_text(encoding="utf-8")
    assert text.endswith("\n")  # never half a line
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) >= 60
    assert [r["frame"] for r in lines] == list(range(len(lines)))
    n, times = decodable(mp4)
    # Every frame but those of the fragment being filled and those still in the encoder.
    assert len(lines) - 48 <= n <= len(lines)
    assert times == pytest.approx([i / 24 for i in range(n)], abs=1e-4)
    assert leftovers(tmp_path) == []


def ffprobe_frames(path: Path) -> tuple[int, str]:
    """Frames the ffmpeg CLI's prober counts in ``path``, and what it complained about."""
    command = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
    command += ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return int(done.stdout.strip() or 0), done.stderr.strip()


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="the ffmpeg CLI is not installed")
def test_ffprobe_reads_a_live_mp4_cleanly_mid_run_and_after_close(tmp_path: Path) -> None:
    out = tmp_path / "probe.mp4"
    sink = Mp4Sink(out, fps=FPS, live=True, keyframe_interval=0.5)
    for i in range(60):
        sink.write(frame(i, pts=i / FPS))
    mid, complaints = ffprobe_frames(out)
    assert complaints == "" and 0 < mid < 60
    sink.close()
    assert ffprobe_frames(out) == (60, "")


@pytest.mark.gpu
def test_a_live_nvenc_mp4_gets_its_forced_keyframes_and_fragments(tmp_path: Path) -> None:
    """NVENC turns a forced keyframe into a plain I frame unless told otherwise; the live sink
    asks for IDR frames so each starts a fragment. Skipped where NVENC cannot open."""
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("this PyAV build has no h264_nvenc")
    out = tmp_path / "nv.mp4"
    sink = Mp4Sink(out, fps=FPS, codec="h264_nvenc", live=True, keyframe_interval=0.5)
    try:
        sink.write(frame(0, pattern(0, 320, 192), pts=0.0))
    except ConfigError:
        sink.close()
        pytest.skip("NVENC cannot open here (no NVIDIA GPU or driver)")
    for i in range(1, 48):
        sink.write(frame(i, pattern(i, 320, 192), pts=i / FPS))
    mid, _ = decodable(out)
    assert 0 < mid < 48
    assert sink.close() == (str(out), 48)
    assert probe_video(out).frames == 48
    assert keyframe_times(out) == pytest.approx([0.0, 0.5, 1.0, 1.5])
