"""Caption logits of a CLIP model being trained, on crops and on their patches, and the
best-F1 probability threshold they give on fresh crops (reported in the training record)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPModel

from streamdet.clip.towers import dense_tokens
from streamdet.synth.data import BACKGROUND_PROMPTS, TRUE, CaptionTable, make_batch
from streamdet.synth.losses import log_odds
from streamdet.synth.model import to_pixels


def _features(out: object) -> torch.Tensor:
    return getattr(out, "pooler_output", out)  # type: ignore[return-value]


def texts_and_scale(
    model: CLIPModel, tokens: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, D) unit text embeddings and the logit scale (capped at CLIP's 100)."""
    txt = F.normalize(_features(model.get_text_features(**tokens)), dim=-1)
    return txt, model.logit_scale.exp().clamp(max=100.0)


def logits_for(
    model: CLIPModel, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(N, T) logits = logit_scale * cosine between N crops and T texts."""
    img = F.normalize(_features(model.get_image_features(pixel_values=pixels)), dim=-1)
    txt, scale = texts_and_scale(model, tokens)
    return scale * img @ txt.T  # [N, T]


def logits_with_patches(
    model: CLIPModel, pixels: torch.Tensor, tokens: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) crop logits and (N, P, T) patch logits: the patch tokens exactly as the exported
    image graph computes them (:func:`streamdet.clip.towers.dense_tokens`)."""
    out = model.vision_model(pixel_values=pixels, output_hidden_states=True)
    img = F.normalize(model.visual_projection(out.pooler_output), dim=-1)
    patches = dense_tokens(model, out.hidden_states[-2])  # (N, P, D), unit norm
    txt, scale = texts_and_scale(model, tokens)
    return scale * img @ txt.T, scale * patches @ txt.T


@torch.no_grad()
def calibrate_threshold(
    model: CLIPModel, tokens: dict[str, torch.Tensor], table: CaptionTable, seed: int
) -> dict[str, float]:
    """Pick the p(prompt) threshold with the best F1 over (crop, caption) pairs of fresh window-like
    crops at the model's input size (sized captions left out), and report how the scores
    separate."""
    model.eval()
    rng = np.random.default_rng(seed)
    batch = make_batch(rng, table, 2048, image_size=model.config.vision_config.image_size)
    logits = torch.cat(
        [
            logits_for(model, to_pixels(batch.images[i : i + 256]), tokens)
            for i in range(0, len(batch.images), 256)
        ]
    )
    n_bg = len(BACKGROUND_PROMPTS)
    p = torch.sigmoid(log_odds(logits, n_bg)).numpy()
    unsized = table.size < 0
    labels = batch.labels[:, unsized]
    p = p[:, unsized]
    pos, neg = p[labels == TRUE], p[labels == 0]
    best = (0.0, 0.5)
    for t in np.linspace(0.05, 0.95, 91):
        tp, fp = (pos >= t).sum(), (neg >= t).sum()
        f1 = 2 * tp / max(2 * tp + fp + (len(pos) - tp), 1)
        best = max(best, (float(f1), float(t)))
    t = best[1]
    model.train()
    return {
        "threshold": round(t, 2),
        "f1": round(best[0], 4),
        "recall": round(float((pos >= t).mean()), 4),
        "false_positive_rate": round(float((neg >= t).mean()), 5),
        "positives": len(pos),
        "negatives": len(neg),
    }


__all__ = ["calibrate_threshold", "logits_for", "logits_with_patches", "texts_and_scale"]
