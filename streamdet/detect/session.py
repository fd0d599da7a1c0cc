"""One loaded model: resolved folder, ONNX Runtime encoders and the text-embedding cache.

``Detector`` and ``Classifier`` both start from here, so a model is resolved, exported (if needed)
and opened the same way everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamdet.clip.encoders import ClipEncoders
from streamdet.clip.hub import default_cache_dir, resolve_model
from streamdet.detect.prompts import TextEmbeddingCache

log = logging.getLogger("streamdet")

DEFAULT_MODEL = "streamdet/scenes-clip"


@dataclass(frozen=True)
class ModelSession:
    """Everything needed to embed windows and prompts with one model."""

    encoders: ClipEncoders
    texts: TextEmbeddingCache

    @classmethod
    def open(
        cls,
        model: str | Path = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        allow_fallback: bool = False,
        threads: int | None = None,
        max_batch: int | None = None,
        cache_dir: str | Path | None = None,
        precision: str | None = None,
    ) -> ModelSession:
        """Resolve `model`, open its encoders and the text-embedding cache.

        precision: the image tower's precision ("fp32", "int8" on the CPU, "fp16"), None for the
        export's own; derived graphs are cached under `cache_dir` (see streamdet.clip.optimize).
        """
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder = resolve_model(model, cache_dir=cache)
        kwargs = {} if max_batch is None else {"max_batch": max_batch}
        encoders = ClipEncoders(
            folder,
            device=device,
            allow_fallback=allow_fallback,
            threads=threads,
            precision=precision,
            cache_dir=cache,
            **kwargs,
        )
        texts = TextEmbeddingCache(encoders.encode_texts, encoders.meta.checksum, cache)
        return cls(encoders, texts)

    @property
    def image_size(self) -> int:
        return int(self.encoders.meta.image_size)

    @property
    def logit_scale(self) -> float:
        return float(self.encoders.meta.logit_scale)

    @property
    def fill(self) -> tuple[float, float, float]:
        """The model's mean colour in BGR 0..255: padding that is zero after normalisation."""
        return self.encoders.fill

    def embed_images(self, pixels: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) float32 BGR 0..255 -> (N, D) L2-normalised embeddings."""
        return self.encoders.encode_images(pixels)

    @property
    def has_tokens(self) -> bool:
        """Whether the model gives per-patch embeddings too (fine heatmaps are possible)."""
        return self.encoders.has_tokens

    def embed_images_dense(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, 3) -> (N, D) embeddings and (N, g, g, D) patch embeddings, one run."""
        return self.encoders.encode_images_dense(pixels)

    def embed_windows(
        self, frame: np.ndarray, corners: np.ndarray, *, dense: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Windows (N, 4 corners) of one frame cut where the image tower runs -> (N, D)
        embeddings and, with ``dense``, (N, g, g, D) patch embeddings (else None)."""
        out = self.encoders.encode_windows(frame, corners, dense=dense)
        return out[0], (out[1] if dense else None)
