"""Probing a video: what it really holds, as a player shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_helpers import make_video

from streamdet.errors import StreamdetError, VideoReadError
from streamdet.sinks import probe_video


def test_probe_refuses_missing_and_non_video_files(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoReadError) as info:
        probe_video(junk)
    assert isinstance(info.value, StreamdetError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(("rotation", "size"), [(0, (80, 32)), (90, (32, 80)), (180, (80, 32))])
def test_probe_reports_the_displayed_size_and_the_rotation(
    tmp_path: Path, rotation: int, size: tuple[int, int]
) -> None:
    path = make_video(tmp_path / "v.mp4", 3, size=(80, 32), rotation=rotation)
    info = probe_video(path)
    assert (info.frames, info.width, info.height, info.rotation) == (3, *size, rotation)
