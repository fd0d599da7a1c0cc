"""``streamdet run FOLDER --ray`` on a real local Ray cluster, started by the test inside a
network namespace that has only the loopback interface (so Ray can bind nothing but 127.0.0.1).

Ray takes about 8 s to start, so one subprocess (ray_scenarios.py) starts one cluster, runs every
scenario and writes JSON; the tests below assert on it. Skipped without Ray or without a way to
make the namespace (``unshare --net`` as root, ``--map-root-user`` otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netns import scenario_results

pytest.importorskip("ray")

pytestmark = [pytest.mark.network, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
FRAMES = {"c0": 10, "c1": 14, "c2": 8}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return scenario_results(HERE / "ray_scenarios.py", tmp_path_factory.mktemp("ray"))


def test_ray_binds_only_the_loopback(results):
    assert results["node_ip"] == "127.0.0.1"


def test_a_folder_gives_one_mp4_and_jsonl_per_input_with_every_frame(results):
    first = results["first"]
    assert first["done"] == ["c0.mp4", "c1.mp4", "c2.mp4"]
    assert first["failed"] == {} and first["workers"] == 2
    assert first["inputs"] == FRAMES
    assert first["mp4"] == FRAMES
    for name, n in FRAMES.items():
        lines = first["jsonl"][name].splitlines()
        assert [json.loads(line)["frame"] for line in lines] == list(range(n))
    # no partial files left, nothing else written
    assert first["listing"] == sorted(f"{n}.{s}" for n in FRAMES for s in ("jsonl", "mp4"))


def test_outputs_equal_the_single_process_run(results):
    assert results["reference"]["rc"] == 0
    ray_jsonl, ref_jsonl = results["first"]["jsonl"], results["reference"]["jsonl"]
    detections = sum(
        len(json.loads(line)["detections"]) for t in ray_jsonl.values() for line in t.splitlines()
    )
    assert detections > 0  # the clips have cars and people in them: a comparison of substance
    assert ray_jsonl == ref_jsonl


def test_a_second_run_skips_every_finished_input(results):
    again = results["again"]
    assert again["skipped"] == ["c0.mp4", "c1.mp4", "c2.mp4"]
    assert again["done"] == [] and again["workers"] == 0
    assert again["unchanged"]
    assert "3 skipped" in again["summary"]


def test_a_removed_output_and_a_partial_file_are_redone(results):
    resume = results["resume"]
    assert resume["done"] == ["c1.mp4", "c2.mp4"] and resume["skipped"] == ["c0.mp4"]
    assert resume["removed_partials"] == 1
    assert resume["kept"]  # finished outputs were not rewritten
    assert resume["listing"] == results["first"]["listing"]  # the partial file is gone
    assert resume["c1_jsonl"] == results["first"]["jsonl"]["c1"]
    assert resume["c2_mp4"] == FRAMES["c2"]


def test_a_corrupt_file_is_reported_and_the_others_finish(results):
    corrupt = results["corrupt"]
    assert corrupt["done"] == ["c0.mp4"]
    assert list(corrupt["failed"]) == ["bad.mp4"]
    reason = corrupt["failed"]["bad.mp4"]
    assert "bad.mp4" in reason and "\n" not in reason and "Traceback" not in reason
    assert corrupt["listing"] == ["c0.jsonl"]


def test_a_stop_leaves_no_unfinished_output_and_the_next_run_finishes(results):
    stop = results["stop"]
    assert stop["interrupted"]
    assert stop["done"] == ["b_short.mp4"] and stop["not_run"] == ["a_long.mp4"]
    assert stop["listing"] == ["b_short.jsonl"]  # no a_long.jsonl, no partial file
    again = results["stop_again"]
    assert again["done"] == ["a_long.mp4"] and again["skipped"] == ["b_short.mp4"]
    assert again["long_lines"] == 600


def test_the_command_line_joins_a_cluster_by_address(results):
    cli = results["cli"]
    assert cli["address"].startswith("127.0.0.1:")
    assert cli["rc"] == 0, cli["stderr"]
    assert cli["jsonl"] == results["first"]["jsonl"]
    assert any("3 inputs: 3 done" in line for line in cli["stderr"])


def test_an_unreachable_address_is_one_line(results):
    bad = results["unreachable"]
    assert bad["rc"] == 1
    assert len(bad["stderr"]) == 1, bad["stderr"]
    assert "127.0.0.1:1" in bad["stderr"][0] and "ray start --head" in bad["stderr"][0]
    assert bad["listing"] == []
