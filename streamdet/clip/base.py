"""What every image/text encoder backend of streamdet shares, whatever runs the towers.

streamdet runs the two CLIP towers with ONNX Runtime (``ort_encoders.OrtEncoders``, the default) or
with PyTorch (``torch_encoders.TorchEncoders``, for GPUs). Both answer the same calls with the
same shapes, dtypes and errors; this base class holds everything that does not depend on the
runtime: the model's meta.json, the tokenizer, input checks, chunking and the shapes of empty
results. A backend implements four things: ``_embed`` (a batch of square images), ``_embed_windows``
(windows cut from one frame where the tower runs), ``_embed_texts`` (token ids) and its ``device``
/ ``provider`` attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from streamdet.clip.meta import TOKENS_OUTPUT, ModelMeta
from streamdet.clip.tokenizer import ClipTokenizer
from streamdet.errors import FrameError, FrameTypeError, ModelFormatError

DEFAULT_MAX_BATCH_CPU = 32  # chunks of 32 windows were faster than one big batch on the CPU
DEFAULT_MAX_BATCH_GPU = 256


class Encoders:
    """The image and text encoders of one model (see the module docstring).

    Subclasses set ``provider`` (what really runs the image tower, for reports), ``device``
    ("cpu" or "cuda": where it runs, after any fallback), ``precision``, ``has_tokens`` and
    ``max_batch`` (largest batch sent to the towers in one run).
    """

    provider: str
    device: str
    precision: str
    has_tokens: bool
    max_batch: int

    def __init__(self, meta: ModelMeta) -> None:
        # max_batch is set by the backend, once it knows where the towers run:
        # DEFAULT_MAX_BATCH_CPU on the CPU, DEFAULT_MAX_BATCH_GPU on a GPU
        self.meta = meta
        self.image_size = meta.image_size
        self.logit_scale = meta.logit_scale
        self.embed_dim = meta.embed_dim
        self._tokenizer = ClipTokenizer(
            meta.tokenizer_path, context_length=meta.context_length, pad_id=meta.pad_id
        )

    # -- what a backend implements ---------------------------------------------------------------

    def _embed(self, pixels: np.ndarray, tokens: bool) -> list[np.ndarray]:
        """(N >= 1, S, S, 3) float32 -> [(N, D)] or, with ``tokens``, [(N, D), (N, T, D)]."""
        raise NotImplementedError

    def _embed_windows(
        self, frame: np.ndarray, corners: np.ndarray, tokens: bool
    ) -> list[np.ndarray]:
        """Windows (N >= 1 corners) cut from ``frame`` where the tower runs -> as ``_embed``."""
        raise NotImplementedError

    def _embed_frame(self, pixels: np.ndarray, head: str) -> np.ndarray:
        """(N, H, W, 3) float32 frames -> (N, H / p, W / p, D) patch tokens of the one-pass
        frame tower with dense head ``head`` (``streamdet.clip.frame_tower``)."""
        raise NotImplementedError

    def frame_patch(self, head: str) -> int:
        """Pixels per patch token of the frame tower (the model's patch size)."""
        raise NotImplementedError

    def _embed_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(K <= max_batch, L) token ids and mask -> (K, D) embeddings."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------

    @staticmethod
    def _token_grid(tokens: np.ndarray) -> np.ndarray:
        """(N, T, D) patch tokens -> (N, g, g, D), g * g = T (row-major patches)."""
        side = math.isqrt(tokens.shape[1])
        if side * side != tokens.shape[1]:
            raise ModelFormatError(
                f"the image graph gives {tokens.shape[1]} patch tokens, not a square grid; "
                "export the model again with `streamdet export`"
            )
        return tokens.reshape(len(tokens), side, side, -1)

    def _check_pixels(self, pixels: np.ndarray) -> np.ndarray:
        if not isinstance(pixels, np.ndarray):
            raise FrameTypeError(f"pixels must be a numpy array, but got {type(pixels).__name__}")
        size = self.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (size, size, 3):
            raise FrameError(
                f"pixels must have shape (N, {size}, {size}, 3) (NHWC BGR), but got {pixels.shape}"
            )
        if pixels.dtype != np.float32:
            if pixels.dtype != np.uint8 and not np.issubdtype(pixels.dtype, np.floating):
                raise FrameError(f"pixels must be float32 or uint8, but got {pixels.dtype}")
            pixels = pixels.astype(np.float32)
        return pixels

    def _require_tokens(self) -> None:
        if not self.has_tokens:
            raise ModelFormatError(
                f"the image graph of {self.meta.folder} has no '{TOKENS_OUTPUT}' output (exported "
                "by an older streamdet); export the model again with `streamdet export`"
            )

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of square images.

        pixels: (N, S, S, 3) float32, BGR, 0..255 (uint8 is accepted and converted), S = image_size.
        Returns (N, D) float32, L2-normalised.
        """
        pixels = self._check_pixels(pixels)
        if len(pixels) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        return self._embed(pixels, False)[0]

    def encode_images_dense(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and per-patch embeddings of a batch of square images, from one run.

        Returns (N, D) and (N, g, g, D) float32, both L2-normalised; g x g patches per image in
        row-major order. Raises ModelFormatError for an export without the tokens output.
        """
        self._require_tokens()
        pixels = self._check_pixels(pixels)
        if len(pixels) == 0:
            pixels = np.zeros((1, *pixels.shape[1:]), np.float32)  # for the token grid's shape
            emb, tok = self.encode_images_dense(pixels)
            return emb[:0], tok[:0]
        emb, tok = self._embed(pixels, True)
        return emb, self._token_grid(tok)

    @property
    def fill(self) -> tuple[float, float, float]:
        """The model's mean colour in BGR 0..255: padding that is zero after normalisation."""
        r, g, b = (float(v) * 255.0 for v in self.meta.image_mean)
        return (b, g, r)

    def encode_windows(
        self, frame: np.ndarray, corners: np.ndarray, *, dense: bool = False
    ) -> list[np.ndarray]:
        """Embeddings of square windows of one frame, cut out where the image tower runs.

        frame: (H, W, 3) BGR uint8 or float32 0..255; corners: (N, 4) window corners x1, y1, x2,
        y2 in pixels (may lie outside the frame: padded with the mean colour). The frame crosses
        to the device once; on a GPU the crops never leave it.
        Returns [(N, D)] or, with ``dense``, [(N, D), (N, g, g, D)], as ``encode_images`` and
        ``encode_images_dense`` would for the same windows cut on the host.
        """
        if len(corners) == 0 or (dense and not self.has_tokens):
            # nothing to cut, or no tokens (which encode_images_dense reports in one line)
            empty = np.zeros((0, self.image_size, self.image_size, 3), np.float32)
            return list(self.encode_images_dense(empty)) if dense else [self.encode_images(empty)]
        out = self._embed_windows(frame, corners, dense)
        if dense:
            out[1] = self._token_grid(out[1])
        return out

    def encode_frame(self, pixels: np.ndarray, head: str) -> np.ndarray:
        """(N, H, W, 3) float32 BGR 0..255 frames, H and W multiples of ``frame_patch(head)``
        -> (N, H / p, W / p, D) L2-normalised patch-token embeddings, one pass per frame."""
        patch = self.frame_patch(head)
        if (
            pixels.ndim != 4
            or pixels.shape[3] != 3
            or pixels.shape[1] % patch
            or (pixels.shape[2] % patch)
        ):
            raise ValueError(
                f"frames must be (N, H, W, 3) with H and W multiples of {patch}, got {pixels.shape}"
            )
        return self._embed_frame(np.ascontiguousarray(pixels, dtype=np.float32), head)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, (K, context_length) int64 each, padded with pad_id.

        Raises PromptError for a blank prompt or one longer than the context length.
        """
        return self._tokenizer(texts)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of prompts: (K, D) float32, L2-normalised."""
        ids, mask = self.tokenize(texts)  # (K, L) each
        if len(ids) == 0:
            return np.zeros((0, self.embed_dim), np.float32)
        parts = [
            self._embed_texts(ids[i : i + self.max_batch], mask[i : i + self.max_batch])
            for i in range(0, len(ids), self.max_batch)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)  # (K, D)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={str(self.meta.folder)!r}, provider={self.provider!r}, "
            f"precision={self.precision!r}, image_size={self.image_size}, "
            f"embed_dim={self.embed_dim})"
        )
