"""The MP4 sink: the file decodes to what was written, timestamps survive, odd and changing sizes
are handled, and bad settings fail before anything is encoded."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest
from sink_helpers import H, W, decode, frame, leftovers, make_result, pattern

from streamdet.errors import ConfigError, FrameError, FrameTypeError, WriterClosedError
from streamdet.sinks import Mp4Sink, VideoInfo, probe_video


def write_video(path: Path, n: int, **kwargs: object) -> tuple[str, int] | None:
    with Mp4Sink(path, **kwargs) as sink:  # type: ignore[arg-type]
        for i in range(n):
            sink.write(frame(i))
    return sink.close()


def test_mp4_is_h264_yuv420p_with_frames_rate_size_and_pixels_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    n = 12
    assert write_video(out, n, fps=24) == (str(out), n)

    info = probe_video(out)
    assert isinstance(info, VideoInfo)
    assert (info.frames, info.codec, info.pix_fmt, info.rotation) == (n, "h264", "yuv420p", 0)
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(24)
    assert info.duration == pytest.approx(n / 24, abs=1e-3)

    frames, times = decode(out)
    assert times == pytest.approx([i / 24 for i in range(n)], abs=1e-3)
    for i in (0, n // 2, n - 1):
        err = np.abs(frames[i].astype(np.int16) - pattern(i).astype(np.int16)).mean()
        assert err < 4, f"frame {i}: mean abs error {err:.2f} levels"
    assert leftovers(tmp_path) == []


def test_the_rendered_picture_is_written_not_the_frame(tmp_path: Path) -> None:
    out = tmp_path / "drawn.mp4"
    drawn = np.zeros((H, W, 3), np.uint8)
    with Mp4Sink(out, fps=10) as sink:
        assert sink.needs_picture
        sink.write(frame(0), make_result(1), drawn)
    assert decode(out)[0][0].max() < 8  # the black picture, not the frame's pattern


@pytest.mark.parametrize(("size", "padded"), [((95, 63), (96, 64)), ((1, 1), (2, 2))])
def test_odd_sizes_are_padded_by_one_repeated_pixel(
    tmp_path: Path, size: tuple[int, int], padded: tuple[int, int]
) -> None:
    w, h = size
    out = tmp_path / "odd.mp4"
    with Mp4Sink(out, fps=10) as sink:
        for i in range(3):
            sink.write(frame(i, pattern(i, w, h)))

    info = probe_video(out)
    assert (info.width, info.height, info.frames) == (*padded, 3)
    first = decode(out)[0][0].astype(np.int16)
    assert first.shape == (padded[1], padded[0], 3)
    src = pattern(0, w, h).astype(np.int16)
    assert np.abs(first[:h, :w] - src).mean() < 6
    # The added column/row repeats the edge, so it stays close to the last real one.
    assert np.abs(first[:, -1] - first[:, -2]).mean() < 6
    assert np.abs(first[-1] - first[-2]).mean() < 6


@pytest.mark.parametrize("start", [0.0, 5.0])
def test_variable_frame_rate_timestamps_are_kept_from_zero(tmp_path: Path, start: float) -> None:
    pts = [0.0, 0.1, 0.15, 0.4, 0.41, 1.0]
    out = tmp_path / "vfr.mp4"
    with Mp4Sink(out, fps=24) as sink:
        for i, t in enumerate(pts):
            sink.write(frame(i, pts=start + t))
    assert sink.timestamps_repaired == 0

    _, times = decode(out)
    assert times == pytest.approx(pts, abs=1e-3)  # the video starts at 0, intervals kept
    assert probe_video(out).frames == len(pts)


def test_non_increasing_timestamps_are_moved_one_interval_on(tmp_path: Path) -> None:
    out = tmp_path / "dup.mp4"
    with Mp4Sink(out, fps=10) as sink:
        for i, t in enumerate([0.0, 0.1, 0.1, 0.05, 0.15]):  # a duplicate, then a step back
            sink.write(frame(i, pts=t))
    assert sink.timestamps_repaired == 2

    _, times = decode(out)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-3)


@pytest.mark.parametrize(
    ("fps", "rate"), [(None, 30), (29.97002997, 30000 / 1001), (12, 12), (12.5, 12.5)]
)
def test_the_nominal_rate_follows_fps_and_a_missing_one_is_30(
    tmp_path: Path, fps: float | None, rate: float
) -> None:
    out = tmp_path / "rate.mp4"
    write_video(out, 3, fps=fps)
    assert probe_video(out).fps == pytest.approx(rate, rel=1e-6)
    assert decode(out)[1] == pytest.approx([i / rate for i in range(3)], abs=1e-3)


def test_moov_atom_comes_before_mdat(tmp_path: Path) -> None:
    out = tmp_path / "fast.mp4"
    write_video(out, 4)
    data = out.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_a_frame_size_change_is_resized_to_the_first_size_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera that reconnected at another resolution must not break the video mid-run."""
    out = tmp_path / "size.mp4"
    with caplog.at_level(logging.WARNING, logger="streamdet.sinks"), Mp4Sink(out) as sink:
        sink.write(frame(0))
        sink.write(frame(1, pattern(1, 64, 64)))
        sink.write(frame(2, pattern(2, 48, 80)))
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (3, W, H)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "from 96x64 to 64x64" in warnings[0]


def test_unknown_codec_names_the_available_h264_encoders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'no-such-codec'.*libx264"):
        Mp4Sink(tmp_path / "x.mp4", codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_frames_and_a_closed_sink(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fps"):
        Mp4Sink(tmp_path / "x.mp4", fps=0)
    with pytest.raises(ConfigError, match="crf"):
        Mp4Sink(tmp_path / "x.mp4", crf=99)
    sink = Mp4Sink(tmp_path / "x.mp4")
    with pytest.raises(FrameError, match="finite"):
        sink.write(frame(0, pts=float("nan")))
    with pytest.raises(FrameTypeError, match="Frame"):
        sink.write(pattern(0))  # type: ignore[arg-type]
    sink.write(frame(0))
    assert sink.close() == sink.close() == (str(tmp_path / "x.mp4"), 1)
    with pytest.raises(WriterClosedError):
        sink.write(frame(1))


def test_a_hardware_encoder_that_cannot_open_is_a_one_line_config_error(tmp_path: Path) -> None:
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("this PyAV build has no h264_nvenc")
    target = tmp_path / "nv.mp4"
    sink = Mp4Sink(target, codec="h264_nvenc")
    try:
        sink.write(frame(0))
    except ConfigError as err:
        assert "h264_nvenc" in str(err) and "libx264" in str(err)
    else:
        sink.close()
        pytest.skip("NVENC works on this machine")
    sink.close()
    assert not target.exists() and leftovers(tmp_path) == []
