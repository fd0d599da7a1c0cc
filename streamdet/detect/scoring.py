"""Turning window embeddings into per-prompt cell heatmaps.

Two ways, chosen by ``scoring=``:

``reference``
    The original write-up's heatmap, exactly: every cell takes the mean of the image-text logits of
    the windows covering it (visit counts start at zero), then the mean cell score is subtracted,
    negatives are clipped to zero and the map is min-max normalised to [0, 1]. Because every frame
    is stretched to [0, 1], something is always "found", even in a frame without the object.

``calibrated`` (default)
    Each window gets, per prompt, the probability that the prompt describes it better than a set of
    background prompts: a softmax over ``[prompt, background_1, ..., background_B]`` of the CLIP
    logits. The probability of one prompt does not depend on which other prompts are set, so adding
    a prompt never changes another prompt's boxes. Cells take the mean over their covering windows.
    No per-frame normalisation: a frame without the object stays near zero and yields no box.
"""

from __future__ import annotations

import numpy as np

SCORINGS = ("calibrated", "reference")


def window_logits(image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """CLIP logits: (N, D) image x (K, D) text embeddings, both L2-normalised -> (N, K)."""
    return logit_scale * (image_emb @ text_emb.T)


def prompt_vs_background(
    image_emb: np.ndarray, prompt_emb: np.ndarray, background_emb: np.ndarray, logit_scale: float
) -> np.ndarray:
    """Per window and prompt, P(prompt | window) against the background prompts only: (N, K).

    softmax over [l_k, l_b1, ..., l_bB], taken for each prompt k separately.
    """
    log_odds = prompt_log_odds(image_emb, prompt_emb, background_emb, logit_scale)
    return 1.0 / (1.0 + np.exp(-log_odds))  # = e^lk / (e^lk + sum_b e^lb)


def prompt_log_odds(
    image_emb: np.ndarray, prompt_emb: np.ndarray, background_emb: np.ndarray, logit_scale: float
) -> np.ndarray:
    """Per window and prompt, the log-odds whose sigmoid is ``prompt_vs_background``: (N, K).

    Against the background prompts (``background_log_odds``); with none, the prompt's logit.
    Unlike the probability it keeps rising where the probability is already near 1.
    """
    lk = window_logits(image_emb, prompt_emb, logit_scale)  # (N, K)
    if len(background_emb) == 0:
        return lk
    return background_log_odds(lk, window_logits(image_emb, background_emb, logit_scale))


def background_log_odds(lk: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """log(P(prompt) / P(background)) per window and prompt: ``lk - logsumexp(lb)``, (N, K).

    lk: (N, K) prompt logits, lb: (N, B) background logits. ``prompt_vs_background`` is its
    sigmoid; ranking by it ranks by that probability without computing (or overflowing) it.
    """
    top = lb.max(axis=1, keepdims=True)
    log_bg = top + np.log(np.exp(lb - top).sum(axis=1, keepdims=True))  # logsumexp, (N, 1)
    return lk - log_bg


def reference_normalise(cells: np.ndarray) -> np.ndarray:
    """The write-up's sharpening of (K, rows, cols) cell scores: minus mean, clip at 0, min-max."""
    k = len(cells)
    flat = cells.reshape(k, -1).astype(np.float32)
    flat = np.clip(flat - flat.mean(axis=1, keepdims=True), 0.0, None)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    out = np.divide(flat - lo, span, out=np.zeros_like(flat), where=span > 0)
    return out.reshape(cells.shape)
