"""Named presets: settings that go together, applied above the model's suggestions and below the
caller's own settings.

* ``model`` (the default): nothing more than the model's own suggestions (its meta.json).
* ``fast``: the real-time setting: one pass of the whole frame through the model (the ``dense``
  method) with tokens ``FAST_TOKEN_SCALE`` times as wide as a window's (about 2.3x fewer tokens),
  and the image tower in int8 on a CPU (fp16 on a GPU, where int8 does not run).
  docs/benchmarks.md has the measurements behind it.
* ``fine``: small and cut objects: the ``dense`` method's two passes (``streamdet.detect.zoom``),
  a first with ``FAST_TOKEN_SCALE`` tokens, then ``FINE_ZOOM`` tokens (8 pixels for the
  built-in model) over its candidates: the best held-out quality measured, at about the time of
  one whole pass of such tokens (docs/benchmarks.md, "A second, finer pass").
* ``writeup``: the original write-up's method as it describes it (sliding windows of 64-pixel
  cells, 4 cells a window, stride 1, its min-max "reference" scoring, one box region per prompt
  level, no dense heatmaps, no verification, prompts scored as written, every frame computed
  whole, every frame's boxes as found: no tracking), for comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streamdet.errors import ConfigError

DEFAULT_PRESET = "model"
#: The ``fast`` preset's token scale (``GridConfig.token_scale``).
FAST_TOKEN_SCALE = 1.5
#: The ``fine`` preset's second-pass token scale (``GridConfig.zoom_scale``).
FINE_ZOOM = 0.75


@dataclass(frozen=True)
class Preset:
    """A named set of settings; ``on_cpu`` / ``on_gpu`` add settings that depend on the device."""

    name: str
    summary: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    on_cpu: Mapping[str, Any] = field(default_factory=dict)
    on_gpu: Mapping[str, Any] = field(default_factory=dict)

    def for_device(self, device: str) -> dict[str, Any]:
        """The preset's settings for a run on ``device``."""
        extra = self.on_cpu if device == "cpu" else self.on_gpu
        return {**self.settings, **extra}


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "model": Preset("model", "the model's own suggested settings"),
        "fast": Preset(
            "fast",
            "real time: the whole frame through the model once (dense method, no second pass) "
            "with tokens 1.5x coarser than a window's, int8 on a CPU (fp16 on a GPU)",
            settings={"method": "dense", "token_scale": FAST_TOKEN_SCALE, "zoom_scale": 0.0},
            on_cpu={"precision": "int8"},
            on_gpu={"precision": "fp16"},
        ),
        "fine": Preset(
            "fine",
            "small and cut objects: the dense method's first pass with tokens 1.5x coarser, "
            "then a second pass with tokens 0.75x a window's (8 px for the built-in model) "
            "over its candidates; about twice the time of the model's own setting",
            settings={"method": "dense", "token_scale": FAST_TOKEN_SCALE, "zoom_scale": FINE_ZOOM},
        ),
        "writeup": Preset(
            "writeup",
            "the original write-up's method: patch 64, window 4, stride 1, reference scoring",
            settings={
                "method": "windows",
                "patch": 64,
                "window": 4,
                "stride": 1,
                "scales": (),
                "overhang": False,
                "scoring": "reference",
                "dense": False,
                "refine": False,
                "split": 0,
                "peak_ratio": 0.0,
                "verify": False,
                "frame_sizes": False,
                "reuse": False,
                "track": False,
            },
        ),
    }
)


def get_preset(name: str | None) -> Preset:
    """The preset called ``name`` (None: the default), or a one-line error listing them."""
    key = DEFAULT_PRESET if name is None else name
    if key not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[key]
