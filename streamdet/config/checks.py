"""One check per setting: the value a caller, a preset or a model's meta.json gives, normalised
(tuples for sequences, floats for fractions) or refused with a one-line ``ConfigError``.

Checks look at one value alone; what may not go together is ``streamdet.config.resolve``'s job.
"""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from streamdet.config.settings import (
    BACKENDS,
    DENSE_HEADS,
    DEVICES,
    METHODS,
    PRECISIONS,
    REUSE_TOLERANCE,
    SCORINGS,
    SETTINGS,
    VIEW_COMBINES,
)
from streamdet.errors import ConfigError, PromptError

Check = Callable[[str, Any], Any]


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ConfigError(f"{key} must be a positive whole number, but got {value!r}")
    return int(value)


def _optional_whole(key: str, value: Any) -> int | None:
    return None if value is None else _whole(key, value)


def _flag(key: str, value: Any) -> bool:
    if type(value).__name__ == "bool_":  # numpy's bool
        return bool(value)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be True or False, but got {value!r}")
    return value


def _optional_flag(key: str, value: Any) -> bool | None:
    return None if value is None else _flag(key, value)


def _positive(key: str, value: Any) -> float:
    """A number above 0 (scales)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1e3:
        raise ConfigError(f"{key} must be a number above 0 (e.g. 1.5), but got {value!r}")
    return float(value)


def _non_negative(key: str, value: Any) -> float:
    """A number of 0 or more (a scale where 0 means off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1e3:
        raise ConfigError(f"{key} must be a number of 0 or more (e.g. 0.75), but got {value!r}")
    return float(value)


def fraction(key: str, value: Any) -> float:
    """A number in [0, 1] (thresholds, ratios, IoU)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ConfigError(f"{key} must be a number between 0 and 1, but got {value!r}")
    return float(value)


def _reuse(key: str, value: Any) -> float | bool:
    """The reuse tolerance: a number in [0, 1] (0: exact), False (off) or True (the default)."""
    if type(value).__name__ == "bool_":  # numpy's bool
        value = bool(value)
    if value is True:
        return REUSE_TOLERANCE
    if value is False:
        return False
    if isinstance(value, numbers.Real) and 0 <= value <= 1:
        return float(value)
    raise ConfigError(
        f"{key} must be a change tolerance between 0 (exact) and 1, or False (off), "
        f"but got {value!r}"
    )


def _open_fraction(key: str, value: Any) -> float:
    """A number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ConfigError(f"{key} must be a number above 0 and at most 1, but got {value!r}")
    return float(value)


def _count(key: str, value: Any) -> int:
    """A whole number of 0 or more (frames)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ConfigError(f"{key} must be a whole number of 0 or more, but got {value!r}")
    return int(value)


def _below_one(key: str, value: Any) -> float:
    """A number in [0, 1) (a smoothing weight: 1 would never follow the object)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(
            f"{key} must be a number from 0 up to (not including) 1, but got {value!r}"
        )
    return float(value)


def _choice(options: tuple[str, ...], optional: bool = False) -> Check:
    def check(key: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if value not in options:
            raise ConfigError(f"{key} must be one of {', '.join(options)}, but got {value!r}")
        return value

    return check


def _sequence(key: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{key} must be a list, but got {value!r}")
    return list(value)


def _scales(key: str, value: Any) -> tuple[int, ...]:
    items = _sequence(key, value)
    return tuple(dict.fromkeys(_whole(f"every entry of {key}", v) for v in items))


def _margins(key: str, value: Any) -> tuple[float, ...]:
    items = _sequence(key, [value] if isinstance(value, numbers.Real) else value)
    out = tuple(dict.fromkeys(_positive(f"every entry of {key}", v) for v in items))
    if not out or any(v < 1.0 or v > 8.0 for v in out):
        raise ConfigError(
            f"{key} must be one or more crop sizes from 1 to 8 times a box's longer side "
            f"(e.g. [1.5, 2.0]), but got {value!r}"
        )
    return out


def _templates(key: str, value: Any) -> tuple[str, ...]:
    items = tuple(_sequence(key, [value] if isinstance(value, str) else value))
    if not items or any(not isinstance(t, str) or t.count("{}") != 1 for t in items):
        raise ConfigError(
            f"{key} must be strings with exactly one '{{}}' for the prompt, but got {items!r}"
        )
    return items


def _prompt_list(key: str, value: Any) -> tuple[str, ...]:
    from streamdet.detect.prompts import normalise_prompts

    try:
        return normalise_prompts(_sequence(key, [value] if isinstance(value, str) else value))
    except PromptError as error:
        raise ConfigError(f"{key}: {error}") from None


def _prompt_thresholds(key: str, value: Any) -> Mapping[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must map prompts to numbers, but got {value!r}")
    out = {}
    for prompt, number in value.items():
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigError(f"{key} must map prompts (text) to numbers, but got key {prompt!r}")
        out[" ".join(prompt.split())] = fraction(f"the threshold of '{prompt}'", number)
    return MappingProxyType(out)


def _path(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{key} must be a folder path, but got {value!r}")
    return os.fspath(value)


CHECKS: dict[str, Check] = {
    "patch": _whole,
    "window": _whole,
    "stride": _whole,
    "scales": _scales,
    "overhang": _flag,
    "token_scale": _positive,
    "zoom_scale": _non_negative,
    "zoom_level": fraction,
    "zoom_margin": _count,
    "max_side": _count,
    "method": _choice(METHODS),
    "scoring": _choice(SCORINGS),
    "dense": _flag,
    "dense_head": _choice(DENSE_HEADS),
    "templates": _templates,
    "background_prompts": _prompt_list,
    "frame_sizes": _flag,
    "threshold": fraction,
    "prompt_thresholds": _prompt_thresholds,
    "peak_ratio": fraction,
    "refine": _flag,
    "split": _count,
    "nms_iou": fraction,
    "verify": _flag,
    "verify_floor": fraction,
    "verify_margins": _margins,
    "verify_max": _whole,
    "verify_refine": fraction,
    "verify_refine_second": fraction,
    "verify_recheck": fraction,
    "verify_recheck_floor": fraction,
    "verify_combine": _choice(VIEW_COMBINES),
    "verify_budget": _optional_whole,
    "verify_trust": _non_negative,
    "reuse": _reuse,
    "reuse_refresh": _whole,
    "reuse_motion": _open_fraction,
    "device": _choice(DEVICES),
    "backend": _choice(BACKENDS),
    "precision": _choice(PRECISIONS, optional=True),
    "allow_fallback": _flag,
    "max_batch": _optional_whole,
    "threads": _optional_whole,
    "cache_dir": _path,
    "crop_on_device": _optional_flag,
    "track": _flag,
    "track_min_hits": _whole,
    "track_max_missed": _whole,
    "track_hold": _count,
    "track_iou": _open_fraction,
    "track_high": fraction,
    "track_smoothing": _below_one,
}
assert CHECKS.keys() == SETTINGS.keys(), "every setting has exactly one check"


def unknown_setting(key: str) -> ConfigError:
    """The error for a setting name streamdet does not have, with the nearest real names."""
    close = difflib.get_close_matches(key, list(SETTINGS), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return ConfigError(f"unknown setting {key!r}{hint} (settings: {', '.join(SETTINGS)})")


def check_settings(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check every value of one layer; ``where`` names the layer in errors ("your settings").

    ``threshold`` may be a mapping {prompt: number}: it becomes ``prompt_thresholds``. A value of
    None means "not given" and is left out.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "threshold" and isinstance(value, Mapping):
            key = "prompt_thresholds"
        if key not in CHECKS:
            raise unknown_setting(key)
        try:
            out[key] = CHECKS[key](key, value)
        except ConfigError as error:
            raise ConfigError(f"{error} ({where})") from None
    return out
