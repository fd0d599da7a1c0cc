"""Local files: videos and still images open (or fail) the way the pipeline expects, and a
phone video's display rotation comes out upright. Videos are made here with PyAV, tiny (a few
dozen frames of 64x48), so the file runs in a few seconds on CPU.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import struct
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from video_helpers import (
    check_frame,
    corner_block,
    fingerprint,
    increasing,
    make_video,
    mean_error,
    read_all,
)
from video_helpers import pattern as _pattern

from streamdet.errors import SourceError
from streamdet.sources import hardware_decoder, hardware_decoders, open_source

W, H = 64, 48


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    return _pattern(i, width, height)


# --- video files -----------------------------------------------------------------------------


def test_file_gives_every_frame_with_exact_pts_fps_and_count(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 12, fps=24)
    before = fingerprint(path)
    with open_source(path) as source:
        assert (source.name, source.live, source.fps) == (str(path), False, 24.0)
        assert (source.frame_count, source.size) == (12, (W, H))
        frames = read_all(source)
    assert [f.index for f in frames] == list(range(12))
    assert [f.pts for f in frames] == pytest.approx([i / 24 for i in range(12)], abs=1e-6)
    for i, frame in enumerate(frames):
        check_frame(frame, W, H)
        assert mean_error(frame.image, pattern(i)) < 4
    assert all(a.captured_at <= b.captured_at for a, b in itertools.pairwise(frames))
    assert fingerprint(path) == before  # read-only: bytes and mtime unchanged


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_pts_are_kept_from_the_stream_start(
    tmp_path: Path, suffix: str
) -> None:
    times = [5.0, 5.1, 5.15, 5.4, 5.41, 6.0]  # starts at 5 s: pts count from the stream start
    path = make_video(tmp_path / f"vfr{suffix}", times=times, fps=10)
    with open_source(path) as source:
        frames = read_all(source)
    assert [f.pts for f in frames] == pytest.approx([t - 5.0 for t in times], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [
        ("odd.mp4", "libx264", "yuv444p"),
        ("gray.mkv", "ffv1", "gray"),
        ("odd.avi", "mpeg4", "yuv420p"),
    ],
)
def test_odd_sizes_and_gray_videos_come_out_bgr(
    tmp_path: Path, name: str, codec: str, pix_fmt: str
) -> None:
    tb = Fraction(1, 24)  # MPEG-4 part 2 allows no time base finer than 1/65535
    path = make_video(tmp_path / name, 5, size=(33, 17), codec=codec, pix_fmt=pix_fmt, time_base=tb)
    with open_source(path) as source:
        assert source.size == (33, 17)
        frames = read_all(source)
    assert len(frames) == 5
    for frame in frames:
        check_frame(frame, 33, 17)
    if pix_fmt == "gray":
        image = frames[2].image
        assert np.array_equal(image[:, :, 0], image[:, :, 1])
        assert np.array_equal(image[:, :, 1], image[:, :, 2])
        assert mean_error(image[:, :, 1], pattern(2, 33, 17)[:, :, 1]) < 2  # ffv1 is lossless


def mp4_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: type -> (offset, size)."""
    boxes, offset = {}, 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes[kind.decode("latin-1")] = (offset, size)
        if size < 8:
            break
        offset += size
    return boxes


def test_truncated_file_yields_what_decodes_then_warns_and_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = make_video(tmp_path / "full.mp4", 40, faststart=True)  # index first, so a cut reads
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="streamdet.sources"), open_source(cut) as source:
        assert source.frame_count == 40  # what the header says
        frames = read_all(source)
    assert 0 < len(frames) < 40
    assert [f.index for f in frames] == list(range(len(frames)))
    assert mean_error(frames[-1].image, pattern(len(frames) - 1)) < 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"'{cut}' is damaged after frame {len(frames)}" in warnings[0]


def test_truncated_mkv_without_frame_count_is_noticed_from_its_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = make_video(tmp_path / "full.mkv", 60).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="streamdet.sources"), open_source(cut) as source:
        frames = read_all(source)
    assert 0 < len(frames) < 60
    assert any("is damaged after frame" in r.getMessage() for r in caplog.records)


def test_file_where_nothing_decodes_is_an_error(tmp_path: Path) -> None:
    data = make_video(tmp_path / "full.mp4", 20, faststart=True).read_bytes()
    mdat_offset, _ = mp4_boxes(data)["mdat"]
    header_only = tmp_path / "header-only.mp4"
    header_only.write_bytes(data[: mdat_offset + 16])  # the index, but no frame data
    with open_source(header_only) as source, pytest.raises(SourceError, match="no frame"):
        read_all(source)


def test_mp4_cut_before_its_index_cannot_be_opened(tmp_path: Path) -> None:
    data = make_video(tmp_path / "full.mp4", 20).read_bytes()  # index (moov) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"'.*cut\.mp4' is not a readable video \("):
        open_source(cut)


def test_corrupt_packets_are_skipped_and_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = bytearray(make_video(tmp_path / "full.mp4", 40, faststart=True).read_bytes())
    mdat_offset, mdat_size = mp4_boxes(bytes(data))["mdat"]
    middle = mdat_offset + mdat_size // 2
    data[middle : middle + 600] = np.random.default_rng(0).integers(0, 256, 600, np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="streamdet.sources"), open_source(bad) as source:
        frames = read_all(source)
    assert 20 <= len(frames) <= 40  # frames after the damage still come
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if len(frames) < 40:  # FFmpeg may also conceal the damage and decode every frame
        assert len(warnings) == 1
        assert f"'{bad}' is damaged after frame" in warnings[0]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.mp4", r"'.*missing\.mp4' does not exist"),
        (lambda p: p, "is a folder; pass it as a folder input"),
        (lambda p: _write(p / "empty.mp4", b""), r"is empty \(0 bytes\)"),
        (lambda p: _write(p / "notes.mp4", b"just some text\n" * 50), "is not a readable video"),
        (lambda p: _write(p / "broken.png", b"not a png"), "is not a readable image"),
        (lambda p: _write(p / "data.bin", b"\x00\x01" * 500), "is not a readable video"),
    ],
    ids=["missing", "folder", "empty", "text-named-mp4", "bad-image", "unknown-suffix"],
)
def test_unreadable_paths_raise_one_line_source_errors(tmp_path: Path, make, match: str) -> None:
    with pytest.raises(SourceError, match=match) as info:
        open_source(make(tmp_path))
    assert type(info.value) is SourceError  # a bad path, not a lost stream or another error
    assert "\n" not in str(info.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_file_without_video_stream_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(SourceError, match="has no video stream"):
        open_source(path)


def test_stop_event_ends_a_file_read_early(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 30)
    stop = threading.Event()
    got = []
    with open_source(path) as source:
        for frame in source.frames(stop):
            got.append(frame.index)
            if len(got) == 3:
                stop.set()
    assert got == [0, 1, 2]


def test_close_is_idempotent_and_a_closed_source_refuses_to_read(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 5)
    source = open_source(path)
    source.close()
    source.close()
    assert source.closed
    with pytest.raises(SourceError, match="is closed"):
        read_all(source)


def test_frames_can_be_read_again_from_the_start(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", 6)
    with open_source(path) as source:
        first, second = read_all(source), read_all(source)
    assert [f.index for f in first] == [f.index for f in second] == list(range(6))


def test_real_clip_opens_with_its_size(media_dir: Path) -> None:
    path = media_dir / "dashcam-highway-1280x720.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    before = fingerprint(path)
    with open_source(path) as source:
        assert source.size == (1280, 720)
        assert source.fps is not None and source.fps > 0
        frames = []
        for frame in source.frames(threading.Event()):
            frames.append(frame)
            if len(frames) == 10:
                break
    assert len(frames) == 10
    for frame in frames:
        check_frame(frame, 1280, 720)
    assert increasing([f.pts for f in frames])
    assert fingerprint(path) == before


# --- hardware decoding -----------------------------------------------------------------------


def _cuda_decoding_starts(path: Path) -> bool:
    try:
        open_source(path, hwaccel="cuda").close()
    except SourceError:
        return False
    return True


def test_hardware_decoders_are_the_builds_names() -> None:
    names = hardware_decoders()
    assert isinstance(names, tuple) and all(isinstance(n, str) and n for n in names)
    assert hardware_decoder(None) is None


def test_unknown_hardware_decoder_is_refused_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="'nvdecc' is not one this PyAV/FFmpeg build offers"):
        open_source(tmp_path / "not-even-there.mp4", hwaccel="nvdecc")


def test_hardware_decoder_that_cannot_start_is_one_line_not_a_silent_cpu_fallback(
    tmp_path: Path,
) -> None:
    if "cuda" not in hardware_decoders():
        pytest.skip("this PyAV build has no cuda decoder type")
    video = make_video(tmp_path / "clip.mp4", 6)
    if _cuda_decoding_starts(video):
        pytest.skip("NVDEC works here (the GPU test covers it)")
    with pytest.raises(SourceError) as info:
        open_source(video, hwaccel="cuda")
    message = str(info.value)
    assert "hardware decoding (cuda) cannot start" in message and "drop --hwaccel" in message
    assert "\n" not in message
    # A damaged file is reported as such, not blamed on the decoder; images ignore hwaccel.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[:200])
    with pytest.raises(SourceError, match="is not a readable video"):
        open_source(cut, hwaccel="cuda")
    image = tmp_path / "still.png"
    assert cv2.imwrite(str(image), pattern(0))
    with open_source(image, hwaccel="cuda") as source:
        assert len(read_all(source)) == 1


@pytest.mark.gpu
@pytest.mark.parametrize("rotation", [None, 90])
def test_nvdec_gives_the_frames_the_cpu_decoder_gives(tmp_path: Path, rotation: int | None) -> None:
    """Also upright: the display rotation travels with NVDEC's frames to the host."""
    video = make_video(tmp_path / "clip.mp4", 12, size=(256, 144), rotation=rotation)
    if not _cuda_decoding_starts(video):
        pytest.skip("no NVDEC here (no NVIDIA GPU or driver)")
    with open_source(video) as cpu, open_source(video, hwaccel="cuda") as gpu:
        assert cpu.size == gpu.size == ((144, 256) if rotation else (256, 144))
        a, b = read_all(cpu), read_all(gpu)
    assert [f.pts for f in a] == [f.pts for f in b] and len(a) == 12
    assert all(x.image.shape == y.image.shape for x, y in zip(a, b, strict=True))
    assert max(mean_error(x.image, y.image) for x, y in zip(a, b, strict=True)) < 2.0


# --- still images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channels"), [("color.png", 3), ("gray.png", 1), ("alpha.png", 4), ("photo.jpg", 3)]
)
def test_still_image_is_one_bgr_frame_at_zero(tmp_path: Path, name: str, channels: int) -> None:
    bgr = pattern(0)
    image = {1: bgr[:, :, 1], 3: bgr, 4: np.dstack([bgr, np.full((H, W), 128, np.uint8)])}
    path = tmp_path / name
    assert cv2.imwrite(str(path), image[channels])
    before = fingerprint(path)
    with open_source(path) as source:
        assert (source.live, source.fps, source.frame_count, source.size) == (
            False,
            None,
            1,
            (W, H),
        )
        frames = read_all(source)
    assert len(frames) == 1
    frame = frames[0]
    check_frame(frame, W, H)
    assert (frame.index, frame.pts) == (0, 0.0)
    expected = cv2.cvtColor(bgr[:, :, 1], cv2.COLOR_GRAY2BGR) if channels == 1 else bgr
    assert mean_error(frame.image, expected) < (3 if name.endswith(".jpg") else 0.01)
    assert fingerprint(path) == before


# --- display rotation (phone videos) --------------------------------------------------------


@pytest.mark.parametrize(
    ("rotation", "corner"),
    [(90, "bottom-left"), (180, "bottom-right"), (-90, "top-right"), (270, "top-right")],
)
def test_a_rotation_tagged_video_comes_out_upright(
    tmp_path: Path, rotation: int, corner: str
) -> None:
    """The stream stores 64x48 pictures with a red block top-left and a display rotation
    (counter-clockwise degrees, as a phone writes it): the frames are what a player shows."""
    path = make_video(tmp_path / "phone.mp4", 4, rotation=rotation, picture=corner_block)
    upright = np.rot90(corner_block(0, W, H), round(rotation / 90) % 4)  # counter-clockwise
    height, width = upright.shape[:2]
    with open_source(path) as source:
        assert source.size == (width, height)  # known before any frame is read
        frames = read_all(source)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    for frame in frames:
        check_frame(frame, width, height)
        assert mean_error(frame.image, upright) < 3
    image = frames[0].image
    rows = slice(height - 4, height) if corner.startswith("bottom") else slice(0, 4)
    cols = slice(width - 4, width) if corner.endswith("right") else slice(0, 4)
    assert image[rows, cols, 2].mean() > 200 and image[rows, cols, 0].mean() < 60  # red there
    assert image[height // 2, width // 2].tolist() == pytest.approx([40, 40, 40], abs=4)


def test_quarter_turns_swap_the_size_and_half_turns_keep_it(tmp_path: Path) -> None:
    sizes = {}
    for rotation in (0, 90, 180, 270):
        path = make_video(tmp_path / f"r{rotation}.mp4", 2, size=(80, 32), rotation=rotation)
        with open_source(path) as source:
            sizes[rotation] = (source.size, read_all(source)[0].image.shape[:2])
    assert sizes[0] == sizes[180] == ((80, 32), (32, 80))
    assert sizes[90] == sizes[270] == ((32, 80), (80, 32))


def test_the_legacy_rotate_tag_turns_frames_too(tmp_path: Path) -> None:
    """Older files carry ``rotate=90`` (degrees clockwise) in the stream's tags instead of a
    display matrix; Matroska keeps such tags (as ``ROTATE``)."""
    path = make_video(tmp_path / "tagged.mkv", 2, picture=corner_block, metadata={"rotate": "90"})
    with av.open(str(path)) as container:  # the tag really is there, and no display matrix
        stream = container.streams.video[0]
        assert {k.lower(): v for k, v in stream.metadata.items()}["rotate"] == "90"
        assert next(container.decode(stream)).rotation == 0
    upright = np.rot90(corner_block(0, W, H), -1)  # a clockwise quarter turn
    with open_source(path) as source:
        assert source.size == (H, W)
        frames = read_all(source)
    assert len(frames) == 2
    assert all(mean_error(f.image, upright) < 3 for f in frames)


def _tag_with_ffmpeg(ffmpeg: str, plain: Path, tagged: Path) -> bool:
    """Tag ``plain`` with a 90 degree display rotation, the way this ffmpeg can (FFmpeg 6 and
    later: ``-display_rotation``; before: the ``rotate`` tag, which the MP4 muxer turns into a
    display matrix). True when it worked."""
    for args in (
        ["-display_rotation", "90", "-i", str(plain), "-c", "copy"],
        ["-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
    ):
        done = subprocess.run(
            [ffmpeg, "-v", "error", "-y", *args, str(tagged)], capture_output=True, timeout=60
        )
        if done.returncode == 0:
            return True
    return False


def test_rotation_matches_what_ffmpeg_shows(tmp_path: Path) -> None:
    """ffmpeg turns a tagged video upright when it decodes it (autorotate): our frames must be
    the pictures it shows, whatever sign convention each tool uses inside."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("the ffmpeg command is not installed (.ci/run installs it)")
    plain = make_video(tmp_path / "plain.mp4", 3, picture=corner_block)
    tagged = tmp_path / "tagged.mp4"
    assert _tag_with_ffmpeg(ffmpeg, plain, tagged)
    shown = tmp_path / "shown.png"
    subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(tagged), "-frames:v", "1", str(shown)],
        check=True,
        timeout=60,
    )
    reference = cv2.imread(str(shown))
    assert reference.shape == (W, H, 3)  # ffmpeg shows it turned: 48 wide, 64 high
    with open_source(tagged) as source:
        assert source.size == (H, W)
        frame = read_all(source)[0]
    check_frame(frame, H, W)
    assert mean_error(frame.image, reference) < 3
