"""Scoring functions on hand-made numbers."""

from __future__ import annotations

import numpy as np

from streamdet.detect.scoring import prompt_vs_background, reference_normalise


def test_reference_normalise_matches_the_write_up():
    cells = np.array([[[1.0, 2.0], [3.0, 6.0]]])  # mean 3 -> [0, 0, 0, 3] -> [0, 0, 0, 1]
    np.testing.assert_allclose(reference_normalise(cells), [[[0, 0], [0, 1]]])
    flat = np.full((1, 2, 2), 5.0)
    np.testing.assert_array_equal(reference_normalise(flat), np.zeros((1, 2, 2)))


def test_prompt_probability_ignores_other_prompts():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(5, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    prompts = emb[:3] + 0.1
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    bg = emb[3:]
    both = prompt_vs_background(emb, prompts, bg, 100.0)
    alone = prompt_vs_background(emb, prompts[1:2], bg, 100.0)
    np.testing.assert_allclose(both[:, 1:2], alone, rtol=1e-6)
    # softmax over [prompt, backgrounds] by hand
    logits = 100.0 * np.concatenate([emb @ prompts[:1].T, emb @ bg.T], axis=1)
    manual = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(both[:, 0], manual, rtol=1e-5)
    assert np.all((both >= 0) & (both <= 1))
