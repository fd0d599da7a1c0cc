"""Output planning: names per input, and every wrong output refused before any work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamdet.errors import ConfigError, OutputExistsError
from streamdet.pipeline.plan import plan_outputs


def plan(inputs, video=None, jsonl=None, many=False, overwrite=False):
    return plan_outputs(
        [str(i) for i in inputs], video_out=video, jsonl_out=jsonl, many=many, overwrite=overwrite
    )


def test_one_input_writes_the_named_files(tmp_path):
    (p,) = plan(["in.mp4"], str(tmp_path / "out.mp4"), str(tmp_path / "out.jsonl"))
    assert p.video == tmp_path / "out.mp4" and p.jsonl == str(tmp_path / "out.jsonl")


def test_a_folder_output_names_files_after_the_inputs(tmp_path):
    plans = plan(["a/clip1.mov", "a/pic.jpg"], str(tmp_path), str(tmp_path / "j"), many=True)
    assert [p.video.name for p in plans] == ["clip1.mp4", "pic.png"]
    assert [Path(p.jsonl).name for p in plans] == ["clip1.jsonl", "pic.jsonl"]


def test_a_camera_and_a_stream_get_names_without_secrets(tmp_path):
    (cam,) = plan(["0"], str(tmp_path) + "/")
    assert cam.video.name == "camera0.mp4"
    (url,) = plan(["rtsp://user:secret@cam.local:554/live/main"], str(tmp_path) + "/")
    assert url.video.name == "main.mp4" and "secret" not in str(url.video)


def test_the_output_may_not_be_the_input(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"x")
    with pytest.raises(ConfigError, match="is the input"):
        plan([src], str(src))


def test_an_existing_output_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "out.mp4").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        plan(["in.mp4"], str(tmp_path / "out.mp4"))
    assert plan(["in.mp4"], str(tmp_path / "out.mp4"), overwrite=True)
    assert (tmp_path / "out.mp4").read_bytes() == b"old"  # planning never touches files


def test_two_inputs_with_one_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="written twice"):
        plan(["a/clip.mp4", "b/clip.avi"], str(tmp_path), many=True)


@pytest.mark.parametrize(
    ("video", "jsonl", "message"),
    [
        ("out.avi", None, "must end in .mp4"),
        (None, "out.txt", "must end in .jsonl"),
    ],
)
def test_wrong_suffixes_are_refused(tmp_path, video, jsonl, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan(
            ["in.mp4"],
            video and str(tmp_path / video),
            jsonl and str(tmp_path / jsonl),
        )


def test_several_inputs_need_folders_and_not_stdout(tmp_path):
    (tmp_path / "file.mp4").write_bytes(b"x")
    with pytest.raises(ConfigError, match="must be a folder"):
        plan(["a.mp4", "b.mp4"], str(tmp_path / "file.mp4"), many=True)
    with pytest.raises(ConfigError, match="stdout"):
        plan(["a.mp4", "b.mp4"], None, "-", many=True)


def test_an_image_input_may_write_an_image(tmp_path):
    (p,) = plan(["pic.jpg"], str(tmp_path / "pic_boxes.jpg"))
    assert p.video.suffix == ".jpg"
    with pytest.raises(ConfigError, match=r"must end in \.mp4"):
        plan(["clip.mp4"], str(tmp_path / "x.png"))


def test_streams_whose_urls_end_alike_are_told_apart_by_host_and_port(tmp_path):
    urls = ["rtsp://admin:secret@10.0.0.5:554/live", "rtsp://10.0.0.6/live", "rtsp://x/other"]
    plans = plan_outputs(
        urls, video_out=f"{tmp_path}/", jsonl_out=f"{tmp_path}/", many=True, overwrite=False
    )
    names = [p.video.name for p in plans]
    assert names == ["10.0.0.5_554_live.mp4", "10.0.0.6_live.mp4", "other.mp4"]
    assert all("secret" not in str(p.jsonl) and "admin" not in str(p.jsonl) for p in plans)
