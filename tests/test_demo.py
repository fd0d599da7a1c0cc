"""``streamdet demo`` end to end on the tiny test model: an MP4 and a JSONL that agree."""

from __future__ import annotations

import json

import pytest

from streamdet.cli import main
from streamdet.sinks import probe_video


def test_demo_writes_a_playable_mp4_and_one_json_line_per_frame(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--frames", "6", "--model", str(tiny_model_dir)]
    # threshold 0: the random tiny model boxes every prompt on every frame, so the per-box checks
    # below always have boxes to check
    settings = ["--threshold", "0", "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, *settings]) == 0
    info = probe_video(out / "demo.mp4")
    assert (info.frames, info.codec, info.pix_fmt) == (6, "h264", "yuv420p")
    assert (info.width, info.height) == (640, 360)
    lines = [json.loads(line) for line in (out / "demo.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(6))
    assert lines[1]["pts"] == pytest.approx(1 / 12, abs=1e-6)
    for line in lines:
        labels = {d["label"] for d in line["detections"]}
        assert labels == {"a red car", "a green car", "a person"}
        for d in line["detections"]:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360 and 0 <= d["score"] <= 1
    assert "wrote" in capsys.readouterr().out


def test_demo_refuses_to_overwrite_an_earlier_run(tiny_model_dir, tmp_path, capsys):
    args = [
        "demo",
        "-o",
        str(tmp_path),
        "--frames",
        "2",
        "--model",
        str(tiny_model_dir),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    before = (tmp_path / "demo.mp4").read_bytes()
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("streamdet: error:") and err.count("\n") == 1
    assert (tmp_path / "demo.mp4").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0


def test_demo_rejects_zero_frames(tiny_model_dir, tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--frames", "0", "--model", str(tiny_model_dir)]) == 1
    assert "at least one frame" in capsys.readouterr().err


def test_the_demo_report_counts_the_boxes_its_jsonl_holds(tmp_path):
    """The demo runs through the pipeline (generated source, runner, sinks): its report's frame
    and box counts are those of the files it wrote. With the built-in model, which finds the
    clip's cars and people."""
    from collections import Counter

    from streamdet.demo import DEMO_PROMPTS, run_demo

    report = run_demo(tmp_path / "demo", n_frames=3, size=(180, 320), cache_dir=tmp_path / "c")
    lines = [json.loads(line) for line in report.jsonl.read_text().splitlines()]
    counted = Counter(d["label"] for line in lines for d in line["detections"])
    assert report.frames == len(lines) == probe_video(report.video).frames == 3
    assert report.detections == {p: counted[p] for p in DEMO_PROMPTS}
    assert sum(report.detections.values()) > 0
    assert report.seconds > 0 and report.provider == "CPUExecutionProvider"
