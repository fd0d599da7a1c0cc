"""Generated sources: pictures from a function, read like a file (every frame, pts i/fps)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from video_helpers import check_frame, read_all

from streamdet.errors import ConfigError, FrameError, SourceError
from streamdet.sources import GeneratedSource


def numbered(n: int | None, gray: bool = False):
    """A function giving ``n`` (None: endless) 24x16 pictures whose first pixel is their number."""

    def make():
        for i in range(n) if n is not None else itertools.count():
            image = np.zeros((16, 24) if gray else (16, 24, 3), np.uint8)
            image[0, 0] = i
            yield image

    return make


def test_frames_are_numbered_in_order_with_pts_from_the_rate() -> None:
    source = GeneratedSource(numbered(5), fps=12.5, frame_count=5, name="clip", size=(24, 16))
    assert (source.name, source.live, source.fps, source.frame_count) == ("clip", False, 12.5, 5)
    frames = read_all(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.pts for f in frames] == pytest.approx([i / 12.5 for i in range(5)])
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4]
    for frame in frames:
        check_frame(frame, 24, 16)


def test_frame_count_ends_an_endless_generator_and_reading_again_starts_over() -> None:
    source = GeneratedSource(numbered(None), fps=30, frame_count=3)
    first, second = read_all(source), read_all(source)
    assert [int(f.image[0, 0, 0]) for f in first] == [0, 1, 2]
    assert [int(f.image[0, 0, 0]) for f in second] == [0, 1, 2]


def test_a_shorter_generator_ends_the_read_and_gray_pictures_come_out_bgr() -> None:
    frames = read_all(GeneratedSource(numbered(2, gray=True), fps=10, frame_count=9))
    assert len(frames) == 2
    check_frame(frames[1], 24, 16)
    assert frames[1].image[0, 0].tolist() == [1, 1, 1]


def test_stop_and_close_end_the_read() -> None:
    stop = threading.Event()
    source = GeneratedSource(numbered(None), fps=30)
    got = []
    for frame in source.frames(stop):
        got.append(frame.index)
        if len(got) == 4:
            stop.set()
    assert got == [0, 1, 2, 3]
    source.close()
    with pytest.raises(SourceError, match="is closed"):
        read_all(source)


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), "12", True])
def test_a_bad_rate_is_a_config_error(fps: object) -> None:
    with pytest.raises(ConfigError, match="fps"):
        GeneratedSource(numbered(1), fps=fps)  # type: ignore[arg-type]


def test_a_bad_frame_count_and_a_bad_picture_are_refused() -> None:
    with pytest.raises(ConfigError, match="frame_count"):
        GeneratedSource(numbered(1), fps=10, frame_count=-1)
    bad = GeneratedSource(lambda: iter([np.zeros((4, 4, 3), np.float32)]), fps=10)
    with pytest.raises(FrameError, match="uint8"):
        read_all(bad)
