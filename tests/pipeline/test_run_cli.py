"""``streamdet run`` end to end with the built-in model on small generated H.264 videos: outputs
that agree with the input, one output per input for folders, Ctrl-C, and every bad input refused
with one line, a non-zero exit, no output file, and the input untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamdet.cli import main
from streamdet.sinks import Mp4Sink, probe_video
from streamdet.types import Frame

W, H = 160, 96


def picture(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A grey street with a red disc moving right."""
    img = np.full((h, w, 3), 110, np.uint8)
    x = 20 + 4 * i
    yy, xx = np.mgrid[0:h, 0:w]
    img[(xx - x) ** 2 + (yy - h // 2) ** 2 < 15**2] = (30, 30, 220)
    return img


def make_video(path: Path, n: int = 12, fps: float = 12, pts=None, w: int = W, h: int = H):
    with Mp4Sink(path, fps=fps) as sink:
        for i in range(n):
            sink.write(Frame(picture(i, w, h), i, None if pts is None else pts[i], 0.0))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_cli(*args: str) -> int:
    return main(["run", *args])


@pytest.fixture
def clip(tmp_path) -> Path:
    (tmp_path / "in").mkdir()
    return make_video(tmp_path / "in" / "clip.mp4")


def test_a_file_becomes_an_mp4_and_a_jsonl_with_every_frame(clip, tmp_path, capsys):
    out, jl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    before = clip.read_bytes()
    code = run_cli(
        str(clip), "-p", "a red circle", "-p", "a car", "-o", str(out), "--jsonl", str(jl)
    )
    assert code == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height, info.codec) == (12, W, H, "h264")
    assert info.fps == pytest.approx(12, rel=1e-3)
    lines = read_jsonl(jl)
    assert [r["frame"] for r in lines] == list(range(12))
    assert [r["pts"] for r in lines] == pytest.approx([i / 12 for i in range(12)], abs=1e-4)
    for r in lines:
        for d in r["detections"]:
            assert d["label"] in ("a red circle", "a car") and d["prompt_index"] in (0, 1)
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H and 0 <= d["score"] <= 1
    err = capsys.readouterr().err
    assert "12 frames" in err and f"wrote {out} (12 frames)" in err
    assert clip.read_bytes() == before


def test_variable_frame_rate_timestamps_survive(tmp_path):
    pts = [0.0, 0.1, 0.15, 0.4, 0.45, 1.0]
    clip = make_video(tmp_path / "vfr.mp4", n=6, pts=pts)
    out, jl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    assert run_cli(str(clip), "-p", "a car", "-o", str(out), "--jsonl", str(jl)) == 0
    assert [r["pts"] for r in read_jsonl(jl)] == pytest.approx(pts, abs=1e-3)
    import av

    with av.open(str(out)) as c:
        times = [float(f.time) for f in c.decode(video=0)]
    assert times == pytest.approx(pts, abs=1e-3)


def test_odd_sized_gray_video_is_handled(tmp_path):
    clip = tmp_path / "odd.mp4"
    import av

    with av.open(str(clip), "w") as c:  # 33x17 gray frames need a codec without 4:2:0 limits
        s = c.add_stream("libx264rgb", rate=10)
        s.width, s.height, s.pix_fmt = 33, 17, "bgr24"
        for i in range(4):
            g = np.full((17, 33), 40 * i, np.uint8)
            f = av.VideoFrame.from_ndarray(np.dstack([g, g, g]), format="bgr24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "o.mp4"
    assert run_cli(str(clip), "-p", "a car", "-o", str(out)) == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (4, 34, 18)


def test_a_folder_gives_one_output_per_input_and_skips_what_cannot_be_read(tmp_path, capsys):
    src = tmp_path / "clips"
    src.mkdir()
    make_video(src / "a.mp4", n=3)
    make_video(src / "b.mov", n=2)
    import cv2

    cv2.imwrite(str(src / "c.png"), picture(0))
    (src / "d.mp4").write_text("this is not a video\n")
    out = tmp_path / "out"
    code = run_cli(str(src), "-p", "a car", "-o", str(out), "--jsonl", str(out))
    assert code == 1
    assert probe_video(out / "a.mp4").frames == 3
    assert probe_video(out / "b.mp4").frames == 2
    assert (out / "c.png").is_file() and len(read_jsonl(out / "c.jsonl")) == 1
    assert len(read_jsonl(out / "a.jsonl")) == 3
    assert not (out / "d.mp4").exists() and not (out / "d.jsonl").exists()
    err = capsys.readouterr().err
    assert "1 of 4 inputs could not be read" in err and "d.mp4" in err


def test_jsonl_to_stdout_and_a_json_report(clip, tmp_path, capsys):
    report = tmp_path / "report.json"
    args = ["-p", "a car", "--jsonl", "-", "--report", str(report), "--stride", "2"]
    assert run_cli(str(clip), *args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in lines] == list(range(12))
    (rep,) = json.loads(report.read_text())
    assert rep["frames_processed"] == 12 and rep["frames_dropped"] == 0
    assert {"encode", "render", "write", "latency"} <= set(rep["stages_ms"])
    # the resolved configuration, with where each value came from
    config = rep["config"]
    assert config["grid"]["stride"] == 2 and config["sources"]["stride"] == "you"
    assert config["grid"]["patch"] == 32 and config["sources"]["patch"] == "model"


def test_prompts_from_a_file(clip, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# find\na red circle\n")
    jl = tmp_path / "o.jsonl"
    assert run_cli(str(clip), "--prompts-file", str(prompts), "--jsonl", str(jl)) == 0
    labels = {d["label"] for r in read_jsonl(jl) for d in r["detections"]}
    assert labels <= {"a red circle"}


def _bad_cases(tmp_path: Path, clip: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("hello\n")
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[:200])
    out = str(tmp_path / "o.mp4")
    return {
        "missing file": ([str(tmp_path / "nope.mp4"), "-p", "a car", "-o", out], "does not exist"),
        "empty file": ([str(empty), "-p", "a car", "-o", out], "empty"),
        "text named .mp4": ([str(text), "-p", "a car", "-o", out], "not a readable video"),
        "truncated to nothing": ([str(truncated), "-p", "a car", "-o", out], "cut.mp4"),
        "unsupported scheme": (["ftp://host/x.mp4", "-p", "a car", "-o", out], "rtsp"),
        "no such camera": (["97", "-p", "a car", "-o", out], "camera 97"),
        "unreachable stream": (
            ["rtsp://u:secret@127.0.0.1:9/x", "-p", "a", "-o", out],
            "127.0.0.1",
        ),
        "empty prompt": ([str(clip), "-p", "  ", "-o", out], "prompt"),
        "no prompt": ([str(clip), "-o", out], "prompt"),
        "absurd prompt": ([str(clip), "-p", "x" * 5000, "-o", out], "prompt"),
        "patch 0": ([str(clip), "-p", "a car", "--patch", "0", "-o", out], "patch"),
        "negative window": ([str(clip), "-p", "a car", "--window", "-2", "-o", out], "window"),
        "unknown device": ([str(clip), "-p", "a car", "--device", "tpu", "-o", out], "tpu"),
        "output is input": ([str(clip), "-p", "a car", "-o", str(clip)], "is the input"),
        "unwritable folder": ([str(clip), "-p", "a", "-o", "/proc/streamdet/o.mp4"], "/proc"),
        "nothing to write": ([str(clip), "-p", "a car"], "nothing to write"),
        "no display": ([str(clip), "-p", "a car", "--show"], "--show"),
        "bad max fps": ([str(clip), "-p", "a car", "--max-fps", "-1", "-o", out], "--max-fps"),
        "unknown hardware decoder": (
            [str(clip), "-p", "a car", "--hwaccel", "nvdecc", "-o", out],
            "--hwaccel",
        ),
    }


CASES = [
    "missing file",
    "empty file",
    "text named .mp4",
    "truncated to nothing",
    "unsupported scheme",
    "no such camera",
    "unreachable stream",
    "empty prompt",
    "no prompt",
    "absurd prompt",
    "patch 0",
    "negative window",
    "unknown device",
    "output is input",
    "unwritable folder",
    "nothing to write",
    "no display",
    "bad max fps",
    "unknown hardware decoder",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line_and_exit_1_and_writes_nothing(
    case, clip, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args, expected = _bad_cases(tmp_path, clip)[case]
    before = clip.read_bytes()
    t0 = time.monotonic()
    code = run_cli(*args)
    err = capsys.readouterr().err
    assert code == 1, err
    assert time.monotonic() - t0 < 20
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("streamdet: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err and "secret" not in err
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    assert clip.read_bytes() == before


def test_an_existing_output_is_kept_unless_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    assert run_cli(str(clip), "-p", "a car", "-o", str(out)) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert run_cli(str(clip), "-p", "a car", "-o", str(out), "--overwrite") == 0
    assert probe_video(out).frames == 12


def test_ctrl_c_leaves_a_playable_mp4_that_matches_its_jsonl(tmp_path):
    """A real SIGINT to a real process in the middle of a long file."""
    clip = make_video(tmp_path / "long.mp4", n=400, w=320, h=192)
    out, jl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdet",
            "run",
            str(clip),
            "-p",
            "a car",
            "-o",
            str(out),
            "--jsonl",
            str(jl),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        partial = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = [p for p in tmp_path.iterdir() if p.name.startswith(".o.jsonl.")]
            if found and len(found[0].read_text().splitlines()) >= 5:
                partial = found[0]
                break
            time.sleep(0.1)
        assert partial is not None, "the run never got going"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    n = len(read_jsonl(jl))
    assert 5 <= n < 400
    assert probe_video(out).frames == n
    assert f"wrote {out} ({n} frames)" in err and "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("one-pixel.png", np.full((1, 1, 3), 200, np.uint8)),
        ("gray.png", np.full((40, 61), 90, np.uint8)),
        ("alpha.png", np.full((40, 61, 4), 90, np.uint8)),
        ("strip.png", np.full((3, 700, 3), 90, np.uint8)),
    ],
)
def test_odd_images_are_handled(name, image, tmp_path, capsys):
    import cv2

    src = tmp_path / name
    cv2.imwrite(str(src), image)
    out, jl = tmp_path / f"o-{name}", tmp_path / "o.jsonl"
    assert run_cli(str(src), "-p", "a car", "-o", str(out), "--jsonl", str(jl)) == 0
    drawn = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert drawn.shape == (*image.shape[:2], 3)
    (line,) = read_jsonl(jl)
    assert line["frame"] == 0 and line["pts"] == 0.0


def test_int8_precision_runs_the_same_frames(clip, tmp_path):
    pytest.importorskip("onnx")
    jl = tmp_path / "o.jsonl"
    code = run_cli(
        str(clip), "-p", "a car", "--jsonl", str(jl), "--precision", "int8",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert code == 0 and [r["frame"] for r in read_jsonl(jl)] == list(range(12))
    # the int8 frame graph of the one-pass method (the built-in model's), made once and cached
    assert list((tmp_path / "cache" / "frames").glob("*/frame-naclip-int8.onnx"))


def test_fast_setting_uses_fewer_windows_and_still_writes_every_frame(clip, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import streamdet.detect.detector as detector_module

    made = []

    class Recording(detector_module.Detector):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(detector_module, "Detector", Recording)
    jl = tmp_path / "o.jsonl"
    args = [str(clip), "-p", "a car", "--cache-dir", str(tmp_path / "c"), "--overwrite"]
    windows = ("--method", "windows")
    assert run_cli(*args, "--jsonl", str(jl), *windows) == 0
    assert run_cli(*args, "--jsonl", str(jl), "--fast") == 0
    assert [r["frame"] for r in read_jsonl(jl)] == list(range(12))
    coarse_flags = ("--no-dense", "--no-frame-sizes", "--no-verify")
    assert run_cli(*args, "--jsonl", str(jl), *windows, *coarse_flags) == 0
    default, fast, coarse = made
    # the built-in model's windows-method settings (its by_method suggestions)
    assert default.config.scoring.dense and default.config.grid.scales == (2,)
    assert default.config.boxes.peak_ratio == 0.95 and default.config.sources["dense"] == "model"
    assert (fast.config.scoring.method, fast.config.grid.token_scale) == ("dense", 1.5)
    assert fast.model.encoders.precision == "int8"
    # the pixels the image tower sees: one frame's worth against every window's
    (fh, fw), side = fast.frame_grid(H, W).input_shape, default.model.image_size
    assert fh * fw * 10 < len(default.grid(H, W)) * side * side
    assert not coarse.config.scoring.dense
    assert default.config.scoring.frame_sizes and not coarse.config.scoring.frame_sizes
    assert (
        default.config.verify.enabled
        and fast.config.verify.enabled
        and not coarse.config.verify.enabled
    )
    # on a GPU --fast runs fp16 (int8 is CPU-only); here the GPU falls back to the CPU
    assert run_cli(*args, "--jsonl", str(jl), "--fast", "--device", "cuda", "--allow-fallback") == 0
    assert made[-1].model.encoders.precision == "fp16"
    assert [r["frame"] for r in read_jsonl(jl)] == list(range(12))


def test_a_phone_video_is_detected_and_written_upright(tmp_path):
    """A 160x96 video whose stream says "turn me 90 degrees counter-clockwise" (as a phone held
    upright writes it): the MP4 comes out 96x160 and upright, untagged, and the boxes are in the
    upright frame's coordinates."""
    from video_helpers import make_video as make_tagged_video

    def disc_top_left(i: int, w: int, h: int) -> np.ndarray:
        img = np.full((h, w, 3), 110, np.uint8)
        yy, xx = np.mgrid[0:h, 0:w]
        img[(xx - 30) ** 2 + (yy - 25) ** 2 < 18**2] = (30, 30, 220)
        return img

    clip = make_tagged_video(
        tmp_path / "phone.mp4", 4, fps=12, size=(W, H), rotation=90, picture=disc_top_left
    )
    out, jl = tmp_path / "o.mp4", tmp_path / "o.jsonl"
    assert run_cli(str(clip), "-p", "a red circle", "-o", str(out), "--jsonl", str(jl)) == 0
    info = probe_video(out)
    assert (info.frames, info.width, info.height, info.rotation) == (4, H, W, 0)
    # Turned counter-clockwise, the disc's centre (30, 25) moves to (25, W - 1 - 30).
    cx, cy = 25, W - 1 - 30
    import av

    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert first[cy, cx, 2] > 170 and first[cy, cx, 0] < 90  # red where a viewer sees the disc
    assert abs(int(first[25, 30, 2]) - 110) < 25  # grey where the stored picture had it
    boxes = [d["box"] for r in read_jsonl(jl) for d in r["detections"]]
    assert boxes, "the red disc was not found in any frame"
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 < x2 <= H and 0 <= y1 < y2 <= W
        assert abs((x1 + x2) / 2 - cx) < 12 and abs((y1 + y2) / 2 - cy) < 12
