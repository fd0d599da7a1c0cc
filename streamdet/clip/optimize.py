"""Faster image graphs for ONNX Runtime, made once per export and cached; session options.

An export holds one fp32 (or fp16) ``image.onnx``. From it this module derives, on first use:

- ``int8``: dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``): the weights of
  every MatMul/Gemm with a constant weight become int8 (per output channel), activations are
  quantised on the fly. It is faster than fp32 on CPUs with int8 dot-product instructions (VNNI)
  and stays close to fp32 (docs/benchmarks.md has the figures). The patch embedding is a MatMul
  in streamdet's exports (``towers.folded_embeddings``), so it is quantised too; the Conv of older
  exports stays fp32 (``ConvInteger`` is slower than the fp32 Conv it replaces). CPU only: ONNX
  Runtime has no GPU kernels for these ops.
- ``fp16``: weights and compute in fp16, inputs and outputs float32 (for GPUs; on the CPU it ran
  no faster than fp32).
- ``embeddings_only=True``: the graph without its per-patch ``tokens`` output and the nodes only
  that output needs. ONNX Runtime runs every node of a graph whatever outputs a call asks for, so
  a detector that does not use the tokens (no dense heatmaps, or verification crops) would pay for
  them: the pruned graph runs faster.
- ``fuse=True``: ONNX Runtime's transformer optimizer (``model_type="clip"``) fuses attention,
  skip-LayerNorm and GELU into single operators. It changes the outputs by float rounding only; on
  the CPU it was no faster than ONNX Runtime's own ``ORT_ENABLE_ALL`` fusions (and made int8
  slower), so the runtime does not use it; it is kept for benchmarks and GPUs.

Derived graphs live in ``<cache_dir>/graphs/<sha256 of image.onnx>/``: a changed export has another
checksum and gets fresh graphs. Each graph has a ``.json`` record (source checksum, recipe,
onnxruntime version, its own checksum) written after the graph, so a half-written or damaged
graph is rebuilt instead of loaded. Building needs the ``onnx`` package (``pip install onnx``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamdet.clip.files import sha256_file
from streamdet.clip.meta import IMAGE_FILE, IMAGE_OUTPUT, ModelMeta
from streamdet.errors import ConfigError, MissingDependencyError, ModelFormatError

logger = logging.getLogger("streamdet")

#: What ``precision`` may ask for at run time.
PRECISIONS = ("fp32", "fp16", "int8")
#: How each derived graph is made; part of the cache record, so changing a recipe rebuilds.
RECIPES = {
    "int8": "quantize_dynamic MatMul+Gemm, QInt8 weights per channel, uint8 activations",
    "fp16": "convert_float_to_float16 keep_io_types",
    "fused": "transformers optimizer model_type=clip opt_level=0",
    "embeddings": "embeddings output only, dead nodes and initializers removed",
    "batch": "batch dimension fixed to {batch}",
}
GRAPHS_DIR = "graphs"


# -- threads and session options ----------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _cgroup_cpu_limit(cgroup: Path) -> float | None:
    """CPUs allowed by a cgroup CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), None if none."""
    text = _read(cgroup / "cpu.max")
    if text:
        quota, _, period = text.partition(" ")
        if quota != "max" and period:
            try:
                return int(quota) / int(period)
            except ValueError:
                return None
        return None
    quota_text = _read(cgroup / "cpu" / "cpu.cfs_quota_us")
    period_text = _read(cgroup / "cpu" / "cpu.cfs_period_us")
    try:
        quota, period = int(quota_text or "-1"), int(period_text or "0")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def physical_cores(
    cpus: set[int] | None = None,
    *,
    sysfs: Path = Path("/sys/devices/system/cpu"),
    cgroup: Path = Path("/sys/fs/cgroup"),
) -> int:
    """Physical cores this process may run on: its CPU affinity, with hyper-threads of one core
    counted once (from sysfs topology), capped by a cgroup CPU quota. At least 1.

    GEMM-bound inference gains nothing from a core's second hyper-thread, and more threads than
    the quota allows only wait for each other.
    """
    if cpus is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = set(affinity(0)) if affinity else set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = sysfs / f"cpu{cpu}" / "topology"
        package, core = _read(topology / "physical_package_id"), _read(topology / "core_id")
        cores.add((package, core) if package is not None and core is not None else ("cpu", cpu))
    count = max(1, len(cores))
    limit = _cgroup_cpu_limit(cgroup)
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return count


def session_options(threads: int | None = None, *, spin: bool = False) -> Any:
    """ONNX Runtime session options for streamdet's towers.

    threads: intra-op threads (default ``physical_cores()``); inter-op 1, sequential execution
    (the graphs are one chain of operators, nothing runs beside it). All graph optimisations.
    spin: let idle pool threads busy-wait for the next operator. Off by default: with another
    process (or the video decoder and renderer) on the same cores, spinning threads take their
    time, and the towers ran slower with spinning on a 2-core machine with one core busy. On an
    idle machine it saves a thread wake-up per operator, which is small against an operator's
    work on a batch of windows.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3  # ORT prints provider-fallback warnings itself at level 2
    return options


# -- derived graphs ------------------------------------------------------------------------------


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision must be one of {', '.join(PRECISIONS)}, but got {precision!r}"
        )
    return precision


def graph_name(
    precision: str, fuse: bool, embeddings_only: bool = False, batch: int | None = None
) -> str:
    fused = "-fused" if fuse else ""
    pruned = "-embeddings" if embeddings_only else ""
    return f"image-{precision}{fused}{pruned}{f'-b{batch}' if batch else ''}.onnx"


def image_graph(
    meta: ModelMeta,
    precision: str,
    cache_dir: str | Path,
    *,
    fuse: bool = False,
    embeddings_only: bool = False,
    batch: int | None = None,
) -> Path:
    """The image graph of `meta`'s export in `precision`, fused, pruned to its embeddings output
    and with a fixed batch size (for CUDA graphs, ``streamdet.clip.cudagraph``) if asked; built
    once, cached.

    The export's own graph is returned as is when nothing is to change. fp32 from an fp16 export
    and int8 from an fp16 export are refused (ConfigError): re-export in fp32.
    """
    check_precision(precision)
    source = meta.image_path
    if batch is not None and batch < 1:
        raise ConfigError(f"batch must be a positive integer or None, but got {batch}")
    if precision != meta.precision and meta.precision != "fp32":
        raise ConfigError(
            f"'{meta.folder}' was exported in {meta.precision}; {precision} needs an fp32 export "
            "(re-export without --fp16)"
        )
    steps = _steps(
        precision, meta.precision, fuse=fuse, embeddings_only=embeddings_only, batch=batch
    )
    if not steps:
        return source
    checksum = meta.files.get(IMAGE_FILE) or sha256_file(source)
    folder = Path(cache_dir).expanduser() / GRAPHS_DIR / checksum
    target = folder / graph_name(precision, fuse, embeddings_only, batch)
    record = _record(checksum, precision, fuse, embeddings_only, [recipe for _, recipe, _ in steps])
    if is_current(target, record):
        return target
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    step = source
    scratch: list[Path] = []
    try:
        for tag, _, make in steps:
            out = _temp(folder, tag)
            scratch.append(out)
            make(step, out)
            step = out
        os.replace(step, target)
        record["sha256"] = sha256_file(target)
        write_record(target, record)
    finally:
        for path in scratch:
            path.unlink(missing_ok=True)
    logger.info(
        "streamdet: made %s of %s in %.1f s (cached in %s)",
        target.name,
        meta.folder.name,
        time.perf_counter() - started,
        folder,
    )
    return target


_Step = tuple[str, str, Callable[[Path, Path], None]]  # (temp-file tag, recipe, source -> out)


def _steps(
    precision: str,
    source_precision: str,
    *,
    fuse: bool,
    embeddings_only: bool,
    batch: int | None,
) -> list[_Step]:
    """The rewrites that turn the export's graph into the one asked for, in order; also what the
    cache record says the graph was made by."""
    steps: list[_Step] = []
    if fuse:
        steps.append(("fused", RECIPES["fused"], _fuse))
    if embeddings_only:
        steps.append(("embeddings", RECIPES["embeddings"], _prune_to_embeddings))
    if precision != source_precision:
        convert = _quantize if precision == "int8" else to_fp16
        steps.append((precision, RECIPES[precision], convert))
    if batch is not None:
        fix = functools.partial(_fix_batch, batch=batch)
        steps.append(("batch", RECIPES["batch"].format(batch=batch), fix))
    return steps


def _record(
    checksum: str, precision: str, fuse: bool, embeddings_only: bool, recipe: list[str]
) -> dict[str, Any]:
    import onnxruntime as ort

    return {
        "source_sha256": checksum,
        "precision": precision,
        "fused": fuse,
        "embeddings_only": embeddings_only,
        "recipe": recipe,
        "onnxruntime": ort.__version__,
    }


def _record_path(target: Path) -> Path:
    return target.with_suffix(".json")


def is_current(target: Path, record: dict[str, Any]) -> bool:
    """True if `target` exists, was made by this recipe from this source, and is undamaged."""
    try:
        saved = json.loads(_record_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(saved, dict) or not target.is_file():
        return False
    if any(saved.get(key) != value for key, value in record.items()):
        return False
    return saved.get("sha256") == sha256_file(target)


def write_record(target: Path, record: dict[str, Any]) -> None:
    """Write ``target``'s cache record beside it, atomically (after the graph itself)."""
    path = _record_path(target)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    temp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)


def _temp(folder: Path, tag: str) -> Path:
    return folder / f".{tag}-{uuid.uuid4().hex[:8]}.onnx"


def _need_onnx(what: str) -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            f"{what} needs the onnx package to rewrite the graph once; pip install onnx"
        ) from None
    return onnx


def _prune_to_embeddings(source: Path, out: Path) -> None:
    """Keep only the ``embeddings`` output and what it is computed from."""
    onnx = _need_onnx("the embeddings-only image graph")
    model = onnx.load(str(source))
    graph = model.graph
    kept_outputs = [o for o in graph.output if o.name == IMAGE_OUTPUT]
    if not kept_outputs:
        raise ModelFormatError(f"{source} has no '{IMAGE_OUTPUT}' output; export the model again")
    producer = {name: node for node in graph.node for name in node.output}
    needed, stack = set(), [IMAGE_OUTPUT]
    while stack:  # walk back from the output (node order need not be topological)
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name in producer:
            stack.extend(n for n in producer[name].input if n)
    kept_nodes = [node for node in graph.node if any(n in needed for n in node.output)]
    _replace(graph.output, kept_outputs)
    _replace(graph.node, kept_nodes)
    _replace(graph.initializer, [t for t in graph.initializer if t.name in needed])
    _replace(graph.value_info, [v for v in graph.value_info if v.name in needed])
    onnx.save(model, str(out))


def _fix_batch(source: Path, out: Path, batch: int) -> None:
    """The graph with the first dimension of every input and output fixed to `batch`, so that
    ONNX Runtime can fold all shape arithmetic (a CUDA graph needs every node on the GPU)."""
    onnx = _need_onnx("a fixed-batch image graph")
    model = onnx.load(str(source))
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = batch
    onnx.save(model, str(out))


def _replace(field: Any, items: list[Any]) -> None:
    """Set a repeated protobuf field to `items` (copied first: they may be its own elements)."""
    kept = [type(item)() for item in items]
    for copy, item in zip(kept, items, strict=True):
        copy.CopyFrom(item)
    del field[:]
    field.extend(kept)


def _quantize(source: Path, out: Path) -> None:
    _need_onnx("precision int8")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropMessage("pre-processing before quantization")  # advice for static quantisation
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            source,
            out,
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Fused graphs hold contrib ops whose outputs shape inference cannot type.
            extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT
        )
    finally:
        root.removeFilter(quiet)


def quantize_int8(source: Path, out: Path) -> None:
    """``source`` quantised to int8 at ``out`` by the recipe the runtime's int8 graphs are made
    with (``RECIPES["int8"]``): for graphs that are not a streamdet export, such as the
    benchmarks' OWL-ViT peer, so that both sides of a comparison get the same int8."""
    _quantize(source, out)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def to_fp16(source: Path, out: Path) -> None:
    """``source`` with fp16 weights and compute at ``out`` (inputs and outputs stay float32)."""
    onnx = _need_onnx("precision fp16")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(out))


def attention_shape(model: Any) -> tuple[int, int]:
    """(num_heads, hidden_size) of a CLIP vision graph, (0, 0) when not recognised.

    hidden_size is the width of the first LayerNormalization; the head size is the constant last
    dimension of the first attention reshape (``.../self_attn/Concat``).
    """
    from onnx import numpy_helper

    sizes = {i.name: list(i.dims) for i in model.graph.initializer}
    constants = {
        n.output[0]: numpy_helper.to_array(n.attribute[0].t).ravel().tolist()
        for n in model.graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].type == 4  # TENSOR
    }
    hidden = next(
        (
            sizes[n.input[1]][0]
            for n in model.graph.node
            if n.op_type == "LayerNormalization" and len(sizes.get(n.input[1], [])) == 1
        ),
        0,
    )
    head = next(
        (
            int(constants[n.input[-1]][-1])
            for n in model.graph.node
            if n.op_type == "Concat" and "self_attn" in n.name and n.input[-1] in constants
        ),
        0,
    )
    if hidden <= 0 or head <= 0 or hidden % head:
        return 0, 0
    return hidden // head, hidden


def _fuse(source: Path, out: Path) -> None:
    onnx = _need_onnx("fusing")
    from onnxruntime.transformers import optimizer

    heads, hidden = attention_shape(onnx.load(str(source), load_external_data=False))
    model = optimizer.optimize_model(
        str(source), model_type="clip", num_heads=heads, hidden_size=hidden, opt_level=0
    )
    model.save_model_to_file(str(out), use_external_data_format=False)
