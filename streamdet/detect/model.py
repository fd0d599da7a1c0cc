"""One loaded model: resolved folder, encoders (ONNX Runtime or PyTorch) and the text cache.

``Detector`` and ``Classifier`` both start from here, so a model is found, exported (if needed)
and opened the same way everywhere, and the backend is chosen in one place (``choose_backend``).
Finding (``find_model``: the folder and its meta.json) is separate from opening
(``LoadedModel.open``), so that the detector's settings are resolved against the model's
suggestions before any graph is loaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamdet.clip.base import Encoders
from streamdet.clip.files import source_checksum, weight_files
from streamdet.clip.hub import default_cache_dir, hf_source_folder, resolve_model
from streamdet.clip.meta import ModelMeta, load_meta, read_meta_json
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.clip.torch_encoders import TorchEncoders, torch_cuda_ready
from streamdet.config import BACKENDS, DEFAULT_MODEL, RuntimeConfig
from streamdet.detect.prompts import TextEmbeddingCache
from streamdet.errors import ConfigError, ModelFormatError, ProviderError, StreamdetError

log = logging.getLogger("streamdet")


def choose_backend(backend: str, device: str, precision: str | None = None) -> str:
    """The backend that runs the towers: "onnxruntime" or "torch".

    "auto" picks PyTorch (CUDA graphs, fp16 if asked) on device "cuda" when torch sees a CUDA
    GPU, where the project's GPU measurements put it ahead of ONNX Runtime's CUDA provider;
    anywhere else ONNX Runtime, which is the faster on the CPU (int8 above all) and the only one
    with TensorRT and int8. docs/devices.md has the figures.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, but got {backend!r}")
    if backend != "auto":
        return backend
    if device == "cuda" and precision != "int8" and torch_cuda_ready():
        return "torch"
    return "onnxruntime"


def _weights_folder(model: str | Path, folder: Path) -> Path | None:
    """The Hugging Face folder with the weights of `model` (exported as `folder`), or None.

    In order: the export folder itself (exported in place, as the built-in model is), the HF
    folder or hub id `model` names, or the folder the export was made from (meta.json's
    ``source``), if it is still there with the same content (``source_sha256``).
    """
    if (folder / "config.json").is_file() and weight_files(folder):
        return folder
    try:
        return hf_source_folder(model)
    except StreamdetError:
        pass
    meta = read_meta_json(folder)
    source = str(meta.get("source", ""))
    try:
        if source.startswith("hf://"):
            return hf_source_folder(source.removeprefix("hf://"))
        path = Path(source).expanduser()
        found = path.is_dir() and (path / "config.json").is_file() and bool(weight_files(path))
        if found and source_checksum(path) == meta.get("source_sha256"):
            return path
    except (StreamdetError, OSError):
        pass
    return None


@dataclass(frozen=True)
class FoundModel:
    """A model found and checked, not yet loaded: its export folder and meta.json."""

    name: str
    folder: Path
    meta: ModelMeta


def find_model(
    model: str | Path = DEFAULT_MODEL, *, cache_dir: str | Path | None = None
) -> FoundModel:
    """Resolve ``model`` to an export folder (exporting a Hugging Face folder or hub model once,
    cached under ``cache_dir``) and read its meta.json; no graph is loaded."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = resolve_model(model, cache_dir=cache)
    return FoundModel(str(model), folder, load_meta(folder))


@dataclass(frozen=True)
class LoadedModel:
    """Everything needed to embed windows and prompts with one model."""

    encoders: Encoders
    texts: TextEmbeddingCache

    @classmethod
    def open(
        cls, model: str | Path | FoundModel = DEFAULT_MODEL, runtime: RuntimeConfig | None = None
    ) -> LoadedModel:
        """Open the encoders of ``model`` (a name, folder or ``find_model``'s answer) as
        ``runtime`` says, and the text-embedding cache.

        runtime.precision: the image tower's precision ("fp32", "int8" on the CPU, "fp16"), None
        for the export's own; derived graphs are cached under ``runtime.cache_dir`` (see
        streamdet.clip.optimize). runtime.backend: "auto", "onnxruntime" or "torch"
        (``choose_backend``); the PyTorch backend needs the model's Hugging Face weights (the
        built-in model, an HF folder or a hub id).
        """
        rt = runtime or RuntimeConfig()
        found = (
            model if isinstance(model, FoundModel) else find_model(model, cache_dir=rt.cache_dir)
        )
        cache = Path(rt.cache_dir) if rt.cache_dir is not None else default_cache_dir()
        encoders: Encoders | None = None
        if choose_backend(rt.backend, rt.device, rt.precision) == "torch":
            encoders = cls._torch_encoders(found, rt)
        if encoders is None:
            encoders = OrtEncoders(
                found.folder,
                meta=found.meta,
                device=rt.device,
                allow_fallback=rt.allow_fallback,
                threads=rt.threads,
                max_batch=rt.max_batch,
                precision=rt.precision,
                cache_dir=cache,
                weights=lambda: _weights_folder(found.name, found.folder),
            )
        texts = TextEmbeddingCache(encoders.encode_texts, encoders.meta.checksum, cache)
        return cls(encoders, texts)

    @staticmethod
    def _torch_encoders(found: FoundModel, rt: RuntimeConfig) -> TorchEncoders | None:
        """The PyTorch encoders, or None where ONNX Runtime should run instead: "auto" without
        the weights, or a GPU that cannot start with ``allow_fallback``."""
        model, folder = found.name, found.folder
        source = _weights_folder(model, folder)
        if source is None:
            if rt.backend == "auto":
                log.info("streamdet: %s has no PyTorch weights here; using ONNX Runtime", model)
                return None
            raise ModelFormatError(
                f"the PyTorch backend needs the Hugging Face weights of '{model}', and "
                f"'{folder}' is an export without them whose source folder is gone or changed; "
                "pass the Hugging Face folder or hub id it was exported from, or use "
                "--backend onnxruntime"
            )
        try:
            return TorchEncoders(
                folder,
                source,
                meta=found.meta,
                device=rt.device,
                precision=rt.precision,
                threads=rt.threads,
                max_batch=rt.max_batch,
            )
        except ProviderError as error:
            if not rt.allow_fallback:
                raise
            log.warning("streamdet: %s; falling back to ONNX Runtime", error)
            return None

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

    def frame_patch(self, head: str) -> int:
        """Frame pixels per patch token of the one-pass frame tower (its input's multiple)."""
        return self.encoders.frame_patch(head)

    def embed_frame(self, pixels: np.ndarray, head: str) -> np.ndarray:
        """(H, W, 3) float32 BGR 0..255, H and W multiples of ``frame_patch`` -> (h, w, D)
        patch-token embeddings of the whole frame in one pass (``streamdet.clip.frame_tower``)."""
        return self.embed_frames(pixels[None], head)[0]

    def embed_frames(self, pixels: np.ndarray, head: str) -> np.ndarray:
        """(N, H, W, 3) same-sized frames -> (N, h, w, D), one pass each, in one batch."""
        return self.encoders.encode_frame(pixels, head)
