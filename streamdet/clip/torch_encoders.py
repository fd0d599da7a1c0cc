"""PyTorch runtime for the two CLIP towers: the backend for GPUs (``backend="torch"``).

It runs exactly the modules the ONNX export traces (``towers.image_tower``, ``towers.text_tower``:
the folded patch embedding, the dense tokens, L2-normalised outputs) on the model's Hugging Face
weights, so both backends answer every ``Encoders`` call alike (tests/clip/test_torch_encoders.py
compares them). Why a second runtime: on a GPU the image tower ran faster with ``torch.compile``
or as a captured CUDA graph than with ONNX Runtime's CUDA provider with IO binding;
``benchmarks/bench_model.py --device cuda`` measures both in one run (docs/benchmarks.md).

Modes (``mode``):

- ``"eager"``: plain PyTorch (the default on the CPU, where ONNX Runtime is the faster backend).
- ``"cudagraph"`` (CUDA only, the default there): each batch size is captured once into a
  ``torch.cuda.CUDAGraph`` and replayed, which removes the per-kernel launch cost that dominates
  a small model on a big GPU. Batches are padded up to a multiple of ``GRAPH_BUCKET`` windows
  (``PaddedBatches``), so the few batch sizes a video produces need a few graphs, not one per
  count of verification crops.
- ``"compile"``: ``torch.compile`` (on CUDA ``mode="reduce-overhead"``, which adds CUDA graphs),
  on the same padded batches so it compiles a few shapes, not one per count. Compiling makes the
  first batch of each size slow and needs a C compiler (and Triton on a GPU).

Precision: ``fp32`` or ``fp16`` (CUDA only: the vision transformer and its input in half
precision; the text tower stays fp32, as in the ONNX backend). int8 is ONNX Runtime's (CPU) and
refused here. The weights come from the Hugging Face folder the export was made from (for the
built-in model, the same folder): an export folder alone has none, and is refused in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.clip.base import DEFAULT_MAX_BATCH_CPU, DEFAULT_MAX_BATCH_GPU, Encoders
from streamdet.clip.meta import ModelMeta, load_meta
from streamdet.clip.optimize import physical_cores
from streamdet.clip.torch_crops import crop_windows
from streamdet.errors import ConfigError, MissingDependencyError, ProviderError

logger = logging.getLogger("streamdet")

MODES = ("eager", "compile", "cudagraph")
DEVICES = ("cpu", "cuda")
#: Batches are padded up to a multiple of this many windows in the compile and cudagraph modes.
GRAPH_BUCKET = 16


def import_torch() -> tuple[Any, Any]:
    """torch and transformers, or one line saying how to install them."""
    try:
        import torch
        import transformers
    except ImportError as error:
        raise MissingDependencyError(
            f"the PyTorch backend needs torch and transformers ({error.name} is missing); "
            "pip install 'streamdet[export]' (with the CUDA build of torch for a GPU), "
            "or use --backend onnxruntime"
        ) from None
    return torch, transformers


def torch_cuda_ready() -> bool:
    """Whether torch is installed and sees a CUDA GPU (without importing it if it is absent)."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("torch", "transformers")):
        return False
    import torch

    return bool(torch.cuda.is_available())


class PaddedBatches:
    """Runs ``fn`` on batches padded up to a multiple of ``bucket`` rows; with ``capture``, each
    padded size is captured once into a CUDA graph (static input and output buffers, warmed up
    on a side stream as PyTorch's documentation does it) and replayed.

    fn: (B, ...) tensor -> tuple of (B, ...) tensors. Padding rows hold whatever the static buffer
    held (finite pixels of an earlier batch); their outputs are dropped. Without ``capture`` the
    same padding and slicing run eagerly, which is how the logic is tested on the CPU.
    """

    def __init__(self, torch: Any, fn: Callable[[Any], Any], *, bucket: int, capture: bool) -> None:
        self._torch = torch
        self._fn = fn
        self.bucket = bucket
        self.capture = capture
        self._static: dict[int, tuple[Any, Any, Any]] = {}  # size -> (graph, input, outputs)

    @property
    def sizes(self) -> list[int]:
        """The padded batch sizes seen so far (one graph each when capturing)."""
        return sorted(self._static)

    def _prepare(self, x: Any, size: int) -> tuple[Any, Any, Any]:
        torch = self._torch
        static_in = torch.zeros((size, *x.shape[1:]), dtype=x.dtype, device=x.device)
        static_in[: len(x)] = x
        if not self.capture:
            return None, static_in, None
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: cuBLAS handles and autotuning happen outside capture
                self._fn(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._fn(static_in)
        return graph, static_in, static_out

    def __call__(self, x: Any) -> tuple[Any, ...]:
        # Buffers are made, captured, written and read in inference mode only: writing an
        # inference tensor outside it is an error, and so is capturing in both modes in one
        # process on some torch versions (pytorch/pytorch#166792).
        with self._torch.inference_mode():
            size = -(-len(x) // self.bucket) * self.bucket
            if size not in self._static:
                self._static[size] = self._prepare(x, size)
            graph, static_in, static_out = self._static[size]
            static_in[: len(x)].copy_(x)
            if graph is None:
                static_out = self._fn(static_in)
            else:
                graph.replay()
            return tuple(out[: len(x)].clone() for out in static_out)


class TorchEncoders(Encoders):
    """The image and text encoders of one model, run with PyTorch (see the module docstring).

    model_dir: the exported folder (meta.json: tokenizer, defaults, preprocessing); source: the
    Hugging Face folder with the weights (``hub.hf_source_folder``); device "cpu" or "cuda";
    precision None (as exported), "fp32" or "fp16" (CUDA); mode None (cudagraph on CUDA, eager
    on the CPU), "eager", "compile" or "cudagraph"; threads: CPU threads (default: physical
    cores).
    """

    def __init__(
        self,
        model_dir: Path,
        source: Path,
        *,
        device: str = "cpu",
        precision: str | None = None,
        mode: str | None = None,
        max_batch: int | None = None,
        threads: int | None = None,
        meta: ModelMeta | None = None,
    ) -> None:
        if device not in DEVICES:
            raise ConfigError(
                f"the PyTorch backend runs on {' or '.join(DEVICES)}, not {device!r}; "
                "use --backend onnxruntime for TensorRT"
            )
        if precision not in (None, "fp32", "fp16"):
            raise ConfigError(
                f"the PyTorch backend runs fp32 or fp16, not {precision!r}; int8 is ONNX "
                "Runtime's dynamic quantisation on the CPU: use --backend onnxruntime"
            )
        if precision == "fp16" and device != "cuda":
            raise ConfigError("the PyTorch backend runs fp16 on CUDA only; use fp32 on the CPU")
        mode = mode or ("cudagraph" if device == "cuda" else "eager")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, but got {mode!r}")
        if mode == "cudagraph" and device != "cuda":
            raise ConfigError("mode 'cudagraph' replays CUDA graphs and needs device 'cuda'")
        if max_batch is not None and max_batch < 1:
            raise ConfigError(f"max_batch must be a positive integer or None, but got {max_batch}")
        torch, transformers = import_torch()
        if device == "cuda" and not torch.cuda.is_available():
            raise ProviderError(
                f"CUDA was requested but this torch ({torch.__version__}) sees no CUDA GPU; "
                "install a CUDA build of torch or pass --device cpu"
            )
        super().__init__(meta if meta is not None else load_meta(Path(model_dir)))
        from streamdet.clip.towers import image_tower, load_clip, text_tower

        self._torch = torch
        self.device = device
        self.mode = mode
        # None: as exported, where this device can run it (an fp16 export runs fp32 on the CPU)
        exported = "fp16" if self.meta.precision == "fp16" and device == "cuda" else "fp32"
        self.precision = precision or exported
        self.provider = f"torch-{device}"
        self.has_tokens = True  # the tokens are computed from the weights, whatever the export
        self.max_batch = max_batch or (
            DEFAULT_MAX_BATCH_GPU if device == "cuda" else DEFAULT_MAX_BATCH_CPU
        )
        self._threads = threads or physical_cores()
        if device == "cpu":
            torch.set_num_threads(self._threads)  # process-wide, as PyTorch has it
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self._dtype = dtype
        model = load_clip(torch, transformers, Path(source)).to(device)
        mean, std = list(self.meta.image_mean), list(self.meta.image_std)
        towers = {
            tokens: image_tower(torch, model, mean, std, tokens=tokens) for tokens in (False, True)
        }
        for tower in towers.values():
            tower.embeddings.to(device=device, dtype=dtype)  # folded buffers
        model.vision_model.to(dtype)
        model.visual_projection.to(dtype)
        self._text = text_tower(torch, model)
        self._model, self._mean, self._std = model, mean, std
        self._frame_towers: dict[str, Any] = {}  # one-pass towers by dense head, made on first use
        self._runs = {tokens: self._wrap(tower) for tokens, tower in towers.items()}
        logger.info(
            "streamdet: CLIP encoders of %s run on PyTorch %s (%s, %s)",
            self.meta.folder.name,
            device,
            mode,
            self.precision,
        )

    def _wrap(self, tower: Any) -> Callable[[Any], tuple[Any, ...]]:
        """``tower`` as this encoder's mode runs it: (B, S, S, 3) -> tuple of (B, ...)."""
        torch = self._torch
        if self.mode == "eager":
            return tower
        if self.mode == "compile":
            compiled = torch.compile(
                tower, mode="reduce-overhead" if self.device == "cuda" else None, dynamic=False
            )
            return PaddedBatches(torch, compiled, bucket=GRAPH_BUCKET, capture=False)
        return PaddedBatches(torch, tower, bucket=GRAPH_BUCKET, capture=True)

    def _tower(self, x: Any, tokens: bool) -> list[np.ndarray]:
        """Run the image tower on a device tensor of pixels in chunks of ``max_batch``."""
        torch = self._torch
        run = self._runs[tokens]
        parts = []
        with torch.inference_mode():
            for start in range(0, len(x), self.max_batch):
                outputs = run(x[start : start + self.max_batch].to(self._dtype))
                parts.append([o.float().cpu().numpy() for o in outputs])  # waits for the GPU
        return [np.concatenate(p) for p in zip(*parts, strict=True)]

    def _embed(self, pixels: np.ndarray, tokens: bool) -> list[np.ndarray]:
        x = self._torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
        return self._tower(x, tokens)

    def _embed_windows(
        self, frame: np.ndarray, corners: np.ndarray, tokens: bool
    ) -> list[np.ndarray]:
        """The frame crosses to the device once; the windows are cut there
        (``streamdet.clip.torch_crops``) and never come back."""
        torch = self._torch
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
            crops = crop_windows(torch, image, corners, self.image_size, self.fill)
        return self._tower(crops, tokens)

    def frame_patch(self, head: str) -> int:
        return int(self._model.vision_model.embeddings.patch_embedding.kernel_size[0])

    def _embed_frame(self, pixels: np.ndarray, head: str) -> np.ndarray:
        torch = self._torch
        if head not in self._frame_towers:
            from streamdet.clip.frame_tower import frame_tower

            tower = frame_tower(torch, self._model, self._mean, self._std, head)
            self._frame_towers[head] = tower.to(device=self.device, dtype=self._dtype)
        tower = self._frame_towers[head]
        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(self.device, self._dtype)
            return tower(x).float().cpu().numpy()

    def _embed_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self._text(
                torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
            )
        return out.float().cpu().numpy()
