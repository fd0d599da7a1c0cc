"""The Detector: text prompts in, boxes and heatmaps out, one frame at a time.

Per frame (shapes as comments in ``detect``): validate the frame, cut all windows in one vectorised
step, run the image tower over all of them as one batch (split only above ``max_batch``), score the
window embeddings against the cached prompt embeddings, average into cell heatmaps, extract boxes,
and (``verify``) score a crop around each box again in one more small batch. With temporal reuse
(``reuse``, ``streamdet.detect.reuse``) only the windows whose pixels changed go through the tower;
the others keep their embeddings from an earlier frame.
Prompts are embedded once; ``set_prompts`` swaps them between frames by replacing one reference, so
a running detector never sees half a prompt change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.config import DetectorConfig, ModelFacts, resolve_config
from streamdet.config.checks import fraction
from streamdet.detect.boxes import heatmaps_to_detections
from streamdet.detect.dense import DenseGrid
from streamdet.detect.frames import as_bgr
from streamdet.detect.model import DEFAULT_MODEL, LoadedModel, find_model
from streamdet.detect.occlusion import occluded_batch, occlusion_drops
from streamdet.detect.onepass import FrameGrid, token_px
from streamdet.detect.prompts import normalise_prompts
from streamdet.detect.reuse import ReusePlan, WindowReuse
from streamdet.detect.scoring import prompt_vs_background, reference_normalise, window_logits
from streamdet.detect.sizes import SizedPrompt, keep_sized, split_size
from streamdet.detect.verify import box_views, rescore, strongest
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.errors import ConfigError, PromptError
from streamdet.types import Detections, FrameResult, Timings, Workload

log = logging.getLogger("streamdet")

#: Dense heatmaps skip windows whose probability is at most this for every prompt (and at most
#: the lowest level a box is cut at): they cannot raise a cell to where it matters.
DENSE_FLOOR = 0.05


@dataclass(frozen=True)
class _PromptState:
    """Prompts with everything derived from them; replaced as a whole by ``set_prompts``."""

    prompts: tuple[str, ...]
    sized: tuple[SizedPrompt, ...]  # what the model scores, and the frame size boxes must have
    embeddings: np.ndarray  # (K, D)
    background: np.ndarray  # (B, D), background prompts that are not among the prompts
    thresholds: np.ndarray  # (K,)


class Detector:
    """Zero-shot, text-prompted object detector over sliding windows (or occlusion).

    model: an exported streamdet folder, a local Hugging Face CLIP folder, a hub id such as
        ``openai/clip-vit-base-patch32``, or the built-in ``streamdet/scenes-clip``.
    prompts: what to look for, e.g. ``["a red car", "a person"]``; a single string is one prompt.
    config: a resolved ``streamdet.config.DetectorConfig`` to start from (e.g. another
        detector's ``config``) instead of the built-in defaults and the model's suggestions.
    preset: a named preset applied above the model's suggestions (``streamdet.config.PRESETS``:
        ``model``, the default; ``fast``; ``writeup``).
    overrides: any setting by its flat name (``stride=2``, ``threshold={"a car": 0.4}``,
        ``device="cuda"``); see ``streamdet.config.settings`` for every setting and its default.

    Settings are layered built-in < model (its meta.json) < preset < overrides and checked
    before any graph is loaded (``streamdet.config.resolve``); ``detector.config`` is the
    result, with the layer each value came from.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        prompts: str | Iterable[str] = (),
        *,
        config: DetectorConfig | None = None,
        preset: str | None = None,
        **overrides: Any,
    ) -> None:
        # Everything the settings alone can break is refused before the model is touched.
        early = resolve_config(overrides, preset=preset, base=config)
        found = find_model(model, cache_dir=early.runtime.cache_dir)
        facts = ModelFacts.from_meta(found.meta)
        self.config = resolve_config(overrides, preset=preset, model=facts, base=config)
        self.model = LoadedModel.open(found, self.config.runtime)
        if facts.has_tokens is None and not self.model.has_tokens:
            # an export too old to say whether it has tokens: now the graph has told
            facts = ModelFacts(facts.suggestions, has_tokens=False)
            self.config = resolve_config(overrides, preset=preset, model=facts, base=config)
        cfg = self.config
        crop_on_device = cfg.runtime.crop_on_device
        if crop_on_device is None:
            crop_on_device = self.model.encoders.device != "cpu"
        self.crop_on_device = crop_on_device and cfg.scoring.method == "windows"
        self._dense_grid_for = lru_cache(maxsize=8)(self._build_dense_grid)
        self._grid_for = lru_cache(maxsize=8)(self._build_grid)
        self._frame_grid_for = lru_cache(maxsize=8)(self._build_frame_grid)
        self._reuse = (
            WindowReuse(cfg.reuse, self.model.fill, cfg.verify.margins)
            if cfg.reuse.enabled and cfg.scoring.method in ("windows", "dense")
            else None
        )
        self._frame_tokens: np.ndarray | None = None  # the dense method's last pass, with reuse
        templates = cfg.scoring.templates
        background = cfg.scoring.background_prompts
        dim = self.model.encoders.embed_dim
        self._background_all = (
            self.model.texts.embed_templated(background, templates)
            if background
            else np.zeros((0, dim), np.float32)
        )
        empty = np.zeros((0, dim), np.float32)
        self._state = _PromptState((), (), empty, self._background_all, np.zeros(0, np.float32))
        self._chosen_thresholds: dict[str, float] = {}  # set_prompts(thresholds=...)
        if prompts:
            self.set_prompts(prompts)

    # ----------------------------------------------------------------- configuration

    def _thresholds_for(self, prompts: tuple[str, ...]) -> np.ndarray:
        boxes, chosen = self.config.boxes, self._chosen_thresholds
        return np.asarray([chosen.get(p, boxes.for_prompt(p)) for p in prompts], np.float32)

    @property
    def prompts(self) -> tuple[str, ...]:
        return self._state.prompts

    @property
    def thresholds(self) -> np.ndarray:
        return self._state.thresholds.copy()

    @property
    def provider(self) -> str:
        """What really runs the image tower: an ONNX Runtime execution provider
        (``CUDAExecutionProvider``) or PyTorch and its device (``torch-cuda``)."""
        return self.model.encoders.provider

    def prompt_thresholds(self) -> dict[str, float]:
        """Each prompt's box threshold, read from one prompt state (consistent with a
        concurrent ``set_prompts``)."""
        state = self._state
        return {p: float(t) for p, t in zip(state.prompts, state.thresholds, strict=True)}

    def set_prompts(
        self, prompts: str | Iterable[str], thresholds: Mapping[str, float] | None = None
    ) -> None:
        """Replace the prompts. Known prompts cost nothing; new ones one text-tower batch.

        thresholds: box thresholds (0..1) for some of the prompts, e.g. ``{"a car": 0.4}``;
        they are kept for those prompts from now on (also across later calls), above the
        configuration's ``threshold``/``prompt_thresholds``. Checked before anything changes.
        """
        texts = normalise_prompts(prompts)
        if not texts:
            raise PromptError("no prompts given; pass at least one, e.g. ['a red car']")
        chosen = dict(self._chosen_thresholds)
        for key, value in (thresholds or {}).items():
            name = " ".join(key.split()) if isinstance(key, str) else key
            if name not in texts:
                raise ConfigError(f"thresholds names {key!r}, which is not one of the prompts")
            chosen[name] = fraction(f"the threshold of '{name}'", value)
        sized = tuple(
            split_size(t) if self.config.scoring.frame_sizes else SizedPrompt(t, None)
            for t in texts
        )
        scored = [p.text for p in sized]
        embeddings = self.model.texts.embed_templated(
            scored, self.config.scoring.templates
        )  # (K, D)
        keep = [i for i, b in enumerate(self.config.scoring.background_prompts) if b not in scored]
        self._chosen_thresholds = chosen
        self._state = _PromptState(
            prompts=texts,
            sized=sized,
            embeddings=embeddings,
            background=self._background_all[keep],
            thresholds=self._thresholds_for(texts),
        )

    def reset(self) -> None:
        """Forget the embeddings kept for temporal reuse: call it between unrelated streams
        (a new frame size does it by itself). Prompts and settings stay."""
        if self._reuse is not None:
            self._reuse.reset()
        self._frame_tokens = None

    def _build_grid(self, height: int, width: int) -> WindowGrid:
        return WindowGrid.build(height, width, self.config.grid)

    def grid(self, height: int, width: int) -> WindowGrid:
        """The window grid for frames of this size (cached: frames of a video share it)."""
        return self._grid_for(height, width)

    def _build_dense_grid(self, height: int, width: int, token_side: int) -> DenseGrid:
        return DenseGrid.build(self.grid(height, width), token_side)

    # ----------------------------------------------------------------- detection

    def detect(self, frame: np.ndarray) -> FrameResult:
        """Find every prompt in one HxWx3 uint8 BGR frame."""
        state = self._state  # read once: a concurrent set_prompts applies from the next frame
        if not state.prompts:
            raise PromptError("no prompts set; call set_prompts(['a red car', ...]) first")
        t0 = time.perf_counter()
        frame = as_bgr(frame)
        h, w = frame.shape[:2]
        if self.config.scoring.method == "dense":
            heatmaps, patch, clock, work = self._one_pass(frame, state)
            return self._finish(frame, heatmaps, patch, clock, state, t0, work)
        grid = self.grid(h, w)
        size, fill = self.model.image_size, self.model.fill
        plan = self._reuse.plan(frame, grid) if self._reuse is not None else None
        only = None if plan is None or plan.reused == 0 else plan.compute  # None: every window
        if only is not None and len(only) == 0:
            t1 = time.perf_counter()
            emb, tokens = None, None  # nothing changed: every embedding is kept
        elif self.crop_on_device:
            # the frame crosses to the device once; windows are cut there (streamdet.clip.crops)
            corners = grid.corners() if only is None else grid.corners()[only]
            t1 = time.perf_counter()
            emb, tokens = self.model.embed_windows(frame, corners, dense=self.config.scoring.dense)
        else:
            if self.config.scoring.method == "windows":
                pixels = crop_windows(frame, grid, size, fill, only)  # (N or changed, S, S, 3)
            else:
                pixels = occluded_batch(frame, grid, size, fill)  # (1 + N, S, S, 3)
            t1 = time.perf_counter()
            if self.config.scoring.dense:
                emb, tokens = self.model.embed_images_dense(pixels)  # (N, D), (N, g, g, D)
            else:
                emb, tokens = self.model.embed_images(pixels), None  # (N or 1 + N, D)
        if plan is not None and self._reuse is not None:
            emb, tokens = self._reuse.merge(plan, emb, tokens)  # every window's, kept or new
        t2 = time.perf_counter()
        assert emb is not None
        if tokens is not None:
            dense_grid = self._dense_grid_for(h, w, tokens.shape[1])
            heatmaps = self._dense_heatmaps(emb, tokens, dense_grid, state)  # (K, fine r, fine c)
            patch = dense_grid.patch
        else:
            heatmaps = self._heatmaps(emb, grid, state)  # (K, rows, cols) in [0, 1]
            patch = grid.patch
        computed = len(emb) if plan is None else len(plan.compute)
        work = Workload(windows_computed=computed, windows_reused=len(emb) - computed)
        return self._finish(frame, heatmaps, patch, (t0, t1, t2), state, t0, work)

    def _one_pass(
        self, frame: np.ndarray, state: _PromptState
    ) -> tuple[np.ndarray, int, tuple[float, float, float], Workload]:
        """The ``dense`` method: the whole frame through the frame tower once; (K, rows, cols)
        heatmaps of ``token_px`` cells, their cell size, the stage clock and the work done.

        With reuse, the frame's picture is compared with the one of the last computed pass
        (``WindowReuse.frame_changed``): when no block changed beyond the tolerance, the last
        pass's tokens are kept and the tower is skipped."""
        t0 = time.perf_counter()
        h, w = frame.shape[:2]
        fg = self.frame_grid(h, w)
        changed = self._reuse is None or self._reuse.frame_changed(frame, self.grid(h, w))
        kept = self._frame_tokens
        if not changed and kept is not None:
            t1 = time.perf_counter()
            tokens = kept
            work = Workload(frames_reused=1)
        else:
            pixels = fg.pixels(frame, self.model.fill)
            t1 = time.perf_counter()
            tokens = self.model.embed_frame(pixels, self.config.scoring.dense_head)  # (r, c, D)
            self._frame_tokens = tokens if self._reuse is not None else None
            work = Workload(frames_computed=1)
        t2 = time.perf_counter()
        flat = tokens.reshape(-1, tokens.shape[-1])
        scale = self.model.logit_scale
        if self.config.scoring.scoring == "reference":
            logits = window_logits(flat, state.embeddings, scale)  # (rows * cols, K)
            cells = logits.T.reshape(len(state.prompts), fg.rows, fg.cols)
            heatmaps = reference_normalise(cells)
        else:
            probs = prompt_vs_background(flat, state.embeddings, state.background, scale)
            heatmaps = probs.T.reshape(len(state.prompts), fg.rows, fg.cols).astype(np.float32)
        return heatmaps, fg.token_px, (t0, t1, t2), work

    def _build_frame_grid(self, height: int, width: int) -> FrameGrid:
        head = self.config.scoring.dense_head
        model_patch = self.model.frame_patch(head)
        px = token_px(self.config.grid, self.model.image_size, model_patch)
        return FrameGrid(height, width, px, model_patch)

    def frame_grid(self, height: int, width: int) -> FrameGrid:
        """How frames of this size go through the frame tower (``dense`` method; cached)."""
        return self._frame_grid_for(height, width)

    def _finish(
        self,
        frame: np.ndarray,
        heatmaps: np.ndarray,
        patch: int,
        clock: tuple[float, float, float],
        state: _PromptState,
        t0: float,
        work: Workload,
    ) -> FrameResult:
        """Heatmaps to boxes, size words, verification, timings: every method ends here."""
        h, w = frame.shape[:2]
        _, t1, t2 = clock
        t3 = time.perf_counter()
        detections = heatmaps_to_detections(
            heatmaps,
            state.thresholds,
            patch,
            (h, w),
            per_region=self.config.scoring.scoring != "reference",
            iou_threshold=self.config.boxes.nms_iou,
            peak_ratio=self.config.boxes.peak_ratio,
            refine=self.config.boxes.refine,
        )
        detections = keep_sized(detections, state.sized, (h, w))
        t4 = t5 = time.perf_counter()
        views = ReusePlan(np.zeros(0, np.int64), 0, "changed")
        if self.config.verify.enabled and len(detections):
            detections, views = self._verify(frame, detections, state)
            t5 = time.perf_counter()
        timings = Timings(
            preprocess_ms=(t1 - t0) * 1e3,
            encode_ms=(t2 - t1) * 1e3,
            score_ms=(t3 - t2) * 1e3,
            boxes_ms=(t4 - t3) * 1e3,
            verify_ms=(t5 - t4) * 1e3,
        )
        work = replace(
            work,
            views_computed=len(self.config.verify.margins) * len(views.compute),
            views_reused=len(self.config.verify.margins) * views.reused,
        )
        return FrameResult(detections, heatmaps, state.prompts, (h, w), patch, timings, work)

    def _verify(
        self, frame: np.ndarray, detections: Detections, state: _PromptState
    ) -> tuple[Detections, ReusePlan]:
        """Re-score every box by crops around it (``streamdet.detect.verify``), in one batch;
        with reuse, boxes found again where their crops did not change keep their crops'
        embeddings. Returns the boxes kept and which boxes' crops were computed."""
        detections = strongest(detections)
        xyxy = detections.xyxy
        if self._reuse is None:
            plan = ReusePlan(np.arange(len(xyxy), dtype=np.int64), len(xyxy), "changed")
        else:
            plan = self._reuse.plan_views(xyxy)
        size, fill = self.model.image_size, self.model.fill
        if len(plan.compute):
            margins = self.config.verify.margins
            emb = self.model.embed_images(box_views(frame, xyxy[plan.compute], size, fill, margins))
        else:
            emb = np.zeros((0, self.model.encoders.embed_dim), np.float32)
        if self._reuse is not None:
            emb = self._reuse.merge_views(plan, xyxy, emb)  # (views * n, D)
        probs = prompt_vs_background(
            emb, state.embeddings, state.background, self.model.logit_scale
        )
        return rescore(detections, probs, self.config.verify.floor), plan

    def _dense_heatmaps(
        self, emb: np.ndarray, tokens: np.ndarray, dense_grid: DenseGrid, state: _PromptState
    ) -> np.ndarray:
        """Fine heatmaps: window probability x patch probability, max over covering windows."""
        scale = self.model.logit_scale
        probs = prompt_vs_background(emb, state.embeddings, state.background, scale)  # (N, K)
        probs = dense_grid.context_gate(probs)  # small windows only as sure as their context
        lowest = float(state.thresholds.min()) * (self.config.boxes.peak_ratio or 1.0)
        active = np.flatnonzero(probs.max(axis=1) > min(DENSE_FLOOR, lowest))
        side, dim = tokens.shape[1], tokens.shape[3]
        flat = tokens[active].reshape(-1, dim)  # (n_active * g * g, D)
        patch_probs = prompt_vs_background(flat, state.embeddings, state.background, scale)
        patch_probs = patch_probs.reshape(len(active), side, side, len(state.prompts))
        return dense_grid.heatmaps(active, probs[active], patch_probs, len(state.prompts))

    def _heatmaps(self, emb: np.ndarray, grid: WindowGrid, state: _PromptState) -> np.ndarray:
        scale = self.model.logit_scale
        if self.config.scoring.method == "windows":
            if self.config.scoring.scoring == "reference":
                logits = window_logits(emb, state.embeddings, scale)  # (N, K)
                return reference_normalise(grid.cell_mean(logits))
            probs = prompt_vs_background(emb, state.embeddings, state.background, scale)
            return grid.cell_mean(probs).astype(np.float32)
        # Occlusion: row 0 is the whole frame, rows 1.. the occluded copies.
        drops = occlusion_drops(window_logits(emb, state.embeddings, scale))  # (N, K)
        cells = grid.cell_mean(drops)  # (K, rows, cols)
        if self.config.scoring.scoring == "reference":
            return reference_normalise(cells)
        # Calibrated: the shape of the drop map, scaled by how likely the prompt is in the frame.
        present = prompt_vs_background(emb[:1], state.embeddings, state.background, scale)[0]
        cells = np.clip(cells, 0.0, None)
        peak = cells.reshape(len(cells), -1).max(axis=1)
        shape = np.divide(
            cells, peak[:, None, None], out=np.zeros_like(cells), where=peak[:, None, None] > 0
        )
        return (shape * present[:, None, None]).astype(np.float32)
