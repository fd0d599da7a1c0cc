"""Named presets: settings that go together, applied above the model's suggestions and below the
caller's own settings.

* ``model`` (the default): nothing more than the model's own suggestions (its meta.json).
* ``fast``: the real-time setting: windows step two cells, one window size, none hanging over the
  edges, and the image tower in int8 on a CPU (fp16 on a GPU, where int8 does not run).
* ``writeup``: the original write-up's method as it describes it (64-pixel cells, windows of 4
  cells, stride 1, its min-max "reference" scoring, one box region per prompt level, no dense
  heatmaps, no verification, prompts scored as written, every frame computed whole), for
  comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streamdet.errors import ConfigError

DEFAULT_PRESET = "model"


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
            "real time: stride 2, one window size, no windows over the edges, int8 on a CPU "
            "(fp16 on a GPU)",
            settings={"stride": 2, "scales": (), "overhang": False},
            on_cpu={"precision": "int8"},
            on_gpu={"precision": "fp16"},
        ),
        "writeup": Preset(
            "writeup",
            "the original write-up's method: patch 64, window 4, stride 1, reference scoring",
            settings={
                "patch": 64,
                "window": 4,
                "stride": 1,
                "scales": (),
                "overhang": False,
                "scoring": "reference",
                "dense": False,
                "refine": False,
                "peak_ratio": 0.0,
                "verify": False,
                "frame_sizes": False,
                "reuse": False,
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
