"""The verification stage of a ``detect_many`` call: every frame's boxes scored again by crops
around them (``streamdet.detect.verify``), the crops of all frames in one batch.

Per call:

1. each frame's strongest boxes (``verify_max``) are cut into views, every box at the first
   margin and, within ``verify_budget`` views a frame, the strongest at the others too
   (``verify.fully_viewed``); with temporal reuse, boxes found again where their crops did not
   change keep their views' embeddings (``WindowReuse.plan_views`` / ``merge_views``);
2. with a second opinion (``verify_recheck`` > 0 and more than one margin), only the first
   margin's view is cut at first; boxes whose first view gives their prompt at least
   ``verify_recheck`` are then cut at the other margins too, in one more batch, and the rest are
   decided by their first view alone. A box the first view rejects (below ``verify_floor``) is
   kept when another view reaches ``verify_recheck_floor``. Most of a real clip's candidates are
   plainly not the prompt (first view under 0.02), so the other views cost a fraction of what
   they cost for every box (docs/benchmarks.md has the figures);
3. with ``verify_refine`` each box moves towards what its first view's patch tokens show (and,
   with ``verify_refine_second``, its second view's: a view's tokens travel with its embedding,
   through reuse and second opinions alike);
4. each box's confidence becomes its region peak x its views' probability (``verify.rescore``):
   the best view's, or with ``verify_combine`` "mean" the mean of the views it was seen in;
   a box is kept when that reaches ``verify_floor``, lowered by ``verify_trust`` for boxes the
   heatmap is sure of (``verify.trusted_floor``);
   after ``verify_refine``, a box moved mostly inside a stronger one of its prompt goes
   (``verify.drop_contained``).

Without a second opinion every box is cut at every margin in one batch (within ``verify_budget``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamdet.config.settings import VerifyConfig
from streamdet.detect.heatmaps import PromptState
from streamdet.detect.model import LoadedModel
from streamdet.detect.reuse import ReusePlan, WindowReuse
from streamdet.detect.scoring import prompt_log_odds, prompt_vs_background
from streamdet.detect.verify import (
    box_views,
    drop_contained,
    fully_viewed,
    refine_in_views,
    relative_maps,
    rescore,
    strongest,
)
from streamdet.types import Detections


@dataclass(frozen=True)
class ToVerify:
    """One frame's boxes to verify, and its stream's reuse state (None: no reuse)."""

    frame: np.ndarray
    detections: Detections
    reuse: WindowReuse | None


@dataclass(frozen=True)
class Verified:
    """One frame's boxes after verification, and the views it took: computed now or kept."""

    detections: Detections
    computed: int
    reused: int


@dataclass
class _Frame:
    """One frame on its way through ``Verifier.run``."""

    todo: ToVerify
    detections: Detections
    plan: ReusePlan
    # (margins, n, D) embeddings, NaN where a view was not taken (``Verifier._gather``)
    views: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    # (margins, n, g, g, D) the views' patch tokens for refine (NaN where not taken), or None
    tokens: np.ndarray | None = None
    rechecked: np.ndarray | None = None  # (n,) bool: boxes whose other views count
    full: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n,) seen at every margin
    computed: int = 0


class Verifier:
    """Verifies boxes with ``model`` as ``config`` says (see the module docstring)."""

    def __init__(self, model: LoadedModel, config: VerifyConfig) -> None:
        self.model = model
        self.config = config
        self._view_tokens: tuple[int, ...] | None = None  # (g, g, D) of a view, once seen

    @property
    def second_opinion(self) -> bool:
        """Whether the other margins' views are taken only for boxes the first view is unsure of."""
        return len(self.config.margins) > 1 and self.config.recheck > 0

    @property
    def refine_weight(self) -> float:
        return self.config.refine if self.model.has_tokens else 0.0

    def run(self, todo: Sequence[ToVerify], state: PromptState) -> list[Verified]:
        """Every frame's verified boxes, in order."""
        margins = self.config.margins
        first_margins = margins[:1] if self.second_opinion else margins
        frames = [self._plan(t) for t in todo]
        crops = [self._cut(f, first_margins) for f in frames]
        emb, tokens = self._embed(np.concatenate(crops), self.refine_weight > 0)
        packed = self._pack(emb, tokens)
        at = 0
        for f, part in zip(frames, crops, strict=True):
            rows = slice(at, at + len(part))
            at += len(part)
            self._gather(f, self._spread(f, packed[rows], len(first_margins)), len(part))
        if self.second_opinion:
            self._recheck(frames, state)
        return [self._decide(f, state) for f in frames]

    # ----------------------------------------------------------------- stages

    def _plan(self, todo: ToVerify) -> _Frame:
        """The frame's boxes to verify and which of them need their views computed."""
        detections = strongest(todo.detections, self.config.max_boxes)
        n = len(detections)
        if todo.reuse is None:
            plan = ReusePlan(np.arange(n, dtype=np.int64), n, "changed")
        else:
            plan = todo.reuse.plan_views(detections.xyxy)
        full = fully_viewed(detections, len(self.config.margins), self.config.budget)
        return _Frame(todo, detections, plan, full=full)

    def _cut(self, f: _Frame, margins: tuple[float, ...]) -> np.ndarray:
        """The views to compute now: the first margin's of every box in ``f.plan.compute``, then
        (margin-major) the other ``margins``' of those of them seen at every margin."""
        boxes = f.detections.xyxy[f.plan.compute]
        size, fill = self.model.image_size, self.model.fill
        first = box_views(f.todo.frame, boxes, size, fill, margins[:1])
        if len(margins) == 1:
            return first
        full = f.full[f.plan.compute]
        rest = box_views(f.todo.frame, boxes[full], size, fill, margins[1:])
        return np.concatenate([first, rest])

    def _pack(self, emb: np.ndarray, tokens: np.ndarray | None) -> np.ndarray:
        """One row per view: its (D,) embedding, then (with tokens) its flattened patch tokens,
        so that spreading, reuse and rechecks move a view's tokens with its embedding."""
        if tokens is None:
            return emb
        flat = tokens.reshape(len(tokens), int(np.prod(tokens.shape[1:])))
        return np.concatenate([emb, flat], axis=1)

    def _spread(self, f: _Frame, emb: np.ndarray, taken: int) -> np.ndarray:
        """``_cut``'s (packed) embeddings laid out as (taken margins x the computed boxes, width),
        margin-major, NaN where a box was not seen at a margin."""
        m = len(f.plan.compute)
        full = np.flatnonzero(f.full[f.plan.compute])
        if taken == 1 or len(full) == m:
            return emb
        out = np.full((taken, m, emb.shape[1]), np.nan, np.float32)
        out[0] = emb[:m]
        out[1:, full] = emb[m:].reshape(taken - 1, len(full), emb.shape[1])
        return out.reshape(taken * m, -1)

    def _gather(self, f: _Frame, packed: np.ndarray, computed: int) -> None:
        """Every box's views from those just computed (margin-major ``_pack``ed rows of the boxes
        in ``f.plan.compute``, NaN where not taken; ``computed`` views in all) and those its
        stream kept (a kept box keeps its views' tokens too: they are columns of their rows)."""
        margins, m, n = len(self.config.margins), len(f.plan.compute), len(f.detections)
        width = packed.shape[1]
        taken = len(packed) // m if m else margins
        if taken < margins:  # the other views are not taken yet
            nans = np.full(((margins - taken) * m, width), np.nan, np.float32)
            packed = np.concatenate([packed, nans])
        f.computed = computed
        reuse = f.todo.reuse
        if reuse is not None and n:
            packed = reuse.merge_views(f.plan, f.detections.xyxy, packed)
        self._unpack(f, packed.reshape(margins, n, width))

    def _unpack(self, f: _Frame, packed: np.ndarray) -> None:
        """``f.views`` and (when the rows carry them) ``f.tokens`` from (margins, n, width) rows."""
        dim = self.model.encoders.embed_dim
        f.views = packed[..., :dim]
        if packed.shape[-1] > dim and self._view_tokens is not None:
            f.tokens = packed[..., dim:].reshape(*packed.shape[:2], *self._view_tokens)

    def _recheck(self, frames: list[_Frame], state: PromptState) -> None:
        """The other margins' views of every box whose first view is at least ``recheck`` for
        its prompt, all frames' in one batch; views a stream kept are not cut again."""
        others = self.config.margins[1:]
        needs, crops = [], []
        for f in frames:
            first = self._own_probs(f, f.views[0], state)
            f.rechecked = (first >= self.config.recheck) & f.full
            missing = np.isnan(f.views[1:, :, 0]).any(axis=0)
            need = np.flatnonzero(f.rechecked & missing)
            needs.append(need)
            crops.append(
                box_views(
                    f.todo.frame,
                    f.detections.xyxy[need],
                    self.model.image_size,
                    self.model.fill,
                    others,
                )
            )
        pixels = np.concatenate(crops)
        if len(pixels) == 0:
            return
        # the first views' graph again (with tokens when they had them, for refine): on a CPU
        # every ONNX Runtime session has its own threads, and waking a second session's threads
        # cost the pipeline milliseconds a frame with the decoder and encoder on the same cores
        packed = self._pack(*self._embed(pixels, self.refine_weight > 0))
        dim = self.model.encoders.embed_dim
        at = 0
        for f, need in zip(frames, needs, strict=True):
            rows = packed[at : at + len(others) * len(need)].reshape(len(others), len(need), -1)
            at += len(others) * len(need)
            f.views[1:, need] = rows[..., :dim]
            if f.tokens is not None:
                f.tokens[1:, need] = rows[..., dim:].reshape(*rows.shape[:2], *f.tokens.shape[2:])
            f.computed += len(others) * len(need)
            if f.todo.reuse is not None and len(need):
                f.todo.reuse.keep_later_views(f.detections.xyxy[need], rows)

    def _decide(self, f: _Frame, state: PromptState) -> Verified:
        """Refine (``verify_refine``) and rescore the frame's boxes with the views they have."""
        detections = f.detections
        if f.tokens is not None:
            detections = self._refine(f.todo.frame, detections, f.tokens, state)
        margins, n = len(self.config.margins), len(detections)
        seen, rescue = None, None
        views = f.views.reshape(margins * n, -1)
        if f.rechecked is not None:  # a second opinion: views not taken are masked out
            seen = np.ones((margins, n), bool)
            seen[1:] = f.rechecked
            views = np.where(seen.reshape(-1, 1), views, 0.0)
            rescue = self.config.recheck_floor
        elif np.isnan(f.views[:, :, 0]).any():  # past ``verify_budget``: the first view only
            seen = ~np.isnan(f.views[:, :, 0])
            seen[0] = True
            views = np.where(seen.reshape(-1, 1), views, 0.0)
        probs = prompt_vs_background(
            views, state.embeddings, state.background, self.model.logit_scale
        )
        kept = rescore(
            detections,
            probs,
            self.config.floor,
            seen=seen,
            recheck_floor=rescue,
            combine=self.config.combine,
            trust=self.config.trust,
        )
        if f.tokens is not None:  # boxes moved by their views may now lie in one another
            kept = drop_contained(kept)
        used = margins * n if seen is None else int(seen.sum())
        return Verified(kept, f.computed, used - f.computed)

    # ----------------------------------------------------------------- helpers

    def _own_probs(self, f: _Frame, views: np.ndarray, state: PromptState) -> np.ndarray:
        """(n,) each box's own prompt's probability in one view per box ((n, D) embeddings)."""
        n = len(f.detections)
        if n == 0:
            return np.zeros(0, np.float32)
        probs = prompt_vs_background(
            views, state.embeddings, state.background, self.model.logit_scale
        )
        return probs[np.arange(n), f.detections.class_id]

    def _embed(self, pixels: np.ndarray, with_tokens: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The views' (N, D) embeddings and, ``with_tokens``, their (N, g, g, D) patch tokens
        (N may be 0: every box kept its crops; no model run then once the token grid is known)."""
        dim = self.model.encoders.embed_dim
        if with_tokens and (len(pixels) or self._view_tokens is None):
            emb, tokens = self.model.embed_images_dense(pixels)
            self._view_tokens = tokens.shape[1:]
            return emb, tokens
        if len(pixels) == 0:
            empty = None if not with_tokens else np.zeros((0, *self._view_tokens), np.float32)
            return np.zeros((0, dim), np.float32), empty
        return self.model.embed_images(pixels), None

    def _refine(
        self, frame: np.ndarray, detections: Detections, tokens: np.ndarray, state: PromptState
    ) -> Detections:
        """The boxes moved towards what their views' (margins, n, g, g, D) tokens show, each for
        its own prompt: the first view's, blended with the second's where a box was seen in it
        and ``verify_refine_second`` > 0 (``verify.refine_in_views``)."""
        margins, share = self.config.margins, self.config.refine_second
        n = len(detections)
        if n == 0:
            return detections
        second = None
        if len(margins) > 1 and share > 0:
            second = (self._own_token_maps(tokens[1], detections, state), margins[1])
        own = self._own_token_maps(tokens[0], detections, state)
        return refine_in_views(
            detections, own, margins[0], self.refine_weight, frame.shape[:2], second, share
        )

    def _own_token_maps(
        self, tokens: np.ndarray, detections: Detections, state: PromptState
    ) -> np.ndarray:
        """(n, g, g) each box's own prompt on its view's (n, g, g, D) tokens: log-odds against
        the background prompts, rescaled to each view's range (``verify.relative_maps``); 0 for
        views not taken (NaN tokens)."""
        n, g, _, d = tokens.shape
        taken = ~np.isnan(tokens[:, 0, 0, 0])
        log_odds = np.full((n, g, g), np.nan, np.float32)
        if taken.any():
            own = prompt_log_odds(
                tokens[taken].reshape(-1, d),
                state.embeddings,
                state.background,
                self.model.logit_scale,
            ).reshape(-1, g, g, len(state.embeddings))
            log_odds[taken] = own[np.arange(len(own)), :, :, detections.class_id[taken]]
        return relative_maps(log_odds)
