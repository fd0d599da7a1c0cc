"""Sources: files, images, folders, patterns, cameras and URLs open (or fail) the way the pipeline
expects. Videos are made here with PyAV, tiny (a few dozen frames of 64x48), so the file runs in a
few seconds on CPU. The RTSP server tests are in test_rtsp.py.
"""

from __future__ import annotations

import hashlib
import http.server
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from video_helpers import pattern as _pattern

from streamdet.errors import ConfigError, SourceError, StreamdetError, StreamLostError
from streamdet.video import sources
from streamdet.video.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ReconnectPolicy,
    Source,
    VideoFrame,
    expand_inputs,
    open_source,
)
from streamdet.video.urls import SUPPORTED_SCHEMES, is_url, mask_url

W, H = 64, 48
TB = Fraction(1, 90000)  # the MPEG clock: exact for 24 fps and for the VFR times below


def pattern(i: int, width: int = W, height: int = H) -> np.ndarray:
    return _pattern(i, width, height)


def make_video(
    path: Path,
    n: int = 12,
    *,
    fps: int = 24,
    size: tuple[int, int] = (W, H),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    times: Sequence[float] | None = None,
    faststart: bool = False,
    time_base: Fraction = TB,
) -> Path:
    """Encode n frames of ``pattern`` at ``fps`` (or at ``times``, seconds) with PyAV."""
    width, height = size
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        stream.codec_context.max_b_frames = 0
        for i in range(n if times is None else len(times)):
            image = pattern(i, width, height)
            if pix_fmt == "gray":
                frame = av.VideoFrame.from_ndarray(image[:, :, 1].copy(), format="gray")
            else:
                frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = round((i / fps if times is None else times[i]) / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def read_all(source: Source, stop: threading.Event | None = None) -> list[VideoFrame]:
    return list(source.frames(stop or threading.Event()))


def increasing(values: Sequence[float | None]) -> bool:
    """Every value is a number and larger than the one before."""
    return all(v is not None for v in values) and all(
        a < b  # type: ignore[operator]
        for a, b in itertools.pairwise(values)
    )


def fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def check_frame(frame: VideoFrame, width: int, height: int) -> None:
    assert frame.image.shape == (height, width, 3)
    assert frame.image.dtype == np.uint8
    assert frame.image.flags.c_contiguous


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
    assert isinstance(info.value, (StreamdetError, ValueError))
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
    names = sources.hardware_decoders()
    assert isinstance(names, tuple) and all(isinstance(n, str) and n for n in names)
    assert sources.hardware_decoder(None) is None


def test_unknown_hardware_decoder_is_refused_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="'nvdecc' is not one this PyAV/FFmpeg build offers"):
        open_source(tmp_path / "not-even-there.mp4", hwaccel="nvdecc")


def test_hardware_decoder_that_cannot_start_is_one_line_not_a_silent_cpu_fallback(
    tmp_path: Path,
) -> None:
    if "cuda" not in sources.hardware_decoders():
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
def test_nvdec_gives_the_frames_the_cpu_decoder_gives(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", 12, size=(256, 144))
    if not _cuda_decoding_starts(video):
        pytest.skip("no NVDEC here (no NVIDIA GPU or driver)")
    with open_source(video) as cpu, open_source(video, hwaccel="cuda") as gpu:
        a, b = read_all(cpu), read_all(gpu)
    assert [f.pts for f in a] == [f.pts for f in b] and len(a) == 12
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


# --- folders and patterns --------------------------------------------------------------------


def test_folder_expands_to_its_media_files_sorted(tmp_path: Path) -> None:
    for name in ["b.mp4", "a.png", "C.MKV", ".hidden.mp4", "notes.txt", "d.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.mp4").mkdir()  # a folder with a video suffix is not a file
    (tmp_path / "sub.mp4" / "inner.mp4").write_bytes(b"x")  # not recursive
    expected = [str(tmp_path / n) for n in ["C.MKV", "a.png", "b.mp4", "d.jpeg"]]
    assert expand_inputs(tmp_path) == expected
    assert expand_inputs(str(tmp_path)) == expected


def test_glob_expands_to_sorted_media_matches(tmp_path: Path) -> None:
    for name in ["clip2.mp4", "clip1.mp4", "clip3.txt", ".clip0.mp4", "other.mp4"]:
        (tmp_path / name).write_bytes(b"x")
    assert expand_inputs(str(tmp_path / "clip*")) == [
        str(tmp_path / "clip1.mp4"),
        str(tmp_path / "clip2.mp4"),
    ]
    assert expand_inputs(str(tmp_path / "clip[2].mp4")) == [str(tmp_path / "clip2.mp4")]


@pytest.mark.parametrize("spec", ["empty-folder", "text-only-folder", "no-match-glob"])
def test_folder_or_glob_without_media_is_an_error(tmp_path: Path, spec: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if spec == "text-only-folder":
        (folder / "a.txt").write_text("x")
    target = str(folder / "*.mp4") if spec == "no-match-glob" else str(folder)
    with pytest.raises(SourceError, match="no video or image files"):
        expand_inputs(target)


@pytest.mark.parametrize(
    "spec", ["rtsp://u:p@cam/x", "0", "3", "/no/such/file.mp4", "relative/clip.mkv"]
)
def test_urls_cameras_and_plain_paths_expand_to_themselves(spec: str) -> None:
    assert expand_inputs(spec) == [spec]


def test_expand_inputs_of_a_camera_int() -> None:
    assert expand_inputs(2) == ["2"]  # type: ignore[arg-type]


def test_suffix_lists_are_lower_case_and_disjoint() -> None:
    assert all(s == s.lower() and s.startswith(".") for s in VIDEO_SUFFIXES + IMAGE_SUFFIXES)
    assert not set(VIDEO_SUFFIXES) & set(IMAGE_SUFFIXES)
    assert {".mp4", ".mkv", ".mov", ".avi", ".webm"} <= set(VIDEO_SUFFIXES)
    assert set(IMAGE_SUFFIXES) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


# --- URLs and masking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rtsp://user:pass@host/x", "rtsp://***@host/x"),
        ("rtsp://user@host:554/x", "rtsp://***@host:554/x"),
        ("rtsp://admin:p@ss:w0rd@10.0.0.5:554/s", "rtsp://***@10.0.0.5:554/s"),
        ("rtsp://u:pa/ss@host/x", "rtsp://***@host/x"),
        ("rtsp://u:pa?ss@host/x", "rtsp://***@host/x"),
        ("rtsp://host:554/stream", "rtsp://host:554/stream"),
        ("https://h/live.m3u8?token=abc&x=1", "https://h/live.m3u8?token=***&x=1"),
        ("http://h/v?PASSWORD=a&pwd=b&api_key=c&auth=d", "http://h/v?PASSWORD=***&pwd=***&api_key=***&auth=***"),
        ("http://h:8/x?email=a@b.com", "http://h:8/x?email=a@b.com"),
        (
            "error opening 'rtsp://a:b@h/1' then 'rtmp://c:d@h/2'",
            "error opening 'rtsp://***@h/1' then 'rtmp://***@h/2'",
        ),
        ("http://h/?next=rtsp://u:p@cam/x", "http://h/?next=rtsp://***@cam/x"),
        ("no url here, key=1 and user:pass@host", "no url here, key=1 and user:pass@host"),
        (r"C:\videos\clip.mp4", r"C:\videos\clip.mp4"),
    ],
)  # fmt: skip
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_is_url() -> None:
    assert is_url("rtsp://h/x") and is_url("HTTPS://h") and is_url("srt://h:9000")
    assert not is_url("clip.mp4") and not is_url("/a/b.mp4") and not is_url(r"C:\a.mp4")
    assert not is_url("C://a.mp4") and not is_url("0")
    schemes = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
    assert schemes == SUPPORTED_SCHEMES


@pytest.mark.parametrize("url", ["ftp://u:secret@h/x.mp4", "file:///tmp/x.mp4", "gopher://h/x"])
def test_unsupported_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(SourceError, match="unsupported stream scheme") as info:
        open_source(url)
    message = str(info.value)
    assert "rtsp, rtsps, rtmp" in message and "secret" not in message


def test_unreachable_url_fails_fast_without_showing_the_password(
    caplog: pytest.LogCaptureFixture, free_tcp_port: int
) -> None:
    url = f"rtsp://user:secret@127.0.0.1:{free_tcp_port}/x"
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as info:
        open_source(url, open_timeout=3)
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert "stream rtsp://***@127.0.0.1:" in message and "cannot be opened" in message
    assert "secret" not in message and "secret" not in caplog.text
    assert not isinstance(info.value, StreamLostError)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_server_that_never_answers_times_out(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer within 1 s"):
        open_source(f"rtsp://u:secret@127.0.0.1:{silent_server}/x", open_timeout=1)
    assert time.monotonic() - started < 4


def test_http_404_is_reported(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(SourceError, match="404"):
            open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4", open_timeout=3)
    finally:
        server.shutdown()
        server.server_close()


def test_file_served_over_http_is_not_live(tmp_path: Path) -> None:
    make_video(tmp_path / "clip.mp4", 10, faststart=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        with open_source(url, open_timeout=5) as source:
            assert (source.live, source.frame_count, source.size) == (False, 10, (W, H))
            frames = read_all(source)
    finally:
        server.shutdown()
        server.server_close()
    assert [f.index for f in frames] == list(range(10))  # none lost to probing, no replay at EOF
    assert [f.pts for f in frames] == pytest.approx([i / 24 for i in range(10)], abs=1e-6)


# --- cameras ---------------------------------------------------------------------------------


def test_missing_camera_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match="camera 97 cannot be opened"):
        open_source(97)
    with pytest.raises(SourceError, match="camera 97 cannot be opened"):
        open_source("97")
    assert time.monotonic() - started < 5


class FakeCapture:
    """Stands in for cv2.VideoCapture: ``frames`` good reads, then every read fails."""

    def __init__(self, frames: int, gray: bool = False) -> None:
        self.left = frames
        self.gray = gray
        self.released = False

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: W, cv2.CAP_PROP_FRAME_HEIGHT: H}[
            prop
        ]

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0:
            return False, None
        self.left -= 1
        image = pattern(self.left)
        return True, (image[:, :, 0].copy() if self.gray else image)

    def release(self) -> None:
        self.released = True


def fake_cameras(
    monkeypatch: pytest.MonkeyPatch, plan: list[FakeCapture | None]
) -> list[FakeCapture | None]:
    """Each open of camera 0 takes the next entry of ``plan`` (None: the open fails)."""
    opened: list[FakeCapture | None] = []

    def fake_open(index: int) -> FakeCapture | None:
        assert index == 0
        capture = plan.pop(0) if plan else None
        opened.append(capture)
        return capture

    monkeypatch.setattr(sources, "_open_camera", fake_open)
    return opened


def test_camera_reconnects_and_keeps_index_and_pts_increasing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opened = fake_cameras(monkeypatch, [FakeCapture(3, gray=True), None, FakeCapture(4)])
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, give_up_after=0.3)
    frames: list[VideoFrame] = []
    with caplog.at_level(logging.INFO, logger="streamdet.sources"):
        source = open_source(0, reconnect=policy)
        assert (source.name, source.live, source.fps) == ("camera 0", True, 30.0)
        assert source.size == (W, H)
        # 3 frames, a failed reopen, 4 frames, then the camera never opens again: give up.
        with source, pytest.raises(StreamLostError, match=r"camera 0 lost .* within 0.3 s"):
            for frame in source.frames(threading.Event()):
                frames.append(frame)
    assert [f.index for f in frames] == list(range(7))
    assert increasing([f.pts for f in frames])
    assert frames[0].pts == 0.0
    for frame in frames:
        check_frame(frame, W, H)  # the gray camera frames came out BGR
    assert all(c is None or c.released for c in opened)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == (
        "camera 0 lost (the camera returned no frame); reconnecting in 0.0 s (attempt 1)"
    )
    assert any("(attempt 2)" in w for w in warnings)  # the failed reopen backed off
    assert any("camera 0 is back" in r.getMessage() for r in caplog.records)


def test_camera_that_does_not_come_back_raises_stream_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, [FakeCapture(2)])
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.1, give_up_after=0.5)
    got = []
    started = time.monotonic()
    with open_source("0", reconnect=policy) as source, pytest.raises(StreamLostError):
        for frame in source.frames(threading.Event()):
            got.append(frame.index)
    assert got == [0, 1]
    assert time.monotonic() - started < 2


def test_stop_during_camera_backoff_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cameras(monkeypatch, [FakeCapture(1)])
    stop = threading.Event()
    with open_source(0, reconnect=ReconnectPolicy(initial_delay=30, max_delay=30)) as source:
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        assert [f.index for f in source.frames(stop)] == [0]
    assert time.monotonic() - started < 2


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_delay": 0},
        {"max_delay": -1},
        {"initial_delay": 2, "max_delay": 1},
        {"give_up_after": float("inf")},
        {"initial_delay": "1"},
    ],
)
def test_bad_reconnect_policy_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]


def test_bad_timeouts_and_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="open_timeout"):
        open_source(tmp_path, open_timeout=0)
    with pytest.raises(SourceError):
        open_source(True)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="camera index must be 0 or more"):
        open_source(-1)
