"""Ranking on hand-made numbers: scores, moment collapse, settings and the Parquet round trip."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.config import IndexConfig
from streamdet.detect.scoring import prompt_vs_background
from streamdet.errors import ConfigError
from streamdet.search.embed import index_grid
from streamdet.search.query import probability, score_rows, top_moments
from streamdet.search.store import FileRows, read_part, write_part


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_calibrated_scores_are_the_detectors_probabilities():
    rng = np.random.default_rng(0)
    rows, texts = _unit(rng, 50, 16), _unit(rng, 4, 16)
    keys = score_rows(rows, texts[0], texts[1:], 30.0, "calibrated")
    expected = prompt_vs_background(rows, texts[:1], texts[1:], 30.0)[:, 0]
    np.testing.assert_allclose(probability(keys, "calibrated"), expected, rtol=1e-5)
    cosine = score_rows(rows, texts[0], texts[1:], 30.0, "cosine")
    np.testing.assert_allclose(probability(cosine, "cosine"), rows @ texts[0], rtol=1e-6)
    # no background prompts: the sigmoid of the prompt's logit, as the detector does
    alone = probability(score_rows(rows, texts[0], texts[:0], 30.0, "calibrated"), "calibrated")
    np.testing.assert_allclose(alone, 1 / (1 + np.exp(-30.0 * (rows @ texts[0]))), rtol=1e-5)


def test_hits_of_one_moment_collapse_to_the_best():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    files = np.array([0, 0, 1, 0, 1, 0])
    times = np.array([10.0, 11.0, 10.5, 30.0, 14.0, 12.9])
    assert top_moments(scores, files, times, 10, 3.0) == [0, 2, 3, 4]
    assert top_moments(scores, files, times, 2, 3.0) == [0, 2]
    assert top_moments(scores, files, times, 10, 0.5) == [0, 1, 2, 3, 4, 5]


def test_collapse_looks_deeper_when_one_moment_fills_the_pool():
    n = 5000
    scores = np.linspace(1.0, 0.0, n)
    files = np.zeros(n, np.int32)
    times = np.where(np.arange(n) < 4000, 0.0, np.arange(n, dtype=float))  # 4000 rows at 0 s
    best = top_moments(scores, files, times, 3, 1.0)
    assert best == [0, 4000, 4001]


def test_index_settings_are_checked():
    with pytest.raises(ConfigError, match="every must be a number of seconds above 0"):
        IndexConfig(every=0)
    with pytest.raises(ConfigError, match=r"window .* is larger"):
        IndexConfig(cells=2, window=3)
    with pytest.raises(ConfigError, match="scoring must be one of calibrated, cosine"):
        IndexConfig(scoring="dot")


def test_the_index_grid_follows_the_frame():
    grid = index_grid(360, 640, 4, 2)
    assert grid.patch == 90 and len(grid) == 3 * 7
    boxes = grid.window_boxes()
    assert boxes[:, 2].max() == 640 and boxes[:, 3].max() == 360
    assert ((boxes[:, 2] - boxes[:, 0]).max(), (boxes[:, 3] - boxes[:, 1]).max()) == (180, 180)
    assert len(index_grid(640, 360, 4, 2)) == 7 * 3  # portrait: the same windows turned


def test_parts_round_trip_as_float16(tmp_path):
    rng = np.random.default_rng(1)
    emb = _unit(rng, 7, 12)
    rows = FileRows(
        file="/v/a.mp4",
        times=np.arange(7, dtype=float),
        boxes=rng.uniform(0, 100, (7, 4)).astype(np.float32),
        sizes=np.tile([[640, 360]], (7, 1)).astype(np.int32),
        whole=np.arange(7) % 2 == 0,
        embeddings=emb.astype(np.float16),
        frames=4,
    )
    write_part(tmp_path, "a.parquet", rows, "c" * 64)
    back = read_part(tmp_path, "a.parquet", "c" * 64, frames=4)
    assert back.file == "/v/a.mp4" and back.embeddings.dtype == np.float16
    np.testing.assert_array_equal(back.embeddings, rows.embeddings)
    np.testing.assert_allclose(back.embeddings.astype(np.float32), emb, atol=1e-3)
    for name in ("times", "boxes", "sizes", "whole"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rows, name))
