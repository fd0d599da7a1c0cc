"""The quality benchmark over several seeds (``streamdet.quality.seeds``): each seed's figures
are the single-seed benchmark's, the means are their means, bad input is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamdet.quality import cli, seeds

pytest.importorskip("pycocotools")

REPO = Path(__file__).resolve().parents[2]


def _common(model: Path, tmp_path: Path) -> list[str]:
    return [
        "--model",
        str(model),
        "--sets",
        "shapes",
        "--kinds",
        "single,multi,negative",
        "--frames",
        "1",
        "--frame-size",
        "160x96",
        "--patch",
        "16",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]


def test_each_seed_is_the_single_seed_benchmark_and_the_means_are_theirs(
    tiny_model_dir, tmp_path, capsys
):
    out = tmp_path / "seeds.json"
    argv = [*_common(tiny_model_dir, tmp_path), "--configs", "calibrated,dense-views1.5+2"]
    argv += ["--train-seeds", "3,4", "--heldout-seeds", "5,4", "--out", str(out)]
    assert seeds.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["seeds"] == {"train": [3, 4], "heldout": [5, 4]}
    assert list(report["configs"]) == ["calibrated", "dense-views1.5+2"]
    for by_generator in report["configs"].values():
        train, heldout = by_generator["train"], by_generator["heldout"]
        assert list(train["seeds"]) == ["3", "4"] and list(heldout["seeds"]) == ["5", "4"]
        values = [r["ap50"] for r in train["seeds"].values()]
        assert train["mean_ap50"] == pytest.approx(sum(values) / 2, abs=1e-4)
        assert train["min_ap50"] == min(values) and train["max_ap50"] == max(values)
        assert by_generator["gap_ap50"] == pytest.approx(
            train["mean_ap50"] - heldout["mean_ap50"], abs=1e-4
        )
        # seed 4 ran on both generators: its gap is the single-seed benchmark's, on its own
        paired = by_generator["paired_gap_ap50"]
        assert list(paired) == ["4"]
        assert paired["4"] == pytest.approx(
            train["seeds"]["4"]["ap50"] - heldout["seeds"]["4"]["ap50"], abs=1e-4
        )
        for r in [*train["seeds"].values(), *heldout["seeds"].values()]:
            assert r["true_boxes"] > 0 and r["negative_frames"] > 0
            assert 0.0 <= r["ap50"] <= 1.0 and r["false_boxes_per_frame"] >= 0.0
    # seed 4 of the training generator, run alone by the single-seed benchmark: the same figures
    single = tmp_path / "single.json"
    argv = [*_common(tiny_model_dir, tmp_path), "--configs", "calibrated", "--videos", "0"]
    argv += ["--generator", "train", "--seed", "4", "--out", str(single)]
    capsys.readouterr()
    assert cli.main(argv) == 0
    one = json.loads(single.read_text())["generators"]["train"]["configs"]["calibrated"]
    mine = report["configs"]["calibrated"]["train"]["seeds"]["4"]
    for key in ("ap50", "ap50_95", "false_boxes_per_frame", "false_boxes"):
        assert mine[key] == one[key], key


def test_the_table_lists_every_seed_and_the_gap(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "seeds.json"
    argv = [*_common(tiny_model_dir, tmp_path), "--configs", "calibrated"]
    argv += ["--train-seeds", "1,2", "--heldout-seeds", "2,3", "--out", str(out)]
    assert seeds.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| calibrated | heldout | 2: " in printed and ", 3: " in printed
    assert "| calibrated | gap (train - held-out) |" in printed
    assert "| calibrated | gap, same seed | 2: " in printed  # only seed 2 ran on both


def test_one_generator_alone_has_no_gap(tiny_model_dir, tmp_path):
    out = tmp_path / "seeds.json"
    argv = [*_common(tiny_model_dir, tmp_path), "--configs", "calibrated"]
    argv += ["--train-seeds", "", "--heldout-seeds", "7", "--out", str(out)]
    assert seeds.main(argv) == 0
    config = json.loads(out.read_text())["configs"]["calibrated"]
    assert list(config) == ["heldout"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train-seeds", "1,x"], "expected comma-separated whole numbers"),
        (["--heldout-seeds", "2,2"], "seeds must be distinct"),
        (["--train-seeds", "", "--heldout-seeds", ""], "no seeds"),
        (["--frames", "0"], "--frames must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        seeds.parse_args(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_the_script_refuses_an_unknown_setting_in_one_line(tiny_model_dir, tmp_path):
    out = tmp_path / "never.json"
    argv = ["--model", str(tiny_model_dir), "--configs", "calibrated,no-such", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "quality_seeds.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "unknown config no-such" in line
    assert not out.exists()
