"""Generated videos with known appearance times, indexed once per module with the built-in model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from streamdet.synth.timeline import Appearance, TimedVideo, timed_video, write_video

#: The red circle is on screen from 4 s to 7 s of the 10 s video (5 fps).
TARGET = Appearance("a red circle", 4.0, 7.0)
OTHER = ("a blue star", "a green triangle")


@dataclass(frozen=True)
class Indexed:
    """A folder of videos and an index of them (the index is the test's own copy)."""

    videos: Path
    video: Path
    truth: TimedVideo
    index: Path
    cache: Path


def make_timed(path: Path, seed: int, appearances: tuple[Appearance, ...]) -> TimedVideo:
    video = timed_video(
        np.random.default_rng(seed), appearances, seconds=10, fps=5, size="large", exclude=OTHER
    )
    write_video(path, [s.image for s in video.scenes], video.fps)
    return video


@pytest.fixture(scope="module")
def indexed_source(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    """Two videos (the target in one of them) indexed into a folder, built once per module."""
    from streamdet.search import VideoIndex

    root = tmp_path_factory.mktemp("search")
    videos = root / "videos"
    videos.mkdir()
    truth = make_timed(videos / "target.mp4", 1, (TARGET,))
    make_timed(videos / "other.mp4", 2, (Appearance(OTHER[0], 1.0, 4.0),))
    cache = root / "cache"
    VideoIndex(root / "index", cache_dir=str(cache)).add(videos)
    return Indexed(videos, videos / "target.mp4", truth, root / "index", cache)


@pytest.fixture
def indexed(indexed_source: Indexed, tmp_path: Path) -> Indexed:
    """A private copy of the videos and index, for tests that change them."""
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(indexed_source.videos, videos)
    index = tmp_path / "index"
    # the index names its videos by absolute path: re-index the copy (fast) instead of copying
    from streamdet.search import VideoIndex

    VideoIndex(index, cache_dir=str(indexed_source.cache)).add(videos)
    return Indexed(videos, videos / "target.mp4", indexed_source.truth, index, indexed_source.cache)
