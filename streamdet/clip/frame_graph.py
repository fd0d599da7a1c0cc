"""The one-pass frame graph (``frame_tower``) as ONNX: exported, checked against PyTorch, cached.

``frame-<head>.onnx`` takes (N, H, W, 3) BGR float32 0..255 frames of any size that is a multiple
of the patch size and returns (N, H / patch, W / patch, D) L2-normalised patch-token embeddings
(``TOKENS_OUTPUT``). One graph per dense head serves every frame size.

Where a graph comes from, in order:

1. the model folder itself: ``streamdet export`` writes the frame graph of the model's dense head
   (the built-in model ships it), listed in meta.json's ``files``;
2. the cache, ``<cache_dir>/frames/<model checksum>/frame-<head>-<precision>.onnx``, made once
   from the model's Hugging Face weights (needs the ``export`` extra: torch and transformers),
   checked against PyTorch on two frame sizes before it is kept;
3. int8 and fp16 versions of either, derived once and cached beside it (``streamdet.clip.optimize``
   does the same for the window graph, with the same records).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from streamdet.clip.files import sha256_file
from streamdet.clip.frame_tower import DENSE_HEADS, frame_tower
from streamdet.clip.meta import ModelMeta
from streamdet.clip.optimize import (
    RECIPES,
    check_precision,
    is_current,
    quantize_int8,
    to_fp16,
    write_record,
)
from streamdet.errors import ConfigError, ExportError, MissingDependencyError, ParityError

logger = logging.getLogger("streamdet")

FRAMES_DIR = "frames"
#: ONNX opset of frame graphs made from the weights (as `streamdet export`'s default).
FRAME_OPSET = 17
TOKENS_OUTPUT = "tokens"
#: Largest max-abs-diff between the fp32 frame graph and PyTorch accepted at export.
FRAME_TOLERANCE = 1e-4
#: Frame grids (rows, cols of patches) the parity check runs at: one wider, one taller.
PARITY_GRIDS = ((3, 5), (4, 2))


def frame_file(head: str) -> str:
    """The frame graph's file name in a model folder."""
    return f"frame-{head}.onnx"


def check_head(head: str) -> str:
    if head not in DENSE_HEADS:
        raise ConfigError(f"dense_head must be one of {', '.join(DENSE_HEADS)}, but got {head!r}")
    return head


def export_frame_graph(
    torch: Any, model: Any, mean: list[float], std: list[float], head: str, out: Path, opset: int
) -> float:
    """Export ``frame_tower(head)`` of the loaded CLIP ``model`` to ``out`` with dynamic batch,
    height and width; returns the parity (max abs diff against PyTorch over ``PARITY_GRIDS``)
    and raises ParityError (removing ``out``) past ``FRAME_TOLERANCE``."""
    tower = frame_tower(torch, model, mean, std, head)
    patch = int(model.vision_model.embeddings.patch_embedding.kernel_size[0])
    example = torch.rand(1, 2 * patch, 3 * patch, 3) * 255.0
    with warnings.catch_warnings(), torch.no_grad():
        for category in (DeprecationWarning, torch.jit.TracerWarning, UserWarning):
            warnings.simplefilter("ignore", category=category)
        try:
            torch.onnx.export(
                tower,
                (example,),
                str(out),
                input_names=["pixels"],
                output_names=[TOKENS_OUTPUT],
                dynamic_axes={
                    "pixels": {0: "batch", 1: "height", 2: "width"},
                    TOKENS_OUTPUT: {0: "batch", 1: "rows", 2: "cols"},
                },
                opset_version=opset,
                dynamo=False,
            )
        except Exception as error:
            first_line = (str(error).splitlines() or [""])[0]
            raise ExportError(
                f"exporting the {head} frame graph failed ({type(error).__name__}: {first_line})"
            ) from error
    _record_patch(out, patch)
    diff = frame_parity(torch, tower, out, patch)
    if not diff <= FRAME_TOLERANCE:
        out.unlink(missing_ok=True)
        raise ParityError(
            f"the {head} frame graph differs from PyTorch by {diff:.2e} "
            f"(tolerance {FRAME_TOLERANCE:.0e}); nothing was kept"
        )
    return diff


def write_frame_graphs(
    torch: Any,
    model: Any,
    mean: list[float],
    std: list[float],
    heads: tuple[str, ...],
    folder: Path,
    opset: int,
) -> dict[str, float]:
    """``frame-<head>.onnx`` for every head into ``folder`` (``streamdet export``); each one's
    parity against PyTorch, by head."""
    return {
        head: export_frame_graph(
            torch, model, mean, std, check_head(head), folder / frame_file(head), opset
        )
        for head in heads
    }


def _record_patch(path: Path, patch: int) -> None:
    """Write the patch size into the graph's metadata, where the runtime reads it."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "patch", str(patch)
    onnx.save(model, str(path))


def frame_parity(torch: Any, tower: Any, path: Path, patch: int) -> float:
    """Max abs diff between ONNX Runtime running ``path`` and PyTorch's ``tower`` on random
    frames of every grid in ``PARITY_GRIDS``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for rows, cols in PARITY_GRIDS:
        frames = torch.rand(2, rows * patch, cols * patch, 3, generator=generator) * 255.0
        with torch.no_grad():
            expected = tower(frames).numpy()
        (got,) = session.run(None, {"pixels": frames.numpy()})
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def frame_graph(
    meta: ModelMeta,
    head: str,
    precision: str,
    cache_dir: str | Path,
    weights: Callable[[], Path | None],
) -> Path:
    """The frame graph of ``meta``'s model for ``head`` in ``precision`` (module docstring);
    ``weights`` names the model's Hugging Face folder when the graph must be exported."""
    check_head(head)
    check_precision(precision)
    shipped = meta.folder / frame_file(head)
    folder = Path(cache_dir).expanduser() / FRAMES_DIR / meta.checksum
    if shipped.is_file():
        source, source_precision = shipped, meta.precision
    else:
        source, source_precision = folder / f"frame-{head}-fp32.onnx", "fp32"
        if not is_current(source, _record(meta.checksum, head, "fp32")):
            _export_cached(meta, head, source, weights)
    if precision == source_precision:
        return source
    if source_precision != "fp32":
        raise ConfigError(
            f"'{meta.folder}' was exported in {source_precision}; {precision} needs an fp32 export"
        )
    target = folder / f"frame-{head}-{precision}.onnx"
    record = _record(sha256_file(source), head, precision)
    if not is_current(target, record):
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{target.name}.{os.getpid()}.tmp.onnx"
        try:
            (quantize_int8 if precision == "int8" else to_fp16)(source, temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        record["sha256"] = sha256_file(target)
        write_record(target, record)
    return target


def _record(checksum: str, head: str, precision: str) -> dict[str, Any]:
    import onnxruntime as ort

    recipe = "frame_tower export, patch in metadata" if precision == "fp32" else RECIPES[precision]
    return {
        "source_sha256": checksum,
        "head": head,
        "precision": precision,
        "recipe": recipe,
        "onnxruntime": ort.__version__,
    }


def _export_cached(
    meta: ModelMeta, head: str, target: Path, weights: Callable[[], Path | None]
) -> None:
    """Export the frame graph for ``head`` from the model's weights into the cache."""
    source = weights()
    if source is None:
        raise ConfigError(
            f"method='dense' with dense_head={head!r} needs the frame graph "
            f"'{frame_file(head)}', which '{meta.folder}' does not hold, and the model's "
            "Hugging Face weights to make it are not here; re-export the model with "
            f"`streamdet export --dense-head {head}`, or pass its Hugging Face folder"
        )
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingDependencyError(
            f"making the {head} frame graph of '{meta.folder.name}' needs torch and "
            "transformers once (pip install 'streamdet[export]'); it is then cached"
        ) from None
    from streamdet.clip.towers import load_clip

    started = time.perf_counter()
    model = load_clip(torch, transformers, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp.onnx")
    try:
        diff = export_frame_graph(
            torch, model, list(meta.image_mean), list(meta.image_std), head, temp, FRAME_OPSET
        )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    record = _record(meta.checksum, head, "fp32")
    record["sha256"] = sha256_file(target)
    record["parity_max_abs_diff"] = diff
    write_record(target, record)
    logger.info(
        "streamdet: made the %s frame graph of %s in %.1f s (parity %.1e, cached in %s)",
        head,
        meta.folder.name,
        time.perf_counter() - started,
        target.parent,
    )


def graph_patch(path: Path) -> int:
    """The patch size a frame graph records in its metadata (0 when it records none)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    value = {p.key: p.value for p in model.metadata_props}.get("patch", "0")
    return int(value) if value.isdigit() else 0


def sized_graph(path: Path, batch: int, height: int, width: int) -> bytes:
    """The frame graph at ``path`` with its input fixed to (batch, height, width, 3), serialised.

    Why: the graph interpolates its position embeddings (and builds NACLIP's neighbourhood bias)
    from the input's size, and ONNX Runtime's bicubic ``Resize`` is slow on a CPU; with every
    dimension fixed, ONNX Runtime folds that whole subgraph into a constant when the session is
    made, once per frame size (a third of the built-in model's pass at 640x360). The
    arithmetic is unchanged: outputs equal the size-free graph's (tested).
    """
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (batch, height, width, 3), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    return model.SerializeToString()
