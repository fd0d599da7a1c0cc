"""One loaded model: resolved folder, encoders (ONNX Runtime or PyTorch) and the text cache.

``Detector`` and ``Classifier`` both start from here, so a model is resolved, exported (if needed)
and opened the same way everywhere, and the backend is chosen in one place (``choose_backend``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamdet.clip.base import Encoders
from streamdet.clip.files import source_checksum, weight_files
from streamdet.clip.hub import default_cache_dir, hf_source_folder, resolve_model
from streamdet.clip.meta import read_meta_json
from streamdet.clip.ort_encoders import OrtEncoders
from streamdet.clip.torch_encoders import TorchEncoders, torch_cuda_ready
from streamdet.detect.prompts import TextEmbeddingCache
from streamdet.errors import ConfigError, ModelFormatError, ProviderError, StreamdetError

log = logging.getLogger("streamdet")

DEFAULT_MODEL = "streamdet/scenes-clip"
#: What ``backend`` may be: "auto" picks per device (``choose_backend``).
BACKENDS = ("auto", "onnxruntime", "torch")


def choose_backend(backend: str, device: str, precision: str | None = None) -> str:
    """The backend that runs the towers: "onnxruntime" or "torch".

    "auto" picks PyTorch (CUDA graphs, fp16 if asked) on device "cuda" when torch sees a CUDA
    GPU: the only GPU figures this project has (../shared/docs/gpu.md, H100) put PyTorch's image
    tower at 5.2-5.5 ms against 7.7 ms for ONNX Runtime's CUDA provider with IO binding. Anywhere
    else ONNX Runtime: on the CPU it is the faster by far (int8 2.6x torch.compile fp32, see
    benchmarks/README.md), and TensorRT and int8 are ONNX Runtime's.
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
class ModelSession:
    """Everything needed to embed windows and prompts with one model."""

    encoders: Encoders
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
        backend: str = "auto",
    ) -> ModelSession:
        """Resolve `model`, open its encoders and the text-embedding cache.

        precision: the image tower's precision ("fp32", "int8" on the CPU, "fp16"), None for the
        export's own; derived graphs are cached under `cache_dir` (see streamdet.clip.optimize).
        backend: "auto", "onnxruntime" or "torch" (``choose_backend``); the PyTorch backend
        needs the model's Hugging Face weights (the built-in model, an HF folder or a hub id).
        """
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        chosen = choose_backend(backend, device, precision)
        folder = resolve_model(model, cache_dir=cache)
        encoders: Encoders | None = None
        if chosen == "torch":
            encoders = cls._torch_encoders(
                model, folder, backend, device, allow_fallback, threads, max_batch, precision
            )
        if encoders is None:
            encoders = OrtEncoders(
                folder,
                device=device,
                allow_fallback=allow_fallback,
                threads=threads,
                max_batch=max_batch,
                precision=precision,
                cache_dir=cache,
            )
        texts = TextEmbeddingCache(encoders.encode_texts, encoders.meta.checksum, cache)
        return cls(encoders, texts)

    @staticmethod
    def _torch_encoders(
        model: str | Path,
        folder: Path,
        backend: str,
        device: str,
        allow_fallback: bool,
        threads: int | None,
        max_batch: int | None,
        precision: str | None,
    ) -> TorchEncoders | None:
        """The PyTorch encoders, or None where ONNX Runtime should run instead: "auto" without
        the weights, or a GPU that cannot start with ``allow_fallback``."""
        source = _weights_folder(model, folder)
        if source is None:
            if backend == "auto":
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
                device=device,
                precision=precision,
                threads=threads,
                max_batch=max_batch,
            )
        except ProviderError as error:
            if not allow_fallback:
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
