"""Probing a video: what it really holds."""

from __future__ import annotations

from pathlib import Path

import pytest

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
