"""The peer streamdet is compared with: OWL-ViT B/32 at 768 px (the model NanoOWL runs), timed the
way NanoOWL runs it and the way streamdet runs its own towers.

* The model is transformers' own ``OwlViTForObjectDetection(OwlViTConfig())`` with random weights
  (``torch.manual_seed(0)``): ViT-B/32 at 768x768 (24x24 patch tokens), speed only. ``tiny=True``
  gives a tiny config of the same architecture for the tests.
* The text queries are embedded ONCE, by the PyTorch text tower, outside the timed loop (NanoOWL's
  ``encode_text`` before ``predict``); they are an input of the image graph, so one graph serves
  every prompt set.
* The timed part, per frame, is the image path of ``OwlViTForObjectDetection.forward``: the image
  encoder, the class head against the cached query embeddings and the box head (``image_part``).
  It is exported once to ONNX (the legacy exporter, as streamdet's own export) and cached under
  the benchmarks' cache with a stamp of this file, torch and transformers; it runs on ONNX
  Runtime with streamdet's session options (``session_options(threads)``: the same intra-op
  threads as streamdet's towers). int8 is ONNX Runtime's dynamic quantisation by streamdet's own
  recipe (``streamdet.clip.optimize.quantize_int8``).
* Preprocessing is timed apart from the model: the frame resized to 768x768 (NanoOWL's resize, no
  aspect kept), RGB, scaled and normalised with OpenAI CLIP's mean and std (what
  ``OwlViTImageProcessor`` does).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from _common import ms_since
from streamdet.clip.files import sha256_file
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.clip.optimize import quantize_int8, session_options
from streamdet.clip.ort_encoders import DEVICE_PROVIDERS

#: OWL-ViT's text tower takes 16 tokens (OwlViTProcessor pads and truncates to this).
QUERY_LENGTH = 16
#: CLIP's tokenizer files (OWL-ViT uses CLIP's tokenizer); the built-in model ships them.
TOKENIZER_DIR = BUILTIN_MODELS["streamdet/scenes-clip"]
#: The tests' tiny OWL-ViT: 64 px images, patch 16 (4x4 tokens), width 32. The class head compares
#: its width-32 projection with the text embeddings, so projection_dim is the text width.
TINY_OWL_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": QUERY_LENGTH,
}
TINY_OWL_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 64,
    "patch_size": 16,
}
GRAPH = "owlvit-image.onnx"
STAMP = "stamp.json"
INPUTS = ("pixels", "queries")
OUTPUTS = ("logits", "boxes")


def build_owlvit(*, tiny: bool, seed: int = 0) -> Any:
    """``OwlViTForObjectDetection`` from transformers' own ``OwlViTConfig()`` (or the tiny one),
    random weights from ``torch.manual_seed(seed)``, in eval mode."""
    import torch
    import transformers

    if tiny:
        config = transformers.OwlViTConfig(
            text_config=TINY_OWL_TEXT, vision_config=TINY_OWL_VISION, projection_dim=32
        )
    else:
        config = transformers.OwlViTConfig()
    torch.manual_seed(seed)
    return transformers.OwlViTForObjectDetection(config).eval()


def describe(model: Any) -> str:
    """The peer's name in reports: its image size, patch and width."""
    v = model.config.vision_config
    return (
        f"OWL-ViT (transformers OwlViTConfig{'' if v.image_size == 768 else ', tiny'}): "
        f"{v.image_size} px, patch {v.patch_size}, width {v.hidden_size}, "
        f"{v.num_hidden_layers} layers, random weights"
    )


def image_part(model: Any) -> Any:
    """The per-frame part of ``OwlViTForObjectDetection.forward`` as a module of its own:
    (1, 3, S, S) normalised pixels and (Q, D) query embeddings -> logits (1, P, Q) and boxes
    (1, P, 4, cxcywh in 0..1), with P the patch tokens. It calls the model's own
    ``image_embedder``, ``class_predictor`` and ``box_predictor``, so it computes what the whole
    model computes for those queries (the parity test checks it)."""
    import torch

    class ImagePart(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.owl = model

        def forward(self, pixels: Any, queries: Any) -> tuple[Any, Any]:
            feature_map, _ = self.owl.image_embedder(pixel_values=pixels)
            b, h, w, d = feature_map.shape
            feats = feature_map.reshape(b, h * w, d)
            logits, _ = self.owl.class_predictor(feats, queries[None])
            boxes = self.owl.box_predictor(feats, feature_map)
            return logits, boxes

    return ImagePart().eval()


def tokenizer() -> Any:
    """CLIP's tokenizer (the files the built-in model ships), as OWL-ViT uses it."""
    import transformers

    return transformers.AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def text_inputs(prompts: Sequence[str]) -> dict[str, Any]:
    """Token ids and mask as ``OwlViTProcessor`` makes them: padded and cut to 16 tokens."""
    return tokenizer()(
        list(prompts),
        padding="max_length",
        max_length=QUERY_LENGTH,
        truncation=True,
        return_tensors="pt",
    )


def query_embeddings(model: Any, prompts: Sequence[str]) -> np.ndarray:
    """(Q, D) text query embeddings, computed once by the PyTorch text tower (NanoOWL's
    ``encode_text``): what ``forward`` feeds the class head."""
    import torch

    with torch.no_grad():
        out = model.owlvit.get_text_features(**text_inputs(prompts))
    out = out if isinstance(out, torch.Tensor) else out.pooler_output
    return out.numpy().astype(np.float32)


def export_image_part(model: Any, out: Path) -> Path:
    """The image part exported to ONNX at ``out`` (query count dynamic), written whole then moved
    into place."""
    import warnings

    import torch

    size = int(model.config.vision_config.image_size)
    dim = int(model.config.text_config.hidden_size)
    pixels = torch.rand(1, 3, size, size)
    queries = torch.rand(3, dim)
    partial = out.with_name(out.name + ".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings on shape checks that are constant here
        torch.onnx.export(
            image_part(model),
            (pixels, queries),
            str(partial),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={"queries": {0: "queries"}, "logits": {2: "queries"}},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(out)
    return out


def _stamp(tiny: bool, seed: int) -> dict[str, Any]:
    """What a cached export was made from: this file, the libraries, the config, the seed."""
    import torch
    import transformers

    return {
        "peer_code": sha256_file(Path(__file__)),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tiny": tiny,
        "seed": seed,
    }


def peer_graph(cache_dir: Path, model: Any, *, tiny: bool, seed: int = 0) -> Path:
    """The image part's fp32 ONNX graph, exported once and cached under ``cache_dir``; redone
    when this file, torch, transformers, the config or the seed changed."""
    key = hashlib.sha256(json.dumps(_stamp(tiny, seed), sort_keys=True).encode()).hexdigest()
    folder = cache_dir / f"owlvit-{'tiny' if tiny else 'b32-768'}-seed{seed}"
    graph, stamp = folder / GRAPH, folder / STAMP
    made_by = json.loads(stamp.read_text(encoding="utf-8")) if stamp.is_file() else {}
    if graph.is_file() and made_by.get("key") == key:
        return graph
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    export_image_part(model, graph)
    stamp.write_text(json.dumps({"key": key, **_stamp(tiny, seed)}, indent=2), encoding="utf-8")
    return graph


def int8_graph(fp32: Path) -> Path:
    """The dynamic-int8 copy of ``fp32`` beside it (streamdet's recipe), made once."""
    out = fp32.with_name(fp32.stem + "-int8.onnx")
    if not out.is_file() or out.stat().st_mtime < fp32.stat().st_mtime:
        partial = out.with_name(out.name + ".partial.onnx")
        quantize_int8(fp32, partial)
        os.replace(partial, out)
    return out


@dataclass(frozen=True)
class PeerTimes:
    """Milliseconds per frame of the peer in one precision: preprocessing and model, apart."""

    precision: str
    preprocess_ms: tuple[float, ...]
    model_ms: tuple[float, ...]

    def summary(self) -> dict[str, Any]:
        """JSON-ready: per-frame lists, means, the model median and s/frame (model time)."""
        model_mean = float(np.mean(self.model_ms))
        return {
            "precision": self.precision,
            "frames": len(self.model_ms),
            "model_s_per_frame": round(model_mean / 1e3, 6),
            "model_ms_mean": round(model_mean, 2),
            "model_ms_median": round(float(np.median(self.model_ms)), 2),
            "preprocess_ms_mean": round(float(np.mean(self.preprocess_ms)), 2),
            "model_ms": [round(v, 2) for v in self.model_ms],
        }


class OwlPeer:
    """The image graph on ONNX Runtime with the queries fixed: preprocess a frame, run it."""

    def __init__(
        self,
        graph: Path,
        queries: np.ndarray,
        image_size: int,
        *,
        threads: int,
        device: str = "cpu",
    ) -> None:
        import onnxruntime as ort
        from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        providers = [p for p in DEVICE_PROVIDERS[device] if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(
            str(graph), sess_options=session_options(threads), providers=providers
        )
        self.provider = self.session.get_providers()[0]
        self.queries = np.ascontiguousarray(queries, np.float32)
        self.size = image_size
        self.mean = np.asarray(OPENAI_CLIP_MEAN, np.float32).reshape(1, 1, 3)
        self.std = np.asarray(OPENAI_CLIP_STD, np.float32).reshape(1, 1, 3)

    def preprocess(self, frame: np.ndarray) -> np.ndarray:
        """A BGR uint8 frame -> (1, 3, S, S) float32: resized to SxS, RGB, normalised."""
        square = cv2.resize(frame, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        rgb = square[:, :, ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(((rgb - self.mean) / self.std).transpose(2, 0, 1)[None])

    def infer(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (1, P, Q) and boxes (1, P, 4) for preprocessed pixels."""
        logits, boxes = self.session.run(list(OUTPUTS), {"pixels": pixels, "queries": self.queries})
        return logits, boxes

    def time_frames(self, frames: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
        """(preprocess ms, model ms) per frame; ``infer`` is what the model time covers."""
        pre: list[float] = []
        model: list[float] = []
        for frame in frames:
            t0 = time.perf_counter()
            pixels = self.preprocess(frame)
            t1 = time.perf_counter()
            self.infer(pixels)
            pre.append((t1 - t0) * 1e3)
            model.append(ms_since(t1))
        return pre, model
