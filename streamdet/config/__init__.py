"""The detector's configuration: one set of frozen dataclasses, one source of defaults.

    from streamdet.config import resolve_config
    config = resolve_config({"stride": 2}, preset="fast")   # checked, no model needed
    config.grid.stride, config.runtime.precision, config.to_dict()

``settings`` holds the dataclasses (and the built-in defaults), ``checks`` one check per setting,
``presets`` the named presets, ``resolve`` the layering (built-in < model < preset < caller) and
the rules that say which settings cannot go together.
"""

from streamdet.config.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from streamdet.config.resolve import ModelFacts, resolve_config
from streamdet.config.settings import (
    BACKENDS,
    DEFAULT_MODEL,
    DENSE_HEADS,
    DEVICES,
    METHODS,
    PRECISIONS,
    REUSE_TOLERANCE,
    SCORINGS,
    SEARCH_SCORINGS,
    SETTINGS,
    VIEW_COMBINES,
    BoxConfig,
    DetectorConfig,
    GridConfig,
    IndexConfig,
    ReuseConfig,
    RuntimeConfig,
    ScoringConfig,
    TrackConfig,
    VerifyConfig,
    builtin_defaults,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "DEFAULT_PRESET",
    "DENSE_HEADS",
    "DEVICES",
    "METHODS",
    "PRECISIONS",
    "PRESETS",
    "REUSE_TOLERANCE",
    "SCORINGS",
    "SEARCH_SCORINGS",
    "SETTINGS",
    "VIEW_COMBINES",
    "BoxConfig",
    "DetectorConfig",
    "GridConfig",
    "IndexConfig",
    "ModelFacts",
    "Preset",
    "ReuseConfig",
    "RuntimeConfig",
    "ScoringConfig",
    "TrackConfig",
    "VerifyConfig",
    "builtin_defaults",
    "get_preset",
    "resolve_config",
]
