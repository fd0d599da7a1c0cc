"""The command line's detector and runtime flags, mapped onto the configuration in one place.

Every flag here is one setting of ``streamdet.config`` under its flat name (``--peak-ratio`` is
``peak_ratio``); ``--preset NAME`` (``--fast`` for ``--preset fast``) picks a preset. A flag left
out is not a setting: the layers below it (preset, model, built-in) decide. argparse only parses
types here; ranges and combinations are checked by ``streamdet.config.resolve``, the same checks the
Python API gets, so the CLI and ``Detector(...)`` cannot disagree.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamdet.config import (
    BACKENDS,
    DEFAULT_MODEL,
    DENSE_HEADS,
    DEVICES,
    METHODS,
    PRECISIONS,
    PRESETS,
    SCORINGS,
    SETTINGS,
    VIEW_COMBINES,
    TrackConfig,
)
from streamdet.errors import ConfigError


def _margins(text: str) -> tuple[float, ...]:
    """``--verify-margins 1.5,2`` (crop sides as multiples of a box's longer side)."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected crop sizes as multiples of a box's side such as 1.5,2 , got {text!r}"
        ) from None


def _scales(text: str) -> tuple[int, ...]:
    """``--scales 2,6`` (extra window sizes in cells) or ``--scales none``."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected window sizes in cells such as 2,6 (or none), got {text!r}"
        ) from None


def _threshold(text: str) -> tuple[str | None, float]:
    """``--threshold 0.4`` (every prompt) or ``--threshold "a red car=0.6"`` (one prompt)."""
    prompt, sep, number = text.rpartition("=")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number such as 0.4, or PROMPT=NUMBER such as 'a red car=0.6', got {text!r}"
        ) from None
    return (prompt.strip() if sep else None), value


def _reuse(text: str) -> float | bool:
    """``--reuse 0.04`` (a change tolerance, 0 exact), ``--reuse on`` (the default tolerance) or
    ``--reuse off``."""
    word = text.strip().lower()
    if word in ("off", "no", "none", "false"):
        return False
    if word in ("on", "yes", "true"):
        return True
    try:
        return float(word)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a change tolerance such as 0.04 (0: exact), on or off, got {text!r}"
        ) from None


@dataclass(frozen=True)
class _Flag:
    """One setting's flag: its argparse options (``dest`` is the setting's flat name)."""

    setting: str
    options: dict[str, Any]
    runtime: bool = False  # runtime flags also apply to commands without a detector


def _switch(help_text: str) -> dict[str, Any]:
    return {"action": argparse.BooleanOptionalAction, "default": None, "help": help_text}


MODELS = " (default: the model's suggestion)"
_TRACK = TrackConfig()  # the built-in tracking defaults, shown in the flags' help

FLAGS: tuple[_Flag, ...] = (
    _Flag("patch", {"type": int, "help": "cell size in pixels" + MODELS}),
    _Flag("window", {"type": int, "help": "window size in cells" + MODELS}),
    _Flag("stride", {"type": int, "help": "window step in cells" + MODELS}),
    _Flag("scales", {"type": _scales, "help": "extra window sizes in cells, e.g. 2,6, or none"}),
    _Flag("overhang", _switch("windows may hang over the frame edges" + MODELS)),
    _Flag(
        "method",
        {"choices": METHODS, "help": "windows (default), occlusion, or dense (one pass a frame)"},
    ),
    _Flag("scoring", {"choices": SCORINGS, "help": "calibrated (default) or reference"}),
    _Flag("dense", _switch("fine heatmaps from patch tokens" + MODELS)),
    _Flag(
        "dense_head",
        {"choices": DENSE_HEADS, "help": "the dense method's last layer (default: naclip)"},
    ),
    _Flag(
        "token_scale",
        {"type": float, "help": "dense method: tokens this many times coarser (faster), e.g. 1.5"},
    ),
    _Flag(
        "max_side",
        {
            "type": int,
            "metavar": "PX",
            "help": "dense method: a frame longer than PX pixels is seen as if resized to PX "
            "(coarser tokens: what PX costs); boxes stay in its own pixels; 0 for off" + MODELS,
        },
    ),
    _Flag(
        "zoom_scale",
        {
            "type": float,
            "help": "dense method: a second pass with tokens this fine (e.g. 0.75) over the "
            "first pass's candidates; 0 for none" + MODELS,
        },
    ),
    _Flag(
        "zoom_level",
        {"type": float, "help": "dense method: the first pass's probability that earns a second"},
    ),
    _Flag(
        "zoom_margin",
        {"type": int, "help": "dense method: tokens of context around each second-pass crop"},
    ),
    _Flag(
        "templates",
        {
            "action": "append",
            "metavar": "TEMPLATE",
            "help": "prompt template with one {}, e.g. "
            "'a photo of {}.' (repeat to average several)",
            "flags": ("--template",),
        },
    ),
    _Flag(
        "background_prompts",
        {
            "action": "append",
            "metavar": "TEXT",
            "help": "what 'nothing' looks like to calibrated "
            "scoring (repeat; default: the model's list)",
            "flags": ("--background",),
        },
    ),
    _Flag(
        "frame_sizes",
        _switch("read a leading size word ('a small ...') as a size in the frame (default on)"),
    ),
    _Flag(
        "threshold",
        {
            "type": _threshold,
            "action": "append",
            "metavar": "[PROMPT=]NUMBER",
            "help": "box threshold 0..1 for every prompt, or PROMPT=NUMBER for one (repeat)",
        },
    ),
    _Flag("peak_ratio", {"type": float, "help": "tighten boxes to their regions' cores, 0..1"}),
    _Flag("refine", _switch("box edges inside their border cells" + MODELS)),
    _Flag(
        "split",
        {
            "type": int,
            "metavar": "N",
            "help": "cut touching objects' regions into cores of at least N cells (0: never)",
        },
    ),
    _Flag("nms_iou", {"type": float, "help": "overlap above which a weaker box is dropped"}),
    _Flag("verify", _switch("score a crop around every box again" + MODELS)),
    _Flag("verify_floor", {"type": float, "help": "lowest verified probability kept, 0..1"}),
    _Flag(
        "verify_margins",
        {"type": _margins, "help": "verification crop sizes, x a box's longer side, e.g. 1.5,2"},
    ),
    _Flag(
        "verify_max",
        {"type": int, "metavar": "N", "help": "verify at most N boxes a frame (the strongest)"},
    ),
    _Flag(
        "verify_refine",
        {
            "type": float,
            "metavar": "WEIGHT",
            "help": "move boxes towards what their verification crop shows, 0..1 (0: off)",
        },
    ),
    _Flag(
        "verify_refine_second",
        {
            "type": float,
            "metavar": "SHARE",
            "help": "with --verify-refine: the second crop size's share in where a box moves, "
            "0..1 (0: the first crop only)",
        },
    ),
    _Flag(
        "verify_recheck",
        {
            "type": float,
            "metavar": "P",
            "help": "other crop sizes only for boxes whose first crop gives at least P (0: all)",
        },
    ),
    _Flag(
        "verify_recheck_floor",
        {
            "type": float,
            "metavar": "P",
            "help": "with --verify-recheck: keep a box its first crop rejects if another gives P",
        },
    ),
    _Flag(
        "verify_combine",
        {
            "choices": VIEW_COMBINES,
            "help": "a box's probability from its crops: the best one, or their mean",
        },
    ),
    _Flag(
        "verify_budget",
        {
            "type": int,
            "metavar": "N",
            "help": "at most N crops a frame: past them, boxes get the first crop size only",
        },
    ),
    _Flag(
        "verify_trust",
        {
            "type": float,
            "metavar": "W",
            "help": "boxes the heatmap is sure of need less from their crops (0: all need "
            "--verify-floor)",
        },
    ),
    _Flag(
        "reuse",
        {
            "type": _reuse,
            "metavar": "TOLERANCE",
            "help": "keep the embeddings of windows whose pixels changed by at most this "
            "(0..1, 0: exact; on, off); default: on",
        },
    ),
    _Flag(
        "reuse",
        {
            "action": "store_const",
            "const": False,
            "help": "compute every window of every frame (the same as --reuse off)",
            "flags": ("--no-reuse",),
        },
    ),
    _Flag("reuse_refresh", {"type": int, "help": "compute every window at least every N frames"}),
    _Flag(
        "reuse_motion",
        {
            "type": float,
            "help": "compute the whole frame when its change since the last frame touches "
            "more than this fraction of its cells (a moving camera); default 0.25",
        },
    ),
    _Flag("track", _switch("keep box identities across a video's frames (default on)")),
    _Flag(
        "track_min_hits",
        {
            "type": int,
            "metavar": "N",
            "help": f"show a track from its N-th found frame (default {_TRACK.min_hits})",
        },
    ),
    _Flag(
        "track_max_missed",
        {
            "type": int,
            "metavar": "N",
            "help": f"a missed track keeps its id N frames (default {_TRACK.max_missed})",
        },
    ),
    _Flag(
        "track_hold",
        {
            "type": int,
            "metavar": "N",
            "help": "a missed track stays drawn, where it is heading, N frames "
            f"(default {_TRACK.hold})",
        },
    ),
    _Flag(
        "track_iou",
        {"type": float, "help": f"least IoU of a box with its track (default {_TRACK.iou})"},
    ),
    _Flag(
        "track_high",
        {
            "type": float,
            "help": "boxes scoring this are matched first; weaker ones then to tracks just seen "
            f"(default {_TRACK.high})",
        },
    ),
    _Flag(
        "track_smoothing",
        {
            "type": float,
            "help": "0..1: weight of a track's predicted box against the new box "
            f"(default {_TRACK.smoothing})",
        },
    ),
    _Flag("device", {"help": f"where the model runs: {', '.join(DEVICES)} (default: cpu)"}, True),
    _Flag(
        "backend",
        {
            "choices": BACKENDS,
            "help": "what runs the model: auto (default: torch on cuda when "
            "it sees a GPU, else onnxruntime), onnxruntime or torch",
        },
        True,
    ),
    _Flag(
        "precision",
        {
            "choices": PRECISIONS,
            "help": "image tower precision: int8 (CPU), fp16 (GPU); default: as exported",
        },
        True,
    ),
    _Flag(
        "allow_fallback",
        {
            "action": "store_true",
            "default": None,
            "help": "run on the CPU when the requested GPU cannot start, instead of stopping",
        },
        True,
    ),
    _Flag(
        "max_batch", {"type": int, "help": "windows per model run (default: the backend's)"}, True
    ),
    _Flag("threads", {"type": int, "help": "CPU threads (default: one per physical core)"}, True),
    _Flag(
        "cache_dir", {"help": "exports, derived graphs, text embeddings (~/.cache/streamdet)"}, True
    ),
    _Flag("crop_on_device", _switch("cut windows where the model runs (default: on a GPU)"), True),
)
assert {f.setting for f in FLAGS} <= SETTINGS.keys()


def _add(group: argparse._ArgumentGroup, flag: _Flag) -> None:
    options = dict(flag.options)
    names = options.pop("flags", None) or ("--" + flag.setting.replace("_", "-"),)
    group.add_argument(*names, dest=flag.setting, **options)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """``--model`` and the runtime flags (device, backend, precision, ...)."""
    group = parser.add_argument_group("model and runtime")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="exported folder, Hugging Face folder or hub id (default: the built-in "
        f"{DEFAULT_MODEL})",
    )
    for flag in FLAGS:
        if flag.runtime:
            _add(group, flag)


def add_detector_flags(parser: argparse.ArgumentParser) -> None:
    """``--preset``/``--fast`` and every detector setting, then the model and runtime flags."""
    group = parser.add_argument_group("detector settings (default: the model's suggestions)")
    group.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values()),
    )
    group.add_argument(
        "--fast", action="store_true", help="the same as --preset fast (real-time setting)"
    )
    for flag in FLAGS:
        if not flag.runtime:
            _add(group, flag)
    add_model_flags(parser)


@dataclass(frozen=True)
class Settings:
    """What the flags asked for: a preset name (or None) and the caller's overrides."""

    preset: str | None
    overrides: dict[str, Any]


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The preset and the overrides the parsed flags give (flags not given are left out)."""
    overrides: dict[str, Any] = {}
    for flag in FLAGS:
        value = getattr(args, flag.setting, None)
        if value is not None:
            overrides[flag.setting] = _CONVERT.get(flag.setting, _same)(value)
    if "threshold" in overrides:
        overrides.update(overrides.pop("threshold"))
    preset = getattr(args, "preset", None)
    if getattr(args, "fast", False):
        if preset not in (None, "fast"):
            raise ConfigError(f"--fast is --preset fast; it contradicts --preset {preset}")
        preset = "fast"
    return Settings(preset, overrides)


def _same(value: Any) -> Any:
    return value


def _thresholds(pairs: list[tuple[str | None, float]]) -> dict[str, Any]:
    """Repeated --threshold values -> {"threshold": x} and/or {"prompt_thresholds": {...}}."""
    out: dict[str, Any] = {}
    per_prompt = {prompt: value for prompt, value in pairs if prompt is not None}
    overall = [value for prompt, value in pairs if prompt is None]
    if overall:
        out["threshold"] = overall[-1]
    if per_prompt:
        out["prompt_thresholds"] = per_prompt
    return out


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "threshold": _thresholds,
    "templates": tuple,
    "background_prompts": tuple,
}
