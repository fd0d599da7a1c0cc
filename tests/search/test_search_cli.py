"""``streamdet index`` and ``streamdet search`` from the command line."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import TARGET, Indexed

from streamdet.cli import main


def test_index_then_search_prints_ranked_lines_and_json(indexed_source: Indexed, tmp_path, capsys):
    folder = tmp_path / "idx"
    cache = ["--cache-dir", str(indexed_source.cache)]
    assert main(["index", str(indexed_source.videos), "-o", str(folder), *cache]) == 0
    summary = capsys.readouterr().out
    assert "indexed 2, skipped 0 unchanged, failed 0" in summary and "440 rows" in summary
    assert main(["index", str(indexed_source.video), "-o", str(folder), *cache]) == 0
    assert "indexed 0, skipped 1 unchanged" in capsys.readouterr().out

    assert main(["search", str(folder), TARGET.prompt, "-k", "2", *cache]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    file, time, score, box = lines[0].split("  ")
    assert file == str(indexed_source.video.resolve()) and TARGET.covers(float(time))
    assert 0 < float(score) <= 1 and len(box.split(",")) == 4

    sheet = tmp_path / "hits.html"
    args = ["search", str(folder), TARGET.prompt, "-k", "3", "--json", "--sheet", str(sheet)]
    assert main([*args, *cache]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 3
    for r in records:
        assert {"file", "time", "score", "box"} <= set(r)
        assert isinstance(r["time"], float) and len(r["box"]) == 4
    assert records[0]["file"] == file and records[0]["time"] == float(time)
    assert sheet.read_text().count("<figure>") == 3


def test_one_bad_file_is_one_line_and_the_others_are_indexed(indexed_source, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(indexed_source.video, folder / "a.mp4")
    (folder / "b.mp4").write_bytes(b"\x00" * 100)
    argv = ["index", str(folder), "-o", str(tmp_path / "idx")]
    assert main([*argv, "--cache-dir", str(indexed_source.cache)]) == 1
    out, err = capsys.readouterr()
    assert "indexed 1, skipped 0 unchanged, failed 1" in out
    lines = err.strip().splitlines()
    assert lines[0].startswith("streamdet: skipped: ") and "b.mp4" in lines[0]
    assert lines[-1] == "streamdet: error: 1 of 2 inputs could not be indexed"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "{tmp}/none", "a car"], "index '{tmp}/none' does not exist"),
        (["search", "{video}", "a car"], "is not a streamdet index"),
        (["search", "{index}", " "], "the prompt is empty"),
        (["search", "{index}", "a car", "-k", "0"], "-k must be 1 or more"),
        (["search", "{index}", "a car", "--sheet", "{tmp}/s.gif"], "must end in .png"),
        (["index", "{video}", "-o", "{video}"], "is a file; an index is a folder"),
        (["index", "{tmp}/nothing-*.mp4", "-o", "{tmp}/i"], "matches no video or image files"),
        (["index", "{video}", "-o", "{tmp}/i", "--every", "0"], "every must be a number"),
    ],
)
def test_bad_input_is_one_line(indexed_source: Indexed, tmp_path, capsys, argv, message):
    names = {"tmp": tmp_path, "video": indexed_source.video, "index": indexed_source.index}
    argv = [a.format(**names) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("streamdet: error: ")
    assert message.format(**names) in err


def test_without_pyarrow_the_error_names_the_extra(indexed_source, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["search", str(indexed_source.index), "a car"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "streamdet: error: indexing and search need pyarrow; install it with "
        'pip install "streamdet[search]"\n'
    )


def test_ray_workers_without_ray_and_a_bad_probe_are_one_line(tmp_path, capsys):
    videos = tmp_path / "v"
    videos.mkdir()
    assert main(["index", str(videos), "-o", str(tmp_path / "i"), "--ray-workers", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ray-workers goes with --ray" in err[0]
    assert main(["search", str(tmp_path / "i"), "a red car", "--probe", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "probe" in err[0]
