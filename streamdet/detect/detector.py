"""The Detector: text prompts in, boxes and heatmaps out, for one frame or several at once.

Per frame: validate the frame, cut all windows in one vectorised step (or, ``dense``, prepare the
whole frame), run the image tower over all of them as one batch (split only above ``max_batch``),
score the embeddings against the cached prompt embeddings into heatmaps
(``streamdet.detect.heatmaps``), extract boxes, and (``verify``) score crops around each box again
in one more small batch. ``detect_many`` does the same for frames of several streams (cameras)
with one tower call per stage for all of them. With temporal reuse (``reuse``,
``streamdet.detect.reuse``) only the windows whose pixels changed go through the tower; the others
keep their embeddings from an earlier frame of the same stream.
Prompts are embedded once; ``set_prompts`` swaps them between frames by replacing one reference, so
a running detector never sees half a prompt change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.config import DetectorConfig, ModelFacts, resolve_config
from streamdet.config.checks import fraction
from streamdet.detect.boxes import heatmaps_to_detections
from streamdet.detect.dense import DenseGrid
from streamdet.detect.frames import as_bgr
from streamdet.detect.heatmaps import (
    PromptState,
    fine_heatmaps,
    occlusion_heatmaps,
    token_heatmaps,
    window_heatmaps,
)
from streamdet.detect.model import DEFAULT_MODEL, LoadedModel, find_model
from streamdet.detect.occlusion import occluded_batch
from streamdet.detect.onepass import FrameGrid, token_px
from streamdet.detect.prompts import normalise_prompts
from streamdet.detect.reuse import ReusePlan, WindowReuse
from streamdet.detect.sizes import SizedPrompt, keep_sized, split_size
from streamdet.detect.verifier import ToVerify, Verifier
from streamdet.detect.windows import WindowGrid, crop_windows
from streamdet.detect.zoom import ZoomRegion, fine_shape, paste, plan_regions, resample
from streamdet.errors import ConfigError, PromptError
from streamdet.types import Detections, FrameResult, Timings, Workload

log = logging.getLogger("streamdet")


@dataclass
class _Stream:
    """What the detector keeps of one stream between frames (temporal reuse)."""

    reuse: WindowReuse | None
    frame_tokens: np.ndarray | None = None  # the dense method's last pass, with reuse
    zoom: tuple[tuple[ZoomRegion, ...], list[np.ndarray | None]] | None = None  # its crops


@dataclass
class _Job:
    """One frame on its way through ``detect_many``: filled in stage by stage."""

    frame: np.ndarray
    stream: _Stream
    plan: ReusePlan | None = None  # windows: which to compute (reuse)
    pixels: np.ndarray | None = None  # what goes through the tower (None: nothing)
    corners: np.ndarray | None = None  # windows cut on the device instead of ``pixels``
    emb: np.ndarray | None = None
    tokens: np.ndarray | None = None
    heatmaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    patch: int = 1
    detections: Detections = field(default_factory=Detections.empty)
    work: Workload = field(default_factory=Workload)


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
        self._zoom_px_for = lru_cache(maxsize=8)(self._zoom_token_px)
        self._verifier = Verifier(self.model, cfg.verify)
        self._streams: dict[Hashable, _Stream] = {}  # by stream key; None: ``detect``'s
        templates = cfg.scoring.templates
        background = cfg.scoring.background_prompts
        dim = self.model.encoders.embed_dim
        self._background_all = (
            self.model.texts.embed_templated(background, templates)
            if background
            else np.zeros((0, dim), np.float32)
        )
        empty = np.zeros((0, dim), np.float32)
        self._state = PromptState((), (), empty, self._background_all, np.zeros(0, np.float32))
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
        self._state = PromptState(
            prompts=texts,
            sized=sized,
            embeddings=embeddings,
            background=self._background_all[keep],
            thresholds=self._thresholds_for(texts),
        )

    def reset(self) -> None:
        """Forget the embeddings kept for temporal reuse: call it between unrelated streams
        (a new frame size does it by itself). Prompts and settings stay."""
        self._streams.clear()

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
        return self.detect_many([frame])[0]

    def detect_many(
        self, frames: Sequence[np.ndarray], streams: Sequence[Hashable] | None = None
    ) -> list[FrameResult]:
        """Find every prompt in several frames at once, one result per frame, in order.

        The image tower runs once for all of them: the frames' windows (or same-sized whole
        frames, ``dense``) in one batch, then every frame's verification crops in one more.
        streams: which stream each frame comes from (any hashable key; default: the one stream
        ``detect`` uses). Temporal reuse compares a frame only with earlier frames of its own
        stream, so frames of several cameras can be batched; one stream may appear once per
        call. Each result's timings are the batch's: the time each frame waited for its result.
        """
        state = self._state  # read once: a concurrent set_prompts applies from the next call
        if not state.prompts:
            raise PromptError("no prompts set; call set_prompts(['a red car', ...]) first")
        keys = [None] * len(frames) if streams is None else list(streams)
        if len(keys) != len(frames) or len(set(keys)) != len(keys):
            raise ValueError("streams must name each frame's stream, each stream at most once")
        t0 = time.perf_counter()
        jobs = [self._job(as_bgr(f), self._stream(k)) for f, k in zip(frames, keys, strict=True)]
        t1 = time.perf_counter()
        self._encode(jobs)
        t2 = time.perf_counter()
        for job in jobs:
            self._heat(job, state)
        t3 = time.perf_counter()
        if any(self._zoom_px_for(*j.frame.shape[:2]) for j in jobs):
            self._zoom(jobs, state)
        t3z = time.perf_counter()
        for job in jobs:
            h, w = job.frame.shape[:2]
            found = heatmaps_to_detections(
                job.heatmaps,
                state.thresholds,
                job.patch,
                (h, w),
                per_region=self.config.scoring.scoring != "reference",
                iou_threshold=self.config.boxes.nms_iou,
                peak_ratio=self.config.boxes.peak_ratio,
                refine=self.config.boxes.refine,
                split=self.config.boxes.split,
            )
            job.detections = keep_sized(found, state.sized, (h, w))
        t4 = t5 = time.perf_counter()
        if self.config.verify.enabled and any(len(j.detections) for j in jobs):
            self._verify(jobs, state)
            t5 = time.perf_counter()
        timings = Timings(
            preprocess_ms=(t1 - t0) * 1e3,
            encode_ms=(t2 - t1 + t3z - t3) * 1e3,
            score_ms=(t3 - t2) * 1e3,
            boxes_ms=(t4 - t3z) * 1e3,
            verify_ms=(t5 - t4) * 1e3,
        )
        return [
            FrameResult(
                j.detections, j.heatmaps, state.prompts, j.frame.shape[:2], j.patch, timings, j.work
            )
            for j in jobs
        ]

    def _stream(self, key: Hashable) -> _Stream:
        """The reuse state of one stream, made on first use."""
        if key not in self._streams:
            cfg = self.config
            reuse = (
                WindowReuse(cfg.reuse, self.model.fill, cfg.verify.margins)
                if cfg.reuse.enabled and cfg.scoring.method in ("windows", "dense")
                else None
            )
            self._streams[key] = _Stream(reuse)
        return self._streams[key]

    def _job(self, frame: np.ndarray, stream: _Stream) -> _Job:
        """What this frame needs from the image tower: its pixels, or nothing where temporal
        reuse keeps the last embeddings (``WindowReuse.frame_changed`` / ``plan``)."""
        h, w = frame.shape[:2]
        job = _Job(frame, stream)
        size, fill, reuse = self.model.image_size, self.model.fill, stream.reuse
        method = self.config.scoring.method
        if method == "dense":
            changed = reuse is None or reuse.frame_changed(frame, self.grid(h, w))
            if changed or stream.frame_tokens is None:
                job.pixels = self.frame_grid(h, w).pixels(frame, fill)
            return job
        grid = self.grid(h, w)
        job.plan = reuse.plan(frame, grid) if reuse is not None else None
        only = None if job.plan is None or job.plan.reused == 0 else job.plan.compute
        if only is not None and len(only) == 0:
            return job  # nothing changed: every embedding is kept
        if self.crop_on_device:  # the frame crosses to the device once; windows are cut there
            job.corners = grid.corners() if only is None else grid.corners()[only]
        elif method == "windows":
            job.pixels = crop_windows(frame, grid, size, fill, only)  # (N or changed, S, S, 3)
        else:
            job.pixels = occluded_batch(frame, grid, size, fill)  # (1 + N, S, S, 3)
        return job

    def _encode(self, jobs: list[_Job]) -> None:
        """Run the image tower for every job that needs it, batched across jobs: whole frames
        of one size together (``dense``), every job's windows together (``windows``)."""
        cfg, model = self.config.scoring, self.model
        if cfg.method == "dense":
            by_shape: dict[tuple[int, ...], list[_Job]] = {}
            for job in jobs:
                if job.pixels is not None:
                    by_shape.setdefault(job.pixels.shape, []).append(job)
            for group in by_shape.values():
                tokens = model.embed_frames(np.stack([j.pixels for j in group]), cfg.dense_head)
                for job, t in zip(group, tokens, strict=True):
                    job.tokens = t  # (rows, cols, D)
            return
        todo = [j for j in jobs if j.pixels is not None or j.corners is not None]
        if self.crop_on_device:
            for job in todo:
                job.emb, job.tokens = model.embed_windows(job.frame, job.corners, dense=cfg.dense)
        elif todo:
            pixels = np.concatenate([j.pixels for j in todo])
            if cfg.dense:
                emb, tokens = model.embed_images_dense(pixels)  # (N, D), (N, g, g, D)
            else:
                emb, tokens = model.embed_images(pixels), None  # (N, D)
            at = np.cumsum([0] + [len(j.pixels) for j in todo])
            for job, a, b in zip(todo, at[:-1], at[1:], strict=True):
                job.emb = emb[a:b]
                job.tokens = None if tokens is None else tokens[a:b]

    def _heat(self, job: _Job, state: PromptState) -> None:
        """The job's heatmaps and cell size, and the work its frame took."""
        h, w = job.frame.shape[:2]
        scale, reference = self.model.logit_scale, self.config.scoring.scoring == "reference"
        stream = job.stream
        if self.config.scoring.method == "dense":
            if job.tokens is not None:
                stream.frame_tokens = job.tokens if stream.reuse is not None else None
                job.work = Workload(frames_computed=1)
            else:
                job.tokens = stream.frame_tokens
                job.work = Workload(frames_reused=1)
            job.heatmaps = token_heatmaps(job.tokens, state, scale, reference)
            job.patch = self.frame_grid(h, w).token_px
            return
        grid = self.grid(h, w)
        emb, tokens = job.emb, job.tokens
        if job.plan is not None and stream.reuse is not None:
            emb, tokens = stream.reuse.merge(job.plan, emb, tokens)  # every window's
        assert emb is not None
        if tokens is not None:
            dense_grid = self._dense_grid_for(h, w, tokens.shape[1])
            peak = self.config.boxes.peak_ratio
            job.heatmaps = fine_heatmaps(emb, tokens, dense_grid, state, scale, peak)
            job.patch = dense_grid.patch
        elif self.config.scoring.method == "windows":
            job.heatmaps = window_heatmaps(emb, grid, state, scale, reference)
            job.patch = grid.patch
        else:
            job.heatmaps = occlusion_heatmaps(emb, grid, state, scale, reference)
            job.patch = grid.patch
        computed = len(emb) if job.plan is None else len(job.plan.compute)
        job.work = Workload(windows_computed=computed, windows_reused=len(emb) - computed)

    def _build_frame_grid(self, height: int, width: int) -> FrameGrid:
        head = self.config.scoring.dense_head
        model_patch = self.model.frame_patch(head)
        px = token_px(self.config.grid, self.model.image_size, model_patch, max(height, width))
        return FrameGrid(height, width, px, model_patch)

    def _zoom_token_px(self, height: int, width: int) -> int:
        """Frame pixels per token of the dense method's second pass over frames of this size;
        0 where it has none (another method, no ``zoom_scale``, or tokens no finer than the
        first pass's)."""
        cfg = self.config
        if cfg.scoring.method != "dense" or not cfg.grid.zooms:
            return 0
        model_patch = self.model.frame_patch(cfg.scoring.dense_head)
        longer = max(height, width)
        coarse = token_px(cfg.grid, self.model.image_size, model_patch, longer)
        fine_grid = replace(cfg.grid, token_scale=cfg.grid.zoom_scale)
        fine = token_px(fine_grid, self.model.image_size, model_patch, longer)
        return fine if fine < coarse else 0

    def _zoom(self, jobs: list[_Job], state: PromptState) -> None:
        """The dense method's second pass (``streamdet.detect.zoom``): each job's heatmaps move
        to the finer cells, and the crops around its candidates go through the frame tower
        again with finer tokens, one crop a run (each input shape, batch size included, is a
        session of its own, and on a CPU a batch gains nothing). A frame whose first pass was
        kept (temporal reuse) keeps its crops' tokens too while its crops stay the same."""
        cfg, model = self.config, self.model
        head, patch = cfg.scoring.dense_head, model.frame_patch(cfg.scoring.dense_head)
        planned: list[tuple[_Job, tuple[ZoomRegion, ...], list[np.ndarray | None]]] = []
        for job in jobs:
            h, w = job.frame.shape[:2]
            fine_px = self._zoom_px_for(h, w)
            if not fine_px:  # this frame's first pass is no coarser than the second's
                continue
            job.heatmaps = resample(job.heatmaps, job.patch, fine_px, fine_shape((h, w), fine_px))
            job.patch = fine_px
            regions = plan_regions(job.heatmaps, cfg.grid.zoom_level, cfg.grid.zoom_margin)
            kept = job.stream.zoom
            if job.work.frames_reused and kept is not None and kept[0] == regions:
                planned.append((job, regions, kept[1]))
                job.work = replace(job.work, zoom_reused=len(regions))
                continue
            tokens: list[np.ndarray | None] = [None] * len(regions)
            planned.append((job, regions, tokens))
            job.stream.zoom = (regions, tokens) if job.stream.reuse is not None else None
            job.work = replace(job.work, zoom_computed=len(regions))
            for i, region in enumerate(regions):
                y0, x0, y1, x1 = region.pixels(fine_px, (h, w))
                crop = FrameGrid(y1 - y0, x1 - x0, fine_px, patch)
                pixels = crop.pixels(job.frame[y0:y1, x0:x1], model.fill)
                tokens[i] = model.embed_frames(pixels[None], head)[0]
        scale, reference = model.logit_scale, cfg.scoring.scoring == "reference"
        for job, regions, tokens in planned:
            for region, t in zip(regions, tokens, strict=True):
                assert t is not None
                paste(job.heatmaps, region, token_heatmaps(t, state, scale, reference))

    def frame_grid(self, height: int, width: int) -> FrameGrid:
        """How frames of this size go through the frame tower (``dense`` method; cached)."""
        return self._frame_grid_for(height, width)

    def _verify(self, jobs: list[_Job], state: PromptState) -> None:
        """Re-score every box by crops around it, the crops of every job in one batch
        (``streamdet.detect.verifier``: reuse, second opinions, ``verify_refine``); each job
        keeps the boxes that hold, and counts its crops."""
        todo = [ToVerify(j.frame, j.detections, j.stream.reuse) for j in jobs]
        for job, done in zip(jobs, self._verifier.run(todo, state), strict=True):
            job.detections = done.detections
            job.work = replace(job.work, views_computed=done.computed, views_reused=done.reused)
