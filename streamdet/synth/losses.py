"""The losses that train the built-in CLIP on what the detector scores.

The detector's score for a prompt is p(prompt) = softmax over [prompt, background prompts] of the
logits, so the losses are written on the log-odds of that score (:func:`log_odds`): a binary
term per caption (:func:`streamdet_loss`, and per patch or token :func:`patch_loss` and
:func:`soft_patch_loss`), multi-positive softmaxes, a term on the hardest negatives and one on the
weakest positives (tried, off in the recipe). See
:mod:`streamdet.synth.train` for how they are mixed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamdet.synth.data import IGNORE, TRUE


def _multi_positive_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over rows with a TRUE label of -log(softmax mass on TRUE columns), IGNORE left out."""
    has_pos = (labels == TRUE).any(dim=1)
    if not has_pos.any():
        return logits.sum() * 0.0
    all_lse = torch.logsumexp(logits.masked_fill(labels == IGNORE, -torch.inf), dim=1)
    pos_lse = torch.logsumexp(logits.masked_fill(labels != TRUE, -torch.inf), dim=1)
    return (all_lse - pos_lse)[has_pos].mean()


def _mean_or_zero(values: torch.Tensor) -> torch.Tensor:
    """The mean, or 0 for no values (a batch without positives must not make the loss NaN)."""
    return values.mean() if values.numel() else values.sum()


def log_odds(logits: torch.Tensor, n_bg: int) -> torch.Tensor:
    """The detector's log-odds per caption column: logit(caption) - logsumexp(logits of the
    last ``n_bg`` columns, the background prompts); sigmoid of it is p(prompt) as detected."""
    return logits[..., :-n_bg] - torch.logsumexp(logits[..., -n_bg:], dim=-1, keepdim=True)


def _binary(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(z) against TRUE/FALSE labels (IGNORE left out), positives
    and negatives averaged separately (most pairs are negative)."""
    return _mean_or_zero(F.softplus(-z[labels == TRUE])) + _mean_or_zero(F.softplus(z[labels == 0]))


def _tail(z: torch.Tensor, k: int) -> torch.Tensor:
    """The mean softplus of the ``k`` largest of ``z`` (all of them when fewer): the loss of the
    worst-scored pairs alone, which a mean over every pair barely sees."""
    return F.softplus(torch.topk(z, min(k, z.numel())).values).mean()


def streamdet_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    n_bg: int,
    softmax_weight: float,
    families: dict[str, torch.Tensor],
    hard_weight: float = 0.0,
    weak_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss for (N, C + n_bg) logits (last n_bg columns: background prompts) and int8 labels.

    ``families`` maps a name to the caption columns of one attribute family (kind only: "a
    circle", ..., colour only, colour + kind); each adds a softmax over just that family. Without
    them the captions that name only a colour already carry all the softmax mass a crop needs, and
    kind never has to be learnt: text embeddings of "a circle" and "a star" stayed identical.
    ``hard_weight`` and ``weak_weight`` weigh terms on the most confident wrong and the least
    confident true pairs (about one per crop each).
    Returns the loss and its parts for logging.
    """
    cap_labels = labels[:, :-n_bg]
    z = log_odds(logits, n_bg)  # [N, C]
    neg = cap_labels == 0
    binary = _binary(z, cap_labels)
    softmax = _multi_positive_ce(logits, labels)
    loss = binary + softmax_weight * softmax
    parts = {"binary": float(binary.detach()), "softmax": float(softmax.detach())}
    if hard_weight > 0 and neg.any():
        # The detector sees hundreds of windows per frame and prompt, so what makes false boxes
        # is the rare confident negative, which the mean above barely sees: push the worst
        # (about one per crop) down on their own.
        hard = _tail(z[neg], len(logits))
        loss = loss + hard_weight * hard
        parts["hard"] = float(hard.detach())
    pos = cap_labels == TRUE
    if weak_weight > 0 and pos.any():
        # The mirror image for recall: a verification crop decides on its one pooled score, so
        # a true object is lost when its crop is among the least confident positives (cut by
        # the frame's edge, partly covered, low in contrast): lift the weakest on their own.
        weak = _tail(-z[pos], len(logits))
        loss = loss + weak_weight * weak
        parts["weak"] = float(weak.detach())
    for name, cols in families.items():
        family = _multi_positive_ce(logits[:, cols], labels[:, cols])
        loss = loss + family
        parts[name] = float(family.detach())
    return loss, parts


def patch_loss(logits: torch.Tensor, labels: torch.Tensor, n_bg: int) -> torch.Tensor:
    """Binary loss on the detector's patch score, p = softmax over [caption, backgrounds] of a
    patch token's logits, against (N, P, C) per-patch labels; positives and negatives averaged
    separately (most patch-caption pairs are negative)."""
    return _binary(log_odds(logits, n_bg), labels)


#: Soft targets: a token covered at least this much by a caption's objects is a plain positive,
#: at most ``SOFT_ABSENT`` a plain negative; in between it is an edge token whose score should be
#: its cover.
SOFT_FULL = 0.9
SOFT_ABSENT = 0.1


def soft_patch_loss(logits: torch.Tensor, cover: torch.Tensor, n_bg: int) -> torch.Tensor:
    """Per-token loss with soft targets from ``cover`` (N, P, C): the share of each token that
    objects matching each caption cover (NaN: ignored).

    Tokens the objects (almost) fill or (almost) miss are plain positives and negatives of
    :func:`patch_loss` (averaged separately: most pairs are negative). The edge tokens between
    get a plain binary cross-entropy against their cover, averaged over them, whose optimum is
    p(caption) = cover: the token heatmap then crosses one half where the object's edge crosses
    the tokens, which is where the detector's sub-cell box edges look for it
    (``streamdet.detect.boxes.refine_edges`` at ``peak_ratio`` 0.5). Without them edge tokens
    are left to chance (IGNORE) and the class balance would push any cover towards 1.
    """
    z = log_odds(logits, n_bg)
    labels = torch.full(cover.shape, IGNORE, dtype=torch.int8)
    labels[cover >= SOFT_FULL] = TRUE
    labels[cover <= SOFT_ABSENT] = 0
    edge = (cover > SOFT_ABSENT) & (cover < SOFT_FULL)
    soft = _mean_or_zero(F.binary_cross_entropy_with_logits(z[edge], cover[edge], reduction="none"))
    return _binary(z, labels) + soft
