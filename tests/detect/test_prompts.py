"""Prompt validation and the text-embedding cache (memory and disk)."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.detect.prompts import TextEmbeddingCache, normalise_prompts
from streamdet.errors import PromptError


def test_prompts_are_stripped_and_a_string_is_one_prompt():
    assert normalise_prompts("  a red   car ") == ("a red car",)
    assert normalise_prompts(["a", "b"]) == ("a", "b")


@pytest.mark.parametrize(
    "bad", [[""], ["  "], ["x" * 301], ["a", "a"], [3], 5, ["ok"] * 0 + [None]]
)
def test_bad_prompts_are_refused(bad):
    with pytest.raises(PromptError):
        normalise_prompts(bad)


class FakeTower:
    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        out = np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_each_text_reaches_the_tower_once_and_survives_a_restart(tmp_path):
    tower = FakeTower()
    cache = TextEmbeddingCache(tower, "model-abc", tmp_path)
    first = cache.embed(["a cat", "a dog"])
    again = cache.embed(["a dog", "a cat", "a bird"])
    assert tower.calls == [["a cat", "a dog"], ["a bird"]]
    np.testing.assert_array_equal(again[1], first[0])
    fresh_tower = FakeTower()
    reopened = TextEmbeddingCache(fresh_tower, "model-abc", tmp_path)
    np.testing.assert_array_equal(reopened.embed(["a cat"]), first[:1])
    assert fresh_tower.calls == []
    other_model = TextEmbeddingCache(fresh_tower, "model-xyz", tmp_path)
    other_model.embed(["a cat"])
    assert fresh_tower.calls == [["a cat"]]


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not numpy"),
        lambda path: np.save(path, np.ones((2, 3), np.float32)),  # a matrix, not one vector
        lambda path: np.save(path, np.array([np.nan, 1.0, 0.0], np.float32)),
        lambda path: np.save(path, np.array([1, 2, 3], np.int64)),
    ],
)
def test_a_damaged_cache_file_is_recomputed_not_trusted(tmp_path, damage):
    TextEmbeddingCache(FakeTower(), "m", tmp_path).embed(["a cat"])
    (stored,) = (tmp_path / "text").rglob("*.npy")
    damage(stored)
    tower = FakeTower()
    out = TextEmbeddingCache(tower, "m", tmp_path).embed(["a cat", "a dog"])
    assert tower.calls == [["a cat", "a dog"]]
    assert out.shape == (2, 3) and np.isfinite(out).all()
    assert np.load(stored).shape == (3,)  # repaired on disk


def test_unwritable_cache_falls_back_to_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = TextEmbeddingCache(FakeTower(), "m", blocker)
    assert cache.embed(["x"]).shape == (1, 3)
    assert cache.embed(["x"]).shape == (1, 3)


def test_templates_are_averaged_and_renormalised(tmp_path):
    cache = TextEmbeddingCache(FakeTower(), "m", None)
    emb = cache.embed_templated(["cat"], ["a {}", "the {}."])
    parts = cache.embed(["a cat", "the cat."])
    mean = parts.mean(axis=0)
    np.testing.assert_allclose(emb[0], mean / np.linalg.norm(mean), rtol=1e-6)
