"""Sinks: the MP4 decodes to what was written, timestamps survive, and every way a run ends leaves
either a finished file at the target path or nothing (never a half-written file, never a clobbered
one). Videos are tiny (96x64, a dozen frames) so the whole file runs in a few seconds on CPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
from video_helpers import pattern as _pattern

from streamdet.errors import ConfigError, FrameError, StreamdetError
from streamdet.types import Detections, FrameResult
from streamdet.video.sinks import (
    JsonlWriter,
    Mp4Writer,
    OutputExistsError,
    OutputFolderError,
    VideoInfo,
    VideoReadError,
    WriterClosedError,
    probe_video,
)

W, H = 96, 64


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    return _pattern(i, width, height)


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """All frames (BGR) and their presentation times in seconds."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return [f.to_ndarray(format="bgr24") for f in frames], [float(f.time) for f in frames]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


def write_video(path: Path, n: int, **kwargs: object) -> Path | None:
    with Mp4Writer(path, **kwargs) as writer:
        for i in range(n):
            writer.write(pattern(i))
    return writer.close()


def make_result(n: int) -> FrameResult:
    xyxy = np.array([[1, 2, 30, 40], [10.25, 5, 90, 60]], np.float32)[:n]
    return FrameResult(
        detections=Detections(
            xyxy=xyxy,
            confidence=np.array([0.9, 0.31234567], np.float32)[:n],
            class_id=np.array([0, 1], np.int64)[:n],
        ),
        heatmaps=np.zeros((2, 2, 3), np.float32),
        prompts=("a cat", "a dog"),
        frame_shape=(H, W),
        patch=32,
    )


# --- MP4 content -----------------------------------------------------------------------------


def test_mp4_is_h264_yuv420p_with_frames_rate_size_and_pixels_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    n = 12
    assert write_video(out, n, fps=24) == out

    info = probe_video(out)
    assert isinstance(info, VideoInfo)
    assert (info.frames, info.codec, info.pix_fmt) == (n, "h264", "yuv420p")
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(n / 24, abs=1e-3)

    frames, times = decode(out)
    assert times == pytest.approx([i / 24 for i in range(n)], abs=1e-3)
    for i in (0, n // 2, n - 1):
        err = np.abs(frames[i].astype(np.int16) - pattern(i).astype(np.int16)).mean()
        assert err < 4, f"frame {i}: mean abs error {err:.2f} levels"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("size", "padded"), [((95, 63), (96, 64)), ((1, 1), (2, 2))])
def test_odd_sizes_are_padded_by_one_repeated_pixel(
    tmp_path: Path, size: tuple[int, int], padded: tuple[int, int]
) -> None:
    w, h = size
    out = tmp_path / "odd.mp4"
    with Mp4Writer(out, fps=10) as writer:
        for i in range(3):
            writer.write(pattern(i, w, h))

    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (*padded, 3)
    frame = decode(out)[0][0].astype(np.int16)
    assert frame.shape == (padded[1], padded[0], 3)
    src = pattern(0, w, h).astype(np.int16)
    assert np.abs(frame[:h, :w] - src).mean() < 6
    # The added column/row repeats the edge, so it stays close to the last real one.
    assert np.abs(frame[:, -1] - frame[:, -2]).mean() < 6
    assert np.abs(frame[-1] - frame[-2]).mean() < 6


@pytest.mark.parametrize("start", [0.0, 5.0])
def test_variable_frame_rate_timestamps_are_kept_from_zero(tmp_path: Path, start: float) -> None:
    pts = [0.0, 0.1, 0.15, 0.4, 0.41, 1.0]
    out = tmp_path / "vfr.mp4"
    with Mp4Writer(out, fps=24) as writer:
        for i, t in enumerate(pts):
            writer.write(pattern(i), pts_seconds=start + t)
    assert writer.timestamps_repaired == 0

    _, times = decode(out)
    assert times == pytest.approx(pts, abs=1e-3)  # the video starts at 0, intervals kept
    assert probe_video(out).frames == len(pts)


def test_non_increasing_timestamps_are_moved_one_interval_on(tmp_path: Path) -> None:
    out = tmp_path / "dup.mp4"
    with Mp4Writer(out, fps=10) as writer:
        for i, t in enumerate([0.0, 0.1, 0.1, 0.05, 0.15]):  # a duplicate, then a step back
            writer.write(pattern(i), pts_seconds=t)
    assert writer.timestamps_repaired == 2

    _, times = decode(out)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-3)


def test_moov_atom_comes_before_mdat(tmp_path: Path) -> None:
    out = tmp_path / "fast.mp4"
    write_video(out, 4)
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


# --- crash semantics -------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_inside_with_keeps_a_playable_file_of_the_frames_written(
    tmp_path: Path, exc: type[BaseException]
) -> None:
    out = tmp_path / "crash.mp4"
    with pytest.raises(exc), Mp4Writer(out, fps=24) as writer:
        for i in range(20):
            if i == 7:
                raise exc("stop")
            writer.write(pattern(i))

    assert writer.frames_written == 7
    assert probe_video(out).frames == 7
    assert len(decode(out)[0]) == 7
    assert leftovers(tmp_path) == []


def test_zero_frames_leave_no_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.mp4"
    writer = Mp4Writer(out)
    assert writer.partial_path.exists()  # created up front: the writability check
    assert writer.close() is None
    with pytest.raises(RuntimeError), Mp4Writer(tmp_path / "empty2.mp4"):
        raise RuntimeError("before any frame")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "mine.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="overwrite=True") as info:
        Mp4Writer(out)
    assert isinstance(info.value, FileExistsError)
    assert "\n" not in str(info.value)
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []

    write_video(out, 3, overwrite=True)
    assert probe_video(out).frames == 3


def test_file_that_appears_while_writing_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / "race.mp4"
    writer = Mp4Writer(out)
    writer.write(pattern(0))
    out.write_bytes(b"someone else")
    with pytest.raises(OutputExistsError, match="kept as"):
        writer.close()
    assert out.read_bytes() == b"someone else"
    assert probe_video(writer.partial_path).frames == 1


def test_missing_folder_fails_before_anything(tmp_path: Path) -> None:
    with pytest.raises(OutputFolderError, match="does not exist"):
        Mp4Writer(tmp_path / "nope" / "out.mp4")
    with pytest.raises(OutputFolderError, match="is a folder"):
        JsonlWriter(tmp_path)
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
            Mp4Writer(folder / "out.mp4")
        assert isinstance(info.value, OSError)
        with pytest.raises(OutputFolderError):
            JsonlWriter(folder / "out.jsonl")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_frame_size_change_is_refused_and_earlier_frames_kept(tmp_path: Path) -> None:
    out = tmp_path / "size.mp4"
    with pytest.raises(FrameError, match="96x64, but got 64x64"), Mp4Writer(out) as writer:
        writer.write(pattern(0))
        writer.write(pattern(1))
        writer.write(pattern(2, 64, 64))
    assert probe_video(out).frames == 2


def test_unknown_codec_names_the_available_h264_encoders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'no-such-codec'.*libx264"):
        Mp4Writer(tmp_path / "x.mp4", codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_and_closed_writer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fps"):
        Mp4Writer(tmp_path / "x.mp4", fps=0)
    with pytest.raises(ConfigError, match="crf"):
        Mp4Writer(tmp_path / "x.mp4", crf=99)
    writer = Mp4Writer(tmp_path / "x.mp4")
    with pytest.raises(FrameError, match="finite"):
        writer.write(pattern(0), pts_seconds=float("nan"))
    writer.write(pattern(0))
    assert writer.close() == writer.close() == tmp_path / "x.mp4"
    with pytest.raises(WriterClosedError):
        writer.write(pattern(1))


# --- JSON lines ------------------------------------------------------------------------------


def test_jsonl_lines_have_exact_fields_and_are_flushed_as_written(tmp_path: Path) -> None:
    out = tmp_path / "dets.jsonl"
    with JsonlWriter(out) as writer:
        writer.write(0, 0.0, make_result(2))
        writer.write(1, 0.04, make_result(0))
        writer.write(2, None, make_result(1))
        live = writer.partial_path.read_text(encoding="utf-8").splitlines()
        assert len(live) == 3  # a tail -f on the partial file sees every line at once
        assert not out.exists()
    assert writer.lines_written == 3

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
        JsonlWriter(out)
    assert out.read_text(encoding="utf-8") == "old\n"
    with JsonlWriter(out, overwrite=True) as writer:
        writer.write(0, 0.0, make_result(1))
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1

    empty = JsonlWriter(tmp_path / "none.jsonl")
    assert empty.close() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dets.jsonl"]


def test_ctrl_c_leaves_mp4_and_jsonl_finalised_with_equal_counts(tmp_path: Path) -> None:
    mp4, jsonl = tmp_path / "run.mp4", tmp_path / "run.jsonl"
    with (
        pytest.raises(KeyboardInterrupt),
        Mp4Writer(mp4, fps=24) as video,
        JsonlWriter(jsonl) as log,
    ):
        for i in range(30):
            if i == 9:
                raise KeyboardInterrupt
            video.write(pattern(i), pts_seconds=i / 24)
            log.write(i, i / 24, make_result(i % 3))

    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == probe_video(mp4).frames == 9
    assert leftovers(tmp_path) == []


# --- probing ---------------------------------------------------------------------------------


def test_probe_refuses_missing_and_non_video_files(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoReadError) as info:
        probe_video(junk)
    assert isinstance(info.value, StreamdetError) and isinstance(info.value, ValueError)


def test_a_hardware_encoder_that_cannot_open_is_a_one_line_config_error(tmp_path):
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("this PyAV build has no h264_nvenc")
    target = tmp_path / "nv.mp4"
    writer = Mp4Writer(target, codec="h264_nvenc")
    try:
        writer.write(pattern(0))
    except ConfigError as err:
        assert "h264_nvenc" in str(err) and "libx264" in str(err)
    else:
        writer.close()
        pytest.skip("NVENC works on this machine")
    writer.close()
    assert not target.exists() and leftovers(tmp_path) == []
