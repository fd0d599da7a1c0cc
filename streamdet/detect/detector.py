"""The Detector: text prompts in, boxes and heatmaps out, one frame at a time.

Per frame (shapes as comments in ``detect``): validate the frame, cut all windows in one vectorised
step, run the image tower over all of them as one batch (split only above ``max_batch``), score the
window embeddings against the cached prompt embeddings, average into cell heatmaps, extract boxes,
and (``verify``) score a crop around each box again in one more small batch.
Prompts are embedded once; ``set_prompts`` swaps them between frames by replacing one reference, so
a running detector never sees half a prompt change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from streamdet.detect.boxes import heatmaps_to_detections
from streamdet.detect.dense import DenseGrid
from streamdet.detect.frames import as_bgr
from streamdet.detect.occlusion import occluded_batch, occlusion_drops
from streamdet.detect.prompts import normalise_prompts
from streamdet.detect.scoring import (
    SCORINGS,
    prompt_vs_background,
    reference_normalise,
    window_logits,
)
from streamdet.detect.session import DEFAULT_MODEL, ModelSession
from streamdet.detect.sizes import SizedPrompt, keep_sized, split_size
from streamdet.detect.verify import DEFAULT_VERIFY_FLOOR, box_views, rescore, strongest
from streamdet.detect.windows import GridSpec, WindowGrid, crop_windows
from streamdet.errors import ConfigError, PromptError
from streamdet.types import Detections, FrameResult, Timings

log = logging.getLogger("streamdet")

METHODS = ("windows", "occlusion")
#: Window geometry when neither the caller nor the model's meta.json gives one: the write-up's.
GRID_DEFAULTS = {"patch": 64, "window": 4, "stride": 1}
#: Threshold on calibrated heatmaps when the model's meta.json suggests none.
DEFAULT_CALIBRATED_THRESHOLD = 0.5
#: Boxes keep the cells scoring at least this fraction of their region's peak (see boxes.py).
DEFAULT_PEAK_RATIO = 0.0
#: The write-up's threshold on its min-max normalised heatmap.
REFERENCE_THRESHOLD = 0.5
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


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number between 0 and 1, but got {value!r}")
    return float(value)


def _check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    out = tuple(templates)
    if not out or any(not isinstance(t, str) or t.count("{}") != 1 for t in out):
        raise ConfigError(
            f"templates must be strings with exactly one '{{}}' for the prompt, but got {out!r}"
        )
    return out


class Detector:
    """Zero-shot, text-prompted object detector over sliding windows (or occlusion).

    model: an exported streamdet folder, a local Hugging Face CLIP folder, a hub id such as
        ``openai/clip-vit-base-patch32``, or the built-in ``streamdet/scenes-clip``.
    prompts: what to look for, e.g. ``["a red car", "a person"]``; a single string is one prompt.
    patch, window, stride: cell size in pixels, window size in cells, step in cells.
    scales: extra window sizes in cells, combined with ``window`` in the same batch (default:
        the model's suggestion, else none; ``()`` for none).
    overhang: let windows hang over the frame edges (padded with the mean colour), so that cells
        at the edge are judged like the others; about 2x the windows at 640x360.
    patch, window, stride, scales, threshold, peak_ratio and overhang default to the settings the
    model's meta.json suggests (the built-in model ships the ones its quality benchmark chose),
    else to 64, 4, 1, none, 0.5, 0 and False.
    threshold: heatmap threshold for boxes, one number or ``{prompt: number}`` (others take the
        default: the model's suggestion for ``calibrated``, 0.5 for ``reference``).
    scoring: ``"calibrated"`` (default) or ``"reference"`` (see ``streamdet.detect.scoring``).
    method: ``"windows"`` (default) or ``"occlusion"``.
    background_prompts: what "no object" looks like to ``calibrated`` scoring; defaults to the
        model's own list from its meta.json.
    templates: prompt templates averaged per prompt (CLIP's prompt ensembling), e.g.
        ``["a photo of {}."]``; default ``["{}"]``: the prompt as written.
    nms_iou: boxes of one prompt overlapping a better one by more than this are dropped.
    peak_ratio: tighten each box to the cells scoring at least this fraction of the peak of its
        region (0 keeps the whole region; default: the model's suggestion, else 0).
    refine: put box edges inside their border cells, where the heatmap crosses the region's level
        (sub-cell boxes; default: the model's suggestion, else False).
    dense: fine heatmaps from each window's patch tokens (``streamdet.detect.dense``): boxes on
        cells a fraction of ``patch`` wide. Needs calibrated scoring, the windows method and an
        export with the tokens output; default: the model's suggestion (the built-in model's is
        on), else False.
    frame_sizes: read a leading size word ("a small yellow square", "a large truck") as a size in
        the frame (``streamdet.detect.sizes``): the model scores the prompt without it and only
        boxes of that size are kept; default True. False scores the prompt as written.
    verify: score crops around every box, 1.5x and 2x its size (``streamdet.detect.verify``):
        its confidence becomes region peak x best view probability, and boxes that no view
        confirms (below ``verify_floor``) are dropped, as are boxes beyond the 32 most
        confident. Needs calibrated scoring; default: the model's suggestion (the built-in
        model's is on), else False.
    verify_floor: the lowest best-view probability a verified box may have (default: the model's
        suggestion, else 0.1).
    crop_on_device: cut, resize and pad the windows where the image tower runs, so a frame
        crosses to a GPU once (``streamdet.clip.crops``); default: on when the tower runs on a
        GPU, off on the CPU (where slicing one resized frame is faster).
    device: ``"cpu"``, ``"cuda"`` or ``"tensorrt"``; allow_fallback: run on CPU when the GPU
        provider cannot load, instead of stopping.
    precision: the image tower's precision: None (the export's own, normally ``"fp32"``),
        ``"int8"`` (CPU only; ~2.5x faster, made once and cached) or ``"fp16"`` (GPU).
    backend: what runs the towers: ``"onnxruntime"``, ``"torch"`` (needs torch, transformers and
        the model's Hugging Face weights) or ``"auto"`` (default: PyTorch on CUDA when torch sees
        a GPU, else ONNX Runtime; ``streamdet.detect.session.choose_backend``).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        prompts: str | Iterable[str] = (),
        *,
        patch: int | None = None,
        window: int | None = None,
        stride: int | None = None,
        scales: Sequence[int] | None = None,
        overhang: bool | None = None,
        threshold: float | Mapping[str, float] | None = None,
        scoring: str = "calibrated",
        method: str = "windows",
        background_prompts: Sequence[str] | None = None,
        templates: Sequence[str] = ("{}",),
        nms_iou: float = 0.5,
        peak_ratio: float | None = None,
        refine: bool | None = None,
        dense: bool | None = None,
        frame_sizes: bool = True,
        verify: bool | None = None,
        verify_floor: float | None = None,
        crop_on_device: bool | None = None,
        device: str = "cpu",
        allow_fallback: bool = False,
        max_batch: int | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        precision: str | None = None,
        backend: str = "auto",
    ) -> None:
        if scoring not in SCORINGS:
            raise ConfigError(f"scoring must be one of {', '.join(SCORINGS)}, but got {scoring!r}")
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, but got {method!r}")
        # Geometry given here is checked before the model loads; the rest comes from its defaults.
        given = {"patch": patch, "window": window, "stride": stride}
        GridSpec(**{k: v for k, v in given.items() if v is not None}, scales=tuple(scales or ()))
        self.scoring = scoring
        self.method = method
        self.templates = _check_templates(templates)
        self.frame_sizes = bool(frame_sizes)
        self.nms_iou = _check_fraction("nms_iou", nms_iou)
        self._threshold_arg = self._check_threshold(threshold)
        self.session = ModelSession.open(
            model,
            device=device,
            allow_fallback=allow_fallback,
            threads=threads,
            max_batch=max_batch,
            cache_dir=cache_dir,
            precision=precision,
            backend=backend,
        )
        meta = self.session.encoders.meta
        geometry = {
            k: v if v is not None else int(meta.defaults.get(k, GRID_DEFAULTS[k]))
            for k, v in given.items()
        }
        if overhang is None:
            overhang = bool(meta.defaults.get("overhang", False))
        if scales is None:
            scales = tuple(int(v) for v in meta.defaults.get("scales", ()))
        self.spec = GridSpec(**geometry, scales=tuple(scales), overhang=bool(overhang))
        if peak_ratio is None:
            peak_ratio = meta.defaults.get("peak_ratio", DEFAULT_PEAK_RATIO)
        self.peak_ratio = _check_fraction("peak_ratio", peak_ratio)
        if refine is None:
            refine = bool(meta.defaults.get("refine", False))
        self.refine = bool(refine)
        self.dense = self._check_dense(dense, meta.defaults.get("dense", False))
        if verify and self.scoring != "calibrated":
            raise ConfigError(
                "verify needs scoring='calibrated' (reference scores are not probabilities); "
                "drop --verify or use calibrated scoring"
            )
        if verify is None:
            verify = bool(meta.defaults.get("verify", False)) and self.scoring == "calibrated"
        self.verify = bool(verify)
        if verify_floor is None:
            verify_floor = meta.defaults.get("verify_floor", DEFAULT_VERIFY_FLOOR)
        self.verify_floor = _check_fraction("verify_floor", verify_floor)
        self._dense_grid_for = lru_cache(maxsize=8)(self._build_dense_grid)
        if crop_on_device and self.method != "windows":
            raise ConfigError("crop_on_device needs method='windows' (occlusion cuts on the host)")
        if crop_on_device is None:
            crop_on_device = self.session.encoders.device != "cpu"
        self.crop_on_device = bool(crop_on_device) and self.method == "windows"
        if background_prompts is None:
            background_prompts = meta.background_prompts
        self.background_prompts = normalise_prompts(background_prompts)
        self._background_all = (
            self.session.texts.embed_templated(self.background_prompts, self.templates)
            if self.background_prompts
            else np.zeros((0, meta.embed_dim), np.float32)
        )
        self._state = _PromptState(
            (),
            (),
            np.zeros((0, meta.embed_dim), np.float32),
            self._background_all,
            np.zeros(0, np.float32),
        )
        self._grid_for = lru_cache(maxsize=8)(self._build_grid)
        if prompts:
            self.set_prompts(prompts)

    # ----------------------------------------------------------------- configuration

    @staticmethod
    def _check_threshold(threshold: object) -> float | dict[str, float] | None:
        if threshold is None:
            return None
        if isinstance(threshold, Mapping):
            return {str(k): _check_fraction(f"threshold of '{k}'", v) for k, v in threshold.items()}
        return _check_fraction("threshold", threshold)

    def _check_dense(self, dense: bool | None, suggested: object) -> bool:
        """Whether fine heatmaps are used: asked for (checked) or the model's suggestion (where
        it can apply)."""
        possible = self.scoring == "calibrated" and self.method == "windows"
        if dense is None:
            return bool(suggested) and possible and self.session.has_tokens
        if dense and not possible:
            raise ConfigError(
                "dense heatmaps need scoring='calibrated' and method='windows'; "
                f"got scoring={self.scoring!r}, method={self.method!r}"
            )
        if dense and not self.session.has_tokens:
            raise ConfigError(
                "dense heatmaps need an export with per-patch tokens, which this model's image "
                "graph lacks (exported by an older streamdet); run `streamdet export` again"
            )
        return bool(dense)

    def _default_threshold(self) -> float:
        if self.scoring == "reference":
            return REFERENCE_THRESHOLD
        suggested = self.session.encoders.meta.defaults.get("threshold")
        return float(suggested) if suggested is not None else DEFAULT_CALIBRATED_THRESHOLD

    def _thresholds_for(self, prompts: tuple[str, ...]) -> np.ndarray:
        arg = self._threshold_arg
        default = self._default_threshold()
        if isinstance(arg, dict):
            return np.asarray([arg.get(p, default) for p in prompts], np.float32)
        return np.full(len(prompts), default if arg is None else arg, np.float32)

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
        return self.session.encoders.provider

    def set_prompts(self, prompts: str | Iterable[str]) -> None:
        """Replace the prompts. Known prompts cost nothing; new ones one text-tower batch."""
        texts = normalise_prompts(prompts)
        if not texts:
            raise PromptError("no prompts given; pass at least one, e.g. ['a red car']")
        sized = tuple(split_size(t) if self.frame_sizes else SizedPrompt(t, None) for t in texts)
        scored = [p.text for p in sized]
        embeddings = self.session.texts.embed_templated(scored, self.templates)  # (K, D)
        keep = [i for i, b in enumerate(self.background_prompts) if b not in scored]
        self._state = _PromptState(
            prompts=texts,
            sized=sized,
            embeddings=embeddings,
            background=self._background_all[keep],
            thresholds=self._thresholds_for(texts),
        )

    def _build_grid(self, height: int, width: int) -> WindowGrid:
        return WindowGrid.build(height, width, self.spec)

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
        grid = self.grid(h, w)
        size, fill = self.session.image_size, self.session.fill
        if self.crop_on_device:
            # the frame crosses to the device once; windows are cut there (streamdet.clip.crops)
            t1 = time.perf_counter()
            emb, tokens = self.session.embed_windows(frame, grid.corners(), dense=self.dense)
        else:
            if self.method == "windows":
                pixels = crop_windows(frame, grid, size, fill)  # (N, S, S, 3)
            else:
                pixels = occluded_batch(frame, grid, size, fill)  # (1 + N, S, S, 3)
            t1 = time.perf_counter()
            if self.dense:
                emb, tokens = self.session.embed_images_dense(pixels)  # (N, D), (N, g, g, D)
            else:
                emb, tokens = self.session.embed_images(pixels), None  # (N or 1 + N, D)
        t2 = time.perf_counter()
        if tokens is not None:
            dense_grid = self._dense_grid_for(h, w, tokens.shape[1])
            heatmaps = self._dense_heatmaps(emb, tokens, dense_grid, state)  # (K, fine r, fine c)
            patch = dense_grid.patch
        else:
            heatmaps = self._heatmaps(emb, grid, state)  # (K, rows, cols) in [0, 1]
            patch = grid.patch
        t3 = time.perf_counter()
        detections = heatmaps_to_detections(
            heatmaps,
            state.thresholds,
            patch,
            (h, w),
            per_region=self.scoring != "reference",
            iou_threshold=self.nms_iou,
            peak_ratio=self.peak_ratio,
            refine=self.refine,
        )
        detections = keep_sized(detections, state.sized, (h, w))
        t4 = t5 = time.perf_counter()
        if self.verify and len(detections):
            detections = self._verify(frame, detections, state)
            t5 = time.perf_counter()
        timings = Timings(
            preprocess_ms=(t1 - t0) * 1e3,
            encode_ms=(t2 - t1) * 1e3,
            score_ms=(t3 - t2) * 1e3,
            boxes_ms=(t4 - t3) * 1e3,
            verify_ms=(t5 - t4) * 1e3,
        )
        return FrameResult(detections, heatmaps, state.prompts, (h, w), patch, timings)

    def _verify(self, frame: np.ndarray, detections: Detections, state: _PromptState) -> Detections:
        """Re-score every box by crops around it (``streamdet.detect.verify``), in one batch."""
        detections = strongest(detections)
        views = box_views(frame, detections.xyxy, self.session.image_size, self.session.fill)
        emb = self.session.embed_images(views)  # (views * n, D)
        probs = prompt_vs_background(
            emb, state.embeddings, state.background, self.session.logit_scale
        )
        return rescore(detections, probs, self.verify_floor)

    def _dense_heatmaps(
        self, emb: np.ndarray, tokens: np.ndarray, dense_grid: DenseGrid, state: _PromptState
    ) -> np.ndarray:
        """Fine heatmaps: window probability x patch probability, max over covering windows."""
        scale = self.session.logit_scale
        probs = prompt_vs_background(emb, state.embeddings, state.background, scale)  # (N, K)
        probs = dense_grid.context_gate(probs)  # small windows only as sure as their context
        lowest = float(state.thresholds.min()) * (self.peak_ratio or 1.0)
        active = np.flatnonzero(probs.max(axis=1) > min(DENSE_FLOOR, lowest))
        side, dim = tokens.shape[1], tokens.shape[3]
        flat = tokens[active].reshape(-1, dim)  # (n_active * g * g, D)
        patch_probs = prompt_vs_background(flat, state.embeddings, state.background, scale)
        patch_probs = patch_probs.reshape(len(active), side, side, len(state.prompts))
        return dense_grid.heatmaps(active, probs[active], patch_probs, len(state.prompts))

    def _heatmaps(self, emb: np.ndarray, grid: WindowGrid, state: _PromptState) -> np.ndarray:
        scale = self.session.logit_scale
        if self.method == "windows":
            if self.scoring == "reference":
                logits = window_logits(emb, state.embeddings, scale)  # (N, K)
                return reference_normalise(grid.cell_mean(logits))
            probs = prompt_vs_background(emb, state.embeddings, state.background, scale)
            return grid.cell_mean(probs).astype(np.float32)
        # Occlusion: row 0 is the whole frame, rows 1.. the occluded copies.
        drops = occlusion_drops(window_logits(emb, state.embeddings, scale))  # (N, K)
        cells = grid.cell_mean(drops)  # (K, rows, cols)
        if self.scoring == "reference":
            return reference_normalise(cells)
        # Calibrated: the shape of the drop map, scaled by how likely the prompt is in the frame.
        present = prompt_vs_background(emb[:1], state.embeddings, state.background, scale)[0]
        cells = np.clip(cells, 0.0, None)
        peak = cells.reshape(len(cells), -1).max(axis=1)
        shape = np.divide(
            cells, peak[:, None, None], out=np.zeros_like(cells), where=peak[:, None, None] > 0
        )
        return (shape * present[:, None, None]).astype(np.float32)
