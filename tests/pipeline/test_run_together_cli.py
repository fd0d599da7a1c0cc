"""``streamdet run SRC1 SRC2 ...`` (and ``--sources FILE``): several sources at once through one
model, one MP4 and JSONL per source, the same detections as running each alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_run_cli import make_video, read_jsonl, run_cli

from streamdet.sinks import probe_video


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    (tmp_path / "in").mkdir()
    return [make_video(tmp_path / "in" / f"cam{i}.mp4", n=8 + 4 * i) for i in range(3)]


def test_several_sources_run_together_with_one_output_set_each(clips, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli(
        *map(str, clips), "-p", "a red circle", "-o", f"{out}/", "--jsonl", f"{out}/",
        "--precision", "fp32",
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "3 sources at once through one model" in err
    for i, clip in enumerate(clips):
        n = 8 + 4 * i
        assert probe_video(out / clip.name).frames == n
        together = read_jsonl(out / f"cam{i}.jsonl")
        assert [r["frame"] for r in together] == list(range(n))
        alone = tmp_path / f"alone{i}.jsonl"
        assert (
            run_cli(str(clip), "-p", "a red circle", "--jsonl", str(alone), "--precision", "fp32")
            == 0
        )
        assert [len(r["detections"]) for r in together] == [
            len(r["detections"]) for r in read_jsonl(alone)
        ]
        assert sum(len(r["detections"]) for r in together) > 0


def test_sources_from_a_file_and_a_bad_one_skipped(clips, tmp_path, capsys):
    listing = tmp_path / "cams.txt"
    listing.write_text(f"# site A\n{clips[1]}\n\n{tmp_path / 'missing.mp4'}\n")
    out = tmp_path / "out"
    code = run_cli(
        str(clips[0]), "--sources", str(listing), "-p", "a red circle", "--jsonl", f"{out}/"
    )
    err = capsys.readouterr().err
    assert code == 1 and "missing.mp4" in err
    assert len(read_jsonl(out / "cam0.jsonl")) == 8 and len(read_jsonl(out / "cam1.jsonl")) == 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (lambda t, c: [str(c[0]), str(t / "in")], "is a folder or pattern"),
        (lambda t, c: [str(c[0]), str(c[0])], "given twice"),
        (lambda t, c: [str(c[0]), str(c[1]), "--jsonl", "-"], "stdout"),
        (lambda t, c: [str(c[0]), "--sources", str(t / "none.txt")], "cannot read the sources"),
    ],
)
def test_bad_sets_of_sources_get_one_line(extra, message, clips, tmp_path, capsys):
    args = extra(tmp_path, clips)
    if "--jsonl" not in args:
        args += ["--jsonl", f"{tmp_path / 'o'}/"]
    assert run_cli(*args, "-p", "a red circle") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
