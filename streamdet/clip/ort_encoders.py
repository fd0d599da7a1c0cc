"""ONNX Runtime sessions for the two CLIP towers of an exported folder: the default backend.

Only onnxruntime, tokenizers and numpy are needed here: torch and transformers are needed only to
export and for the PyTorch backend (``torch_encoders``). The image graph takes raw OpenCV-style
pixels (NHWC, BGR, 0..255, float32) and does its own normalisation, so a batch of windows crosses
to the device once and nothing is copied per window on the host. Both graphs return L2-normalised
embeddings, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.clip.base import DEFAULT_MAX_BATCH_CPU, DEFAULT_MAX_BATCH_GPU, Encoders
from streamdet.clip.crops import DeviceCropper
from streamdet.clip.cudagraph import CUDA_GRAPH_OPTIONS, FixedBatchRunner
from streamdet.clip.frame_graph import frame_graph, graph_patch, sized_graph
from streamdet.clip.meta import IMAGE_OUTPUT, TOKENS_OUTPUT, ModelMeta, load_meta
from streamdet.clip.optimize import check_precision, image_graph, physical_cores, session_options
from streamdet.errors import ConfigError, ModelFormatError, ProviderError

logger = logging.getLogger("streamdet")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

# device name -> ONNX Runtime providers, in order of preference.
DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": (CPU,),
    "cuda": (CUDA, CPU),
    "tensorrt": (TENSORRT, CUDA, CPU),
}
_DEVICE_LABEL = {"cpu": "CPU", "cuda": "CUDA", "tensorrt": "TensorRT"}
#: Frame-graph sessions kept, one per input shape: a video has one; a many-stream run batches
#: 1 to N same-sized frames (``Detector.detect_many``), one shape per batch size; the second,
#: finer pass (``streamdet.detect.zoom``) adds its crops' few shapes.
FRAME_SESSIONS = 12


class OrtEncoders(Encoders):
    """The image and text encoders of one exported model, on one device, with ONNX Runtime.

    device: "cpu", "cuda" or "tensorrt". A GPU device that onnxruntime cannot provide raises
    ProviderError, unless ``allow_fallback`` is set: then it logs a warning and runs on the CPU.
    threads: intra-op threads for the CPU provider (default: the physical cores this process may
    use, see ``streamdet.clip.optimize.physical_cores``).
    max_batch: largest batch sent to a session in one run; bigger inputs are split.
    meta: an already loaded ModelMeta of `model_dir` (skips reading and verifying it again).
    precision: the image tower's precision: None (default) runs the export as it is; "int8"
    (CPU only: dynamic int8 quantisation, faster than fp32 on CPUs with VNNI and close to it;
    see ``streamdet.clip.optimize``), "fp16" (for GPUs) or "fp32". A derived graph is made once
    and cached under ``cache_dir`` (default ``~/.cache/streamdet``); the text tower always runs
    as exported.
    spin: let idle ONNX Runtime threads busy-wait (see ``optimize.session_options``).
    fuse: run the image graph after ONNX Runtime's transformer optimizer (fused attention,
    skip-LayerNorm, GELU; ``optimize.image_graph(fuse=True)``, cached). Off by default: on the
    CPU it was no faster in fp32 and slower in int8; meant for measuring GPUs.
    cuda_graph: ``encode_images`` replays the embeddings-only graph as a CUDA graph in chunks of
    ``max_batch`` (``streamdet.clip.cudagraph``; device "cuda" only). Opt-in: whether it helps
    is a measurement, ``benchmarks/bench_model.py --device cuda --cuda-graph``.
    Dense calls and ``encode_windows`` run as without it.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str = "cpu",
        allow_fallback: bool = False,
        threads: int | None = None,
        meta: ModelMeta | None = None,
        max_batch: int | None = None,
        precision: str | None = None,
        cache_dir: str | Path | None = None,
        spin: bool = False,
        fuse: bool = False,
        cuda_graph: bool = False,
        weights: Callable[[], Path | None] | None = None,
    ) -> None:
        if device not in DEVICE_PROVIDERS:
            raise ConfigError(
                f"device must be one of {sorted(DEVICE_PROVIDERS)}, but got {device!r}"
            )
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be a positive integer or None, but got {threads}")
        if max_batch is not None and max_batch < 1:
            raise ConfigError(f"max_batch must be a positive integer or None, but got {max_batch}")
        if precision is not None:
            check_precision(precision)
        if cuda_graph and device != "cuda":
            raise ConfigError(
                f"cuda_graph replays CUDA graphs and needs device 'cuda', not {device!r}"
            )
        if precision == "int8" and device != "cpu":
            raise ConfigError(
                "precision int8 (dynamic quantisation) runs on the CPU only; "
                "use precision fp16 on a GPU, or device cpu"
            )
        super().__init__(meta if meta is not None else load_meta(Path(model_dir)))
        self.precision = precision or self.meta.precision
        self._threads = threads or physical_cores()
        self._spin = spin
        if cache_dir is None:
            from streamdet.clip.hub import default_cache_dir

            cache_dir = default_cache_dir()
        self._cache_dir = cache_dir
        self._device, self._allow_fallback = device, allow_fallback
        self._fuse = fuse
        self._cuda_graph = cuda_graph
        self._graph_runner: FixedBatchRunner | None = None  # made on first use (encode_images)
        providers = self._choose_providers(device, allow_fallback)
        self._text = self._open(self.meta.text_path, providers, device, allow_fallback)
        self._providers = list(self._text.get_providers())
        self.provider = self._providers[0]
        self.device = "cpu" if self.provider == CPU else "cuda"
        # Device of the IO-bound outputs; None = plain session.run (CPU).
        self._io_device: str | None = None if self.provider == CPU else "cuda"
        # Image sessions by "with tokens", opened on first use (``_image_session``): a model used
        # without dense heatmaps never builds or holds its full graph.
        self._images: dict[bool, Any] = {}
        outputs = self.meta.image_outputs
        if outputs is None:  # an export older than meta.json's image_outputs: ask the graph
            full = self._open_image(embeddings_only=False)
            self._images[True] = full
            outputs = tuple(o.name for o in full.get_outputs())
        #: Whether the image graph also gives per-patch embeddings (``encode_images_dense``).
        self.has_tokens = TOKENS_OUTPUT in outputs
        self._cropper: DeviceCropper | None = None  # made on first use of encode_windows
        # One-pass frame graphs by dense head: (path, patch), found or made on first use;
        # ``weights`` finds the Hugging Face folder a frame graph is made from when the export
        # does not hold it. Their sessions, one per (head, input shape), newest last.
        self._frames: dict[str, tuple[Path, int]] = {}
        self._frame_sessions: dict[tuple[str, tuple[int, ...]], Any] = {}
        self._frame_lock = threading.Lock()
        self._weights = weights or (lambda: None)
        self.max_batch = max_batch or (
            DEFAULT_MAX_BATCH_CPU if self._io_device is None else DEFAULT_MAX_BATCH_GPU
        )
        logger.info(
            "streamdet: CLIP encoders of %s run on %s (image tower %s, %d threads)",
            self.meta.folder.name,
            self.provider,
            self.precision,
            self._threads,
        )

    # -- sessions -----------------------------------------------------------------------------

    def _choose_providers(self, device: str, allow_fallback: bool) -> list[str]:
        import onnxruntime as ort

        wanted = DEVICE_PROVIDERS[device]
        available = ort.get_available_providers()
        if wanted[0] not in available:
            self._refuse(device, f"onnxruntime offers only {available}", allow_fallback)
            return [CPU]
        return [p for p in wanted if p in available]

    def _open(
        self, path: Path | bytes, providers: list[Any], device: str, allow_fallback: bool
    ) -> Any:
        """A session on `providers` (names, or (name, options) pairs); a provider that does not
        start is refused (or, with ``allow_fallback``, replaced by the CPU) in one line."""
        import onnxruntime as ort

        options = session_options(self._threads, spin=self._spin)
        model = path if isinstance(path, bytes) else str(path)
        session = ort.InferenceSession(model, sess_options=options, providers=providers)
        first = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if session.get_providers()[0] != first:
            # ONNX Runtime falls back silently when a provider fails to initialise.
            self._refuse(
                device,
                f"onnxruntime could not start it and fell back to {session.get_providers()}",
                allow_fallback,
            )
            session = ort.InferenceSession(model, sess_options=options, providers=[CPU])
        return session

    @staticmethod
    def _refuse(device: str, why: str, allow_fallback: bool) -> None:
        label = _DEVICE_LABEL[device]
        if not allow_fallback:
            raise ProviderError(
                f"{label} was requested but {why}; install onnxruntime-gpu (with matching CUDA "
                f"libraries) or pass --device cpu (or allow fallback)"
            )
        logger.warning("streamdet: %s was requested but %s; running on the CPU instead", label, why)

    def _run(
        self, session: Any, feeds: dict[str, Any], outputs: Sequence[str] | None = None
    ) -> list[np.ndarray]:
        """Run a graph; ``outputs``: the names wanted (default: the first output only). With IO
        binding a feed may be an OrtValue already on the device (crops cut there)."""
        names = list(outputs) if outputs else [session.get_outputs()[0].name]
        if self._io_device is None:
            return list(session.run(names, feeds))
        # IO binding: each input crosses to the device once, each output comes back once.
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        for name in names:
            binding.bind_output(name, self._io_device)
        session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    @property
    def image_path(self) -> Path:
        """The full image graph (with tokens, if the export has them) in this precision; built
        and cached by ``streamdet.clip.optimize.image_graph`` if it is not yet."""
        return image_graph(self.meta, self.precision, self._cache_dir, fuse=self._fuse)

    def _image_session(self, tokens: bool) -> Any:
        """The image session for a call that does (not) want the patch tokens, opened on first use.

        ONNX Runtime runs every node of a graph whatever outputs are asked for, so calls without
        tokens run a copy of the graph pruned to its embeddings (``image_graph(...,
        embeddings_only=True)``, made once and cached).
        """
        full = tokens or not self.has_tokens
        if full not in self._images:
            self._images[full] = self._open_image(embeddings_only=not full)
        return self._images[full]

    def _graph(self) -> FixedBatchRunner:
        """The CUDA-graph runner of the embeddings-only graph with a batch of ``max_batch``."""
        if self._graph_runner is None:
            session = self._open_image(embeddings_only=self.has_tokens, batch=self.max_batch)
            device = "cuda" if session.get_providers()[0] == CUDA else "cpu"  # CPU: fallback
            self._graph_runner = FixedBatchRunner(
                session, batch=self.max_batch, output=IMAGE_OUTPUT, device=device
            )
        return self._graph_runner

    def _open_image(self, *, embeddings_only: bool, batch: int | None = None) -> Any:
        """A session on the image graph as this encoder runs it; with `batch`, the fixed-batch
        graph with CUDA-graph capture on (``streamdet.clip.cudagraph``)."""
        path = image_graph(
            self.meta,
            self.precision,
            self._cache_dir,
            fuse=self._fuse,
            embeddings_only=embeddings_only,
            batch=batch,
        )
        providers: list[Any] = list(self._providers)
        if batch is not None:
            providers = [(p, CUDA_GRAPH_OPTIONS) if p == CUDA else p for p in providers]
        return self._open(path, providers, self._device, self._allow_fallback)

    # -- the Encoders calls ----------------------------------------------------------------------

    def _embed(self, pixels: np.ndarray, tokens: bool) -> list[np.ndarray]:
        """Run the image graph over ``pixels`` in chunks of ``max_batch``; outputs concatenated.
        Without tokens and with ``cuda_graph``, the fixed-batch graph is replayed instead."""
        if self._cuda_graph and not tokens:
            return [self._graph()(pixels)]
        outputs = [IMAGE_OUTPUT, TOKENS_OUTPUT] if tokens else None
        session = self._image_session(tokens=tokens)
        name = session.get_inputs()[0].name
        parts = [
            self._run(
                session,
                {name: np.ascontiguousarray(pixels[i : i + self.max_batch])},
                outputs,
            )
            for i in range(0, len(pixels), self.max_batch)
        ]
        return [np.concatenate(p).astype(np.float32, copy=False) for p in zip(*parts, strict=True)]

    def _device_cropper(self) -> DeviceCropper:
        if self._cropper is None:
            self._cropper = DeviceCropper(
                self.image_size,
                self.fill,
                self._providers,
                session_options(self._threads, spin=self._spin),
            )
        return self._cropper

    def _embed_windows(
        self, frame: np.ndarray, corners: np.ndarray, tokens: bool
    ) -> list[np.ndarray]:
        """The crop graph (``streamdet.clip.crops``) cuts each chunk of windows straight into the
        image graph's input; on a GPU the crops never leave it."""
        cropper = self._device_cropper()
        outputs = [IMAGE_OUTPUT, TOKENS_OUTPUT] if tokens else [IMAGE_OUTPUT]
        session = self._image_session(tokens=tokens)
        name = session.get_inputs()[0].name
        frame_value = cropper.upload(frame, self._io_device)
        parts = [
            self._run(
                session,
                {name: cropper.crop(frame_value, corners[i : i + self.max_batch], self._io_device)},
                outputs,
            )
            for i in range(0, len(corners), self.max_batch)
        ]
        return [np.concatenate(p).astype(np.float32, copy=False) for p in zip(*parts, strict=True)]

    def _frame_graph(self, head: str) -> tuple[Path, int]:
        """(path, patch size) of the frame graph for ``head`` in this precision."""
        if head not in self._frames:
            path = frame_graph(self.meta, head, self.precision, self._cache_dir, self._weights)
            patch = graph_patch(path)
            if patch < 1:
                raise ModelFormatError(f"frame graph '{path}' does not record its patch size")
            self._frames[head] = (path, patch)
        return self._frames[head]

    def frame_patch(self, head: str) -> int:
        return self._frame_graph(head)[1]

    def _frame_session(self, head: str, shape: tuple[int, ...]) -> Any:
        """A session of ``head``'s frame graph with its input fixed to ``shape`` (see
        ``frame_graph.sized_graph``: the size-dependent part is folded once). A video has one
        frame size; the last ``FRAME_SESSIONS`` sizes are kept, the oldest closed first."""
        key = (head, shape)
        with self._frame_lock:  # several inference threads may share these encoders
            session = self._frame_sessions.pop(key, None)
            if session is None:
                path, _ = self._frame_graph(head)
                session = self._open(
                    sized_graph(path, *shape[:3]),
                    list(self._providers),
                    self._device,
                    self._allow_fallback,
                )
                while len(self._frame_sessions) >= FRAME_SESSIONS:
                    self._frame_sessions.pop(next(iter(self._frame_sessions)))
            self._frame_sessions[key] = session  # newest last
        return session

    def _embed_frame(self, pixels: np.ndarray, head: str) -> np.ndarray:
        session = self._frame_session(head, tuple(pixels.shape))
        return self._run(session, {"pixels": pixels})[0]

    def _embed_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds_of = {"input_ids": ids, "attention_mask": mask}
        return self._run(self._text, {i.name: feeds_of[i.name] for i in self._text.get_inputs()})[0]
