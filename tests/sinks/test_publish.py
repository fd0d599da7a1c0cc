"""The crash rule of file sinks: every way a run ends leaves either a finished file at the target
path or nothing (never a half-written file, never a clobbered one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sink_helpers import decode, frame, leftovers, make_result

from streamdet.errors import OutputExistsError, OutputFolderError
from streamdet.sinks import ImageSink, JsonlSink, Mp4Sink, ensure_folder, probe_video


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_inside_with_keeps_a_playable_file_of_the_frames_written(
    tmp_path: Path, exc: type[BaseException]
) -> None:
    out = tmp_path / "crash.mp4"
    with pytest.raises(exc), Mp4Sink(out, fps=24) as sink:
        for i in range(20):
            if i == 7:
                raise exc("stop")
            sink.write(frame(i))

    assert sink.frames_written == 7
    assert probe_video(out).frames == 7
    assert len(decode(out)[0]) == 7
    assert leftovers(tmp_path) == []


def test_ctrl_c_leaves_mp4_and_jsonl_finalised_with_equal_counts(tmp_path: Path) -> None:
    mp4, jsonl = tmp_path / "run.mp4", tmp_path / "run.jsonl"
    with (
        pytest.raises(KeyboardInterrupt),
        Mp4Sink(mp4, fps=24) as video,
        JsonlSink(jsonl) as log,
    ):
        for i in range(30):
            if i == 9:
                raise KeyboardInterrupt
            video.write(frame(i, pts=i / 24))
            log.write(frame(i, pts=i / 24), make_result(i % 3))

    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == probe_video(mp4).frames == 9
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["mp4", "jsonl", "png"])
def test_zero_frames_leave_no_file(tmp_path: Path, kind: str) -> None:
    make = {"mp4": Mp4Sink, "jsonl": JsonlSink, "png": ImageSink}[kind]
    sink = make(tmp_path / f"empty.{kind}")
    assert sink.partial_path is not None and sink.partial_path.exists()  # the writability check
    assert sink.close() is None
    with pytest.raises(RuntimeError), make(tmp_path / f"empty2.{kind}"):
        raise RuntimeError("before any frame")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mine.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="overwrite=True") as info:
        Mp4Sink(out)
    assert isinstance(info.value, FileExistsError)
    assert "\n" not in str(info.value)
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []

    with Mp4Sink(out, overwrite=True) as sink:
        for i in range(3):
            sink.write(frame(i))
    assert probe_video(out).frames == 3


def test_file_that_appears_while_writing_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / "race.mp4"
    sink = Mp4Sink(out)
    sink.write(frame(0))
    out.write_bytes(b"someone else")
    with pytest.raises(OutputExistsError, match="kept as"):
        sink.close()
    assert out.read_bytes() == b"someone else"
    assert sink.partial_path is not None and probe_video(sink.partial_path).frames == 1


def test_missing_folder_fails_before_anything(tmp_path: Path) -> None:
    with pytest.raises(OutputFolderError, match="does not exist"):
        Mp4Sink(tmp_path / "nope" / "out.mp4")
    with pytest.raises(OutputFolderError, match="is a folder"):
        JsonlSink(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_fails_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root ignores the mode bits: refuse creation the way a read-only FS does
        real_open = os.open

        def refuse(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
            if Path(path).parent == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, mode)

        monkeypatch.setattr(os, "open", refuse)
    try:
        with pytest.raises(OutputFolderError, match="cannot write") as info:
            Mp4Sink(folder / "out.mp4")
        assert isinstance(info.value, OSError)
        with pytest.raises(OutputFolderError):
            JsonlSink(folder / "out.jsonl")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_ensure_folder_creates_parents_or_says_why_not(tmp_path: Path) -> None:
    ensure_folder(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="cannot create output folder"):
        ensure_folder(tmp_path / "file" / "sub")
