"""The front door: folders and patterns expand to their media, and ``open_source`` refuses bad
settings and specs with one-line errors before opening anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamdet.errors import ConfigError, SourceError
from streamdet.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ReconnectPolicy,
    expand_inputs,
    open_source,
)


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
