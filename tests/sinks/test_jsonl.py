"""The JSONL sink: exact fields per line, flushed as written, to a file or to standard output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sink_helpers import frame, leftovers, make_result

from streamdet.errors import FrameTypeError, OutputExistsError, WriterClosedError
from streamdet.sinks import JsonlSink


def test_jsonl_lines_have_exact_fields_and_are_flushed_as_written(tmp_path: Path) -> None:
    out = tmp_path / "dets.jsonl"
    with JsonlSink(out) as sink:
        assert not sink.needs_picture
        sink.write(frame(0, pts=0.0), make_result(2), None)
        sink.write(frame(1, pts=0.04), make_result(0))
        sink.write(frame(2, pts=None), make_result(1))
        assert sink.partial_path is not None
        live = sink.partial_path.read_text(encoding="utf-8").splitlines()
        assert len(live) == 3  # a tail -f on the partial file sees every line at once
        assert not out.exists()
    assert sink.lines_written == 3
    assert sink.close() == (str(out), 3)

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [set(r) for r in lines] == [{"frame", "pts", "detections"}] * 3
    assert [r["frame"] for r in lines] == [0, 1, 2]
    assert [r["pts"] for r in lines] == [0.0, 0.04, None]
    assert [len(r["detections"]) for r in lines] == [2, 0, 1]
    det = lines[0]["detections"][1]
    assert set(det) == {"label", "prompt_index", "box", "score"}
    want = {"label": "a dog", "prompt_index": 1, "box": [10.2, 5.0, 90.0, 60.0], "score": 0.3123}
    assert det == want
    assert all(type(v) is float for v in det["box"]) and type(det["score"]) is float
    assert type(det["prompt_index"]) is int
    assert leftovers(tmp_path) == []


def test_jsonl_no_overwrite_and_zero_lines(tmp_path: Path) -> None:
    out = tmp_path / "dets.jsonl"
    out.write_text("old\n", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        JsonlSink(out)
    assert out.read_text(encoding="utf-8") == "old\n"
    with JsonlSink(out, overwrite=True) as sink:
        sink.write(frame(0, pts=0.0), make_result(1))
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1

    empty = JsonlSink(tmp_path / "none.jsonl")
    assert empty.close() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dets.jsonl"]


def test_dash_writes_to_standard_output(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonlSink("-")
    assert sink.path is None and sink.partial_path is None
    sink.write(frame(4, pts=0.5), make_result(1))
    sink.write(frame(5, pts=0.625), make_result(0))
    assert sink.close() == ("<stdout>", 2)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["frame"], r["pts"], len(r["detections"])) for r in lines] == [
        (4, 0.5, 1),
        (5, 0.625, 0),
    ]
    assert JsonlSink("-").close() is None  # nothing written: nothing to report


def test_bad_results_and_a_closed_sink_are_refused(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "x.jsonl")
    with pytest.raises(FrameTypeError, match="FrameResult"):
        sink.write(frame(0), {"boxes": []})  # type: ignore[arg-type]
    sink.write(frame(0), make_result(0))
    sink.close()
    with pytest.raises(WriterClosedError):
        sink.write(frame(1), make_result(0))
