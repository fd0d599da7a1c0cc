"""The inverted lists of a large index: training, probing, the stored file and its upkeep."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.search import lists as lists_mod
from streamdet.search.lists import ListLayout, Lists, assign, current_lists, train, up_to_date
from streamdet.search.query import IndexMatrix, rank, score_rows, top_moments


def _clustered(rng, clusters: int, per: int, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Rows around ``clusters`` well-separated unit centres; (rows, their true cluster)."""
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(clusters), per)
    rows = centres[truth] + rng.normal(0, 0.05, (len(truth), dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    order = rng.permutation(len(rows))
    return rows[order], truth[order]


def _matrix(rows: np.ndarray) -> IndexMatrix:
    n = len(rows)
    return IndexMatrix(
        files=("a.mp4", "b.mp4"),
        file_ids=(np.arange(n) % 2).astype(np.int32),
        times=np.arange(n, dtype=float) * 10.0,  # every row its own moment
        boxes=np.zeros((n, 4), np.float32),
        sizes=np.tile(np.array([[64, 36]], np.int32), (n, 1)),
        whole=np.ones(n, bool),
        matrix=rows,
    )


def test_kmeans_recovers_separated_clusters():
    rows, truth = _clustered(np.random.default_rng(0), 8, 200)
    labels = assign(rows, train(rows, 8))
    # every true cluster lands in exactly one list and no list holds two clusters
    pairs = {(int(t), int(lab)) for t, lab in zip(truth, labels, strict=True)}
    assert len(pairs) == 8 and len({lab for _, lab in pairs}) == 8


def test_probing_the_best_lists_finds_the_exact_moments():
    rng = np.random.default_rng(1)
    rows, _ = _clustered(rng, 20, 100)
    centres = train(rows, 20)
    layout = ListLayout.of(Lists(centres, len(rows), "x", {"p": assign(rows, centres)}), ["p"])
    grouped = _matrix(rows).grouped(layout)
    prompt, background = rows[3], rows[[10, 500, 900]]
    for scoring in ("calibrated", "cosine"):
        keys = score_rows(grouped.matrix, prompt, background, 50.0, scoring)
        exact = top_moments(keys, grouped.file_ids, grouped.times, 5, 1.0)
        best, best_keys = rank(grouped, prompt, background, 50.0, scoring, 5, 1.0, 0.1)
        assert best.tolist() == exact
        np.testing.assert_allclose(best_keys, keys[exact])
    # probing 10% of 2000 rows scores about 200 of them: two or three lists, not all 20
    assert len(layout.probe(score_rows(centres, prompt, background, 50.0, "cosine"), 200)) < 5


def test_too_few_moments_in_the_probed_lists_looks_wider():
    rng = np.random.default_rng(2)
    rows, _ = _clustered(rng, 10, 50)
    centres = train(rows, 10)
    layout = ListLayout.of(Lists(centres, len(rows), "x", {"p": assign(rows, centres)}), ["p"])
    m = _matrix(rows)
    m = IndexMatrix(m.files, m.file_ids, np.zeros(len(rows)), m.boxes, m.sizes, m.whole, rows)
    grouped = m.grouped(layout)  # every row of a file is one moment: two moments in all
    best, _ = rank(grouped, rows[0], rows[1:3], 50.0, "calibrated", 2, 1.0, 0.01)
    assert sorted(grouped.file_ids[best].tolist()) == [0, 1]


def test_lists_are_stored_reused_extended_and_retrained(tmp_path, monkeypatch):
    monkeypatch.setattr(lists_mod, "MIN_ROWS", 100)
    rng = np.random.default_rng(3)
    rows, _ = _clustered(rng, 12, 60)
    a, b = rows[:400], rows[400:]
    assert current_lists(tmp_path, ["a"], [40], a[:40], "sum") is None  # under MIN_ROWS: none
    first = current_lists(tmp_path, ["a"], [400], a, "sum")
    assert first is not None and (tmp_path / "lists.npz").is_file()
    assert up_to_date(tmp_path, {"a": 400}, "sum")
    assert not up_to_date(tmp_path, {"a": 400, "b": 320}, "sum")
    # a new part: its rows are assigned to the stored centres, which are kept
    second = current_lists(tmp_path, ["a", "b"], [400, 320], rows, "sum")
    assert second is not None
    np.testing.assert_array_equal(second.centres, first.centres)
    np.testing.assert_array_equal(second.parts["b"], assign(b, first.centres))
    assert up_to_date(tmp_path, {"a": 400, "b": 320}, "sum")
    # another model's lists are retrained; so are lists of a much smaller index
    assert not up_to_date(tmp_path, {"a": 400, "b": 320}, "other")
    third = current_lists(tmp_path, ["a", "b"], [400, 320], rows, "other")
    assert third is not None and third.checksum == "other" and third.trained_rows == 720
    big = np.concatenate([rows] * 5)
    assert not up_to_date(tmp_path, {"a": len(big)}, "other")
    # a damaged file is rebuilt, not an error
    (tmp_path / "lists.npz").write_bytes(b"not a zip")
    assert Lists.read(tmp_path) is None
    assert current_lists(tmp_path, ["a", "b"], [400, 320], rows, "other") is not None


@pytest.mark.parametrize("probe", [0, -0.5, 1.5, True, "half"])
def test_probe_must_be_a_share(probe):
    from streamdet.config import IndexConfig
    from streamdet.errors import ConfigError

    with pytest.raises(ConfigError, match="probe"):
        IndexConfig(probe=probe)
