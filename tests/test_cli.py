"""The command line: export, detect, classify; exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from streamdet.cli import main


@pytest.fixture()
def image_file(tmp_path):
    img = np.full((120, 200, 3), 90, np.uint8)
    cv2.circle(img, (60, 60), 30, (0, 0, 255), -1)
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), img)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("streamdet: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_export_writes_a_model_that_detect_and_classify_use(
    tiny_hf_dir, tmp_path, image_file, capsys
):
    out = tmp_path / "exported"
    assert main(["export", str(tiny_hf_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "parity vs PyTorch" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["image_size"] == 32 and meta["precision"] == "fp32"

    cache = ["--cache-dir", str(tmp_path / "cache")]
    annotated = tmp_path / "annotated.png"
    assert (
        main(
            [
                "detect",
                str(image_file),
                "-p",
                "a red circle",
                "-p",
                "a dog",
                "--model",
                str(out),
                "--patch",
                "16",
                "-o",
                str(annotated),
                "--heatmap",
                *cache,
            ]
        )
        == 0
    )
    assert "detections in" in capsys.readouterr().out
    assert cv2.imread(str(annotated)).shape == (120, 200, 3)

    assert (
        main(
            [
                "detect",
                str(image_file),
                "-p",
                "a red circle",
                "--model",
                str(out),
                "--json",
                "--patch",
                "16",
                "--scoring",
                "reference",
                *cache,
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert len(record["detections"]) == 1  # the reference rule: one box per prompt
    assert record["detections"][0]["label"] == "a red circle"

    assert (
        main(
            [
                "classify",
                str(image_file),
                "--labels",
                "a red circle,a blue star, a car",
                "--model",
                str(out),
                "--json",
                "-k",
                "2",
                *cache,
            ]
        )
        == 0
    )
    preds = json.loads(capsys.readouterr().out)
    assert len(preds) == 2 and preds[0]["probability"] >= preds[1]["probability"]
    assert {p["label"] for p in preds} <= {"a red circle", "a blue star", "a car"}

    assert main(["classify", str(image_file), "--imagenet", "--model", str(out), *cache]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(line.rstrip().endswith("%") for line in lines)


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "missing.png", "-p", "a cat"],
        ["classify", "missing.png", "--labels", "a,b"],
        ["detect", "{image}", "-p", "a cat", "--model", "/no/such/model"],
        ["detect", "{image}", "-p", "a cat", "--model", "{tiny}", "--patch", "0"],
        ["detect", "{image}", "-p", "", "--model", "{tiny}"],
        ["detect", "{image}", "-p", "a cat", "--model", "{tiny}", "--device", "quantum"],
        ["detect", "{image}", "-p", "a cat", "--model", "{tiny}", "--device", "cuda"],
        [
            "detect",
            "{image}",
            "-p",
            "a cat",
            "--model",
            "{tiny}",
            "--backend",
            "torch",
            "--precision",
            "int8",
        ],
        ["detect", "{image}", "-p", "a cat", "--model", "{tiny}", "-o", "{image}"],
        ["detect", "{image}", "--model", "{tiny}"],
        ["detect", "{text}", "-p", "a cat", "--model", "{tiny}"],
        ["classify", "{image}", "--model", "{tiny}"],
        ["classify", "{image}", "--labels", "only one", "--model", "{tiny}"],
        ["export", "{tiny}", "-o", "{tmp}/x"],
        ["export", "someone/not-a-real-model", "-o", "{tmp}/y"],
    ],
)
def test_bad_input_gets_one_line_and_exit_1(
    argv, tiny_model_dir, image_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    before = image_file.read_bytes()
    subs = {
        "{image}": str(image_file),
        "{tiny}": str(tiny_model_dir),
        "{tmp}": str(tmp_path),
        "{text}": str(text),
    }
    for key, value in subs.items():
        argv = [a.replace(key, value) for a in argv]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 1
    _one_error_line(capsys)
    assert image_file.read_bytes() == before  # the input is never touched


def test_detect_runs_on_the_torch_backend(tiny_hf_dir, image_file, tmp_path, capsys):
    argv = ["detect", str(image_file), "-p", "a red circle", "--model", str(tiny_hf_dir)]
    argv += ["--patch", "16", "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--backend", "torch"]) == 0
    assert "windows, torch-cpu)" in capsys.readouterr().out
    assert main([*argv, "--backend", "onnxruntime"]) == 0
    assert "windows, CPUExecutionProvider)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--backend", "tensorflow"])
    assert stop.value.code == 2 and "invalid choice: 'tensorflow'" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "streamdet", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("streamdet ")
