"""Tracking settings: one source of defaults, checks, flags and presets like every setting."""

from __future__ import annotations

import argparse

import pytest

from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.config import TrackConfig, builtin_defaults, resolve_config
from streamdet.errors import ConfigError
from streamdet.track import TRACK_SETTINGS, Tracker


def _flags(*argv: str):
    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    return settings_from_args(parser.parse_args(list(argv)))


def test_the_defaults_come_from_track_config():
    defaults = builtin_defaults()
    config = TrackConfig()
    assert defaults["track"] is config.enabled is True
    for name in TRACK_SETTINGS[1:]:
        assert defaults[name] == getattr(config, name.removeprefix("track_"))
    assert Tracker().config == config
    assert resolve_config({}).track == config


def test_flags_and_checks():
    settings = _flags("--no-track", "--track-min-hits", "4", "--track-smoothing", "0.2")
    assert settings.overrides == {"track": False, "track_min_hits": 4, "track_smoothing": 0.2}
    config = resolve_config(settings.overrides)
    assert (config.track.enabled, config.track.min_hits, config.track.smoothing) == (False, 4, 0.2)
    assert config.sources["track_min_hits"] == "you"
    for bad in (
        {"track_hold": -1},
        {"track_iou": 0},
        {"track_high": 1.5},
        {"track_max_missed": 0},
        {"track": "yes"},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve_config(bad)
    assert resolve_config({"track_hold": 0}).track.hold == 0  # holding nothing is allowed


def test_the_writeup_preset_does_not_track():
    assert resolve_config({}, preset="writeup").track.enabled is False
    assert resolve_config({}, preset="fast").track.enabled is True
