"""The image sink: the last picture given, in the format of the path's suffix, written on close."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sink_helpers import H, W, frame, leftovers, make_result, pattern

from streamdet.errors import ConfigError, OutputExistsError
from streamdet.sinks import ImageSink


def test_the_last_picture_is_written_as_png_on_close(tmp_path: Path) -> None:
    out = tmp_path / "pic.png"
    drawn = np.full((H, W, 3), 200, np.uint8)
    with ImageSink(out) as sink:
        sink.write(frame(0), make_result(1), pattern(5))
        sink.write(frame(1), make_result(1), drawn)
        assert not out.exists()
    assert sink.close() == (str(out), 1)
    assert np.array_equal(cv2.imread(str(out)), drawn)  # PNG is lossless
    assert leftovers(tmp_path) == []


def test_without_a_picture_the_frame_itself_is_written(tmp_path: Path) -> None:
    out = tmp_path / "pic.jpg"
    with ImageSink(out) as sink:
        sink.write(frame(3))
    written = cv2.imread(str(out)).astype(np.int16)
    assert np.abs(written - pattern(3).astype(np.int16)).mean() < 4  # JPEG: close, not exact


def test_a_suffix_without_an_image_format_and_an_existing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in one of \.png"):
        ImageSink(tmp_path / "pic.gif")
    (tmp_path / "old.png").write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        ImageSink(tmp_path / "old.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]
