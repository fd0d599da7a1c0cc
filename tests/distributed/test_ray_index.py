"""``streamdet index --ray`` on a real local Ray cluster, started by the test inside a network
namespace that has only the loopback interface (as test_ray_folder.py: one subprocess,
ray_index_scenarios.py, starts one cluster, runs every scenario and writes JSON)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from netns import scenario_results

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

pytestmark = [pytest.mark.network, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
CLIPS = ["red.mp4", "star.mp4", "triangle.mp4"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return scenario_results(HERE / "ray_index_scenarios.py", tmp_path_factory.mktemp("ray_index"))


def test_ray_binds_only_the_loopback(results):
    assert results["node_ip"] == "127.0.0.1"


def test_an_index_built_on_ray_equals_one_built_here(results):
    first, ref = results["first"], results["reference"]
    assert first["indexed"] == CLIPS and first["failed"] == {}
    assert sorted(first["rows_of"]) == CLIPS
    for name in CLIPS:
        got, want = first["rows_of"][name], ref["rows"][name]
        assert len(got["times"]) > 0
        assert got["times"] == want["times"] and got["boxes"] == want["boxes"]
        # float16 rows of the same model; workers run one thread, this process several
        np.testing.assert_allclose(got["embeddings"], want["embeddings"], atol=2e-3)
    assert first["top1"] == ref["top1"]
    # and the right clip is the top hit of each prompt (a comparison of substance)
    assert first["top1"]["a red circle"][0] == "red.mp4"
    assert first["top1"]["a blue star"][0] == "star.mp4"


def test_a_second_run_skips_every_video(results):
    again = results["again"]
    assert again["skipped"] == CLIPS and again["indexed"] == [] and again["failed"] == {}
    assert again["parts_unchanged"]
    assert again["rows"] == results["first"]["rows"]


def test_a_bad_file_is_reported_and_the_others_are_indexed(results):
    corrupt = results["corrupt"]
    assert list(corrupt["failed"]) == ["bad.mp4"]
    reason = corrupt["failed"]["bad.mp4"]
    assert "bad.mp4" in reason and "\n" not in reason and "Traceback" not in reason
    assert corrupt["indexed"] == ["red.mp4"]  # the mixed folder's copy: a new file
    assert corrupt["files"] == 4


def test_the_command_line_joins_a_cluster_by_address(results):
    cli = results["cli"]
    assert cli["address"].startswith("127.0.0.1:")
    assert cli["rc"] == 0, cli["stderr"]
    assert any(line.startswith("indexed 3, skipped 0") for line in cli["stdout"]), cli["stdout"]
    assert cli["top1"] == results["reference"]["top1"]


def test_an_unreachable_address_is_one_line(results):
    bad = results["unreachable"]
    assert bad["rc"] == 1
    assert len(bad["stderr"]) == 1, bad["stderr"]
    assert "127.0.0.1:1" in bad["stderr"][0] and "ray start --head" in bad["stderr"][0]
    assert not bad["exists"]
