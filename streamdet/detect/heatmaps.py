"""Embeddings to per-prompt heatmaps, for every method, against one prompt state.

The Detector embeds pixels (windows, a whole frame, occluded copies); these functions score those
embeddings against the prompts (``PromptState``) and lay the scores out as (prompts, rows, cols)
heatmaps in [0, 1] that ``streamdet.detect.boxes`` turns into boxes. ``calibrated`` scoring is each
prompt's probability against the background prompts (``streamdet.detect.scoring``); ``reference``
the original write-up's min-max normalised logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamdet.detect.dense import DenseGrid
from streamdet.detect.occlusion import occlusion_drops
from streamdet.detect.scoring import prompt_vs_background, reference_normalise, window_logits
from streamdet.detect.sizes import SizedPrompt
from streamdet.detect.windows import WindowGrid

#: Dense heatmaps skip windows whose probability is at most this for every prompt (and at most
#: the lowest level a box is cut at): they cannot raise a cell to where it matters.
DENSE_FLOOR = 0.05


@dataclass(frozen=True)
class PromptState:
    """Prompts with everything derived from them; the Detector replaces it as a whole."""

    prompts: tuple[str, ...]
    sized: tuple[SizedPrompt, ...]  # what the model scores, and the frame size boxes must have
    embeddings: np.ndarray  # (K, D)
    background: np.ndarray  # (B, D), background prompts that are not among the prompts
    thresholds: np.ndarray  # (K,)


def token_heatmaps(
    tokens: np.ndarray, state: PromptState, scale: float, reference: bool
) -> np.ndarray:
    """The one-pass method: (rows, cols, D) token embeddings -> (K, rows, cols)."""
    rows, cols, dim = tokens.shape
    flat = tokens.reshape(-1, dim)
    if reference:
        logits = window_logits(flat, state.embeddings, scale)  # (rows * cols, K)
        return reference_normalise(logits.T.reshape(len(state.prompts), rows, cols))
    probs = prompt_vs_background(flat, state.embeddings, state.background, scale)
    return probs.T.reshape(len(state.prompts), rows, cols).astype(np.float32)


def fine_heatmaps(
    emb: np.ndarray,
    tokens: np.ndarray,
    dense_grid: DenseGrid,
    state: PromptState,
    scale: float,
    peak_ratio: float,
) -> np.ndarray:
    """Windows with patch tokens: window probability x patch probability, max over the windows
    covering each fine cell. emb (N, D), tokens (N, g, g, D) -> (K, fine rows, fine cols)."""
    probs = prompt_vs_background(emb, state.embeddings, state.background, scale)  # (N, K)
    probs = dense_grid.context_gate(probs)  # small windows only as sure as their context
    lowest = float(state.thresholds.min()) * (peak_ratio or 1.0)
    active = np.flatnonzero(probs.max(axis=1) > min(DENSE_FLOOR, lowest))
    side, dim = tokens.shape[1], tokens.shape[3]
    flat = tokens[active].reshape(-1, dim)  # (n_active * g * g, D)
    patch_probs = prompt_vs_background(flat, state.embeddings, state.background, scale)
    patch_probs = patch_probs.reshape(len(active), side, side, len(state.prompts))
    return dense_grid.heatmaps(active, probs[active], patch_probs, len(state.prompts))


def window_heatmaps(
    emb: np.ndarray, grid: WindowGrid, state: PromptState, scale: float, reference: bool
) -> np.ndarray:
    """The windows method: (N, D) window embeddings -> (K, rows, cols) cell means."""
    if reference:
        logits = window_logits(emb, state.embeddings, scale)  # (N, K)
        return reference_normalise(grid.cell_mean(logits))
    probs = prompt_vs_background(emb, state.embeddings, state.background, scale)
    return grid.cell_mean(probs).astype(np.float32)


def occlusion_heatmaps(
    emb: np.ndarray, grid: WindowGrid, state: PromptState, scale: float, reference: bool
) -> np.ndarray:
    """The occlusion method: row 0 of ``emb`` is the whole frame, rows 1.. the copies with one
    window greyed out; a cell's heat is how much hiding it lowers each prompt's score."""
    drops = occlusion_drops(window_logits(emb, state.embeddings, scale))  # (N, K)
    cells = grid.cell_mean(drops)  # (K, rows, cols)
    if reference:
        return reference_normalise(cells)
    # Calibrated: the shape of the drop map, scaled by how likely the prompt is in the frame.
    present = prompt_vs_background(emb[:1], state.embeddings, state.background, scale)[0]
    cells = np.clip(cells, 0.0, None)
    peak = cells.reshape(len(cells), -1).max(axis=1)
    shape = np.divide(
        cells, peak[:, None, None], out=np.zeros_like(cells), where=peak[:, None, None] > 0
    )
    return (shape * present[:, None, None]).astype(np.float32)
