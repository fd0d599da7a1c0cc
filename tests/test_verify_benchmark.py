"""bench_verify runs the verification settings side by side and reports consistent crop
counts (no speed is asserted: benchmarks are never timed tests)."""

from __future__ import annotations

import json

import pytest

import bench_verify  # benchmarks/, on pytest's path
from _common import MEDIA

CLIP = MEDIA / "dashcam-highway-1280x720.mp4"


@pytest.mark.skipif(not CLIP.is_file(), reason="needs ../shared/media/dashcam-highway-1280x720.mp4")
def test_bench_verify_quick_counts_the_crops_of_each_setting(tmp_path, capsys):
    out = tmp_path / "bv.json"
    assert bench_verify.main(["--quick", "--frames", "4", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["command"].startswith("python benchmarks/bench_verify.py --quick")
    (clip,) = report["clips"]
    assert clip["clip"] == CLIP.name and clip["frames"] == 4
    one, second, second16, two, mean16 = clip["rows"]
    rows = (one, second, second16, two, mean16)
    assert [r["setting"] for r in rows] == list(bench_verify.VARIANTS)

    def used(row):
        return row["crops_computed_per_frame"] + row["crops_kept_per_frame"]

    # the same candidates are verified by all three: two crops each is twice one each, and the
    # second opinion lies between (the dashcam gives candidates on every frame)
    assert used(one) > 0
    assert used(two) == pytest.approx(2 * used(one))
    assert used(one) <= used(second16) <= used(two)
    assert used(second) <= used(second16)  # 12 boxes a frame at most, not 16
    # the mean of two within 16 crops a frame: both crops while they fit, never more than 16
    assert used(one) <= used(mean16) <= min(used(two), 16)
    assert one["time_ratio"] == 1.0 and one["vs_one_crop"]["box_agreement"] == 1.0
    assert "| dashcam-highway-1280x720.mp4 | second opinion |" in capsys.readouterr().out


def test_a_missing_clip_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_verify.main(["--clips", str(tmp_path / "nope.mp4")])
    assert "no such clip" in capsys.readouterr().err
