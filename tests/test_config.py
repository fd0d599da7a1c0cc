"""The configuration: layers (built-in < model < preset < caller), provenance, the rules that say
what cannot go together, and checks that happen before any model is loaded."""

from __future__ import annotations

import json

import pytest

from streamdet.cli import build_parser
from streamdet.cli.flags import settings_from_args
from streamdet.config import (
    PRESETS,
    REUSE_TOLERANCE,
    SETTINGS,
    DetectorConfig,
    GridConfig,
    ModelFacts,
    builtin_defaults,
    resolve_config,
)
from streamdet.errors import ConfigError

#: Suggestions shaped like the built-in model's meta.json.
SUGGESTS = ModelFacts(
    {
        "patch": 32,
        "window": 4,
        "stride": 1,
        "scales": [2],
        "threshold": 0.3,
        "dense": True,
        "verify": True,
        "overhang": True,
        "background_prompts": ("background", "nothing"),
    },
    has_tokens=True,
)


def test_builtin_defaults_come_from_the_dataclasses_alone():
    config = resolve_config()
    assert config == DetectorConfig()  # the dataclass defaults are the built-in layer
    assert config.flat() == builtin_defaults()
    assert set(config.sources.values()) == {"built-in"}
    assert set(config.flat()) == set(SETTINGS)


def test_layers_stack_built_in_model_preset_caller():
    config = resolve_config({"window": 5}, preset="fast", model=SUGGESTS)
    assert config.grid == GridConfig(
        patch=32, window=5, stride=1, scales=(2,), overhang=True, token_scale=1.5
    )
    assert config.scoring.method == "dense"
    src = config.sources
    assert (src["patch"], src["window"], src["token_scale"], src["nms_iou"]) == (
        "model",
        "you",
        "preset fast",
        "built-in",
    )
    assert config.preset == "fast"
    assert config.runtime.precision == "int8"  # fast on a CPU
    assert resolve_config({"device": "cuda"}, preset="fast").runtime.precision == "fp16"
    # the caller beats the preset
    assert resolve_config({"stride": 1, "precision": "fp32"}, preset="fast").grid.stride == 1


def test_a_suggestion_that_cannot_apply_gives_way_quietly():
    config = resolve_config({"scoring": "reference"}, model=SUGGESTS)
    assert not config.scoring.dense and not config.verify.enabled
    assert "not applicable" in config.sources["dense"]
    # the model's threshold is for calibrated scores: reference scoring takes the built-in one
    assert config.boxes.threshold == builtin_defaults()["threshold"] != 0.3
    no_tokens = ModelFacts(SUGGESTS.suggestions, has_tokens=False)
    assert not resolve_config(model=no_tokens).scoring.dense


@pytest.mark.parametrize(
    ("overrides", "preset", "message"),
    [
        (
            {"verify": True, "scoring": "reference"},
            None,
            "verify=True (set by you) needs scoring='calibrated', "
            "but scoring='reference' (set by you)",
        ),
        ({"verify": True}, "writeup", "but scoring='reference' (from preset writeup)"),
        (
            {"dense": True},
            "fast",
            "dense=True (set by you) needs method='windows', but method='dense' (from preset fast)",
        ),
        ({"backend": "torch"}, "fast", "precision='int8' (from preset fast) needs backend="),
        ({"precision": "int8", "device": "cuda"}, None, "needs device='cpu', but device='cuda'"),
        ({"dense": True, "method": "occlusion"}, None, "needs method='windows'"),
        ({"crop_on_device": True, "method": "occlusion"}, None, "needs method='windows'"),
        ({"backend": "torch", "device": "tensorrt"}, None, "needs device='cpu' or 'cuda'"),
        ({"stride": 0}, None, "stride must be a positive whole number, but got 0 (set by you)"),
        ({"threshold": 1.5}, None, "threshold must be a number between 0 and 1"),
        ({"threshold": {"a car": -1}}, None, "the threshold of 'a car' must be a number"),
        ({"templates": ["no braces"]}, None, "exactly one '{}'"),
        ({"scales": [2, 0]}, None, "every entry of scales must be a positive whole number"),
        ({"device": "quantum"}, None, "device must be one of cpu, cuda, tensorrt"),
        ({"strid": 2}, None, "unknown setting 'strid'; did you mean stride?"),
        ({}, "turbo", "unknown preset 'turbo'; choose one of model, fast, fine, writeup"),
    ],
)
def test_conflicts_and_bad_values_are_one_line_naming_their_sources(overrides, preset, message):
    with pytest.raises(ConfigError) as info:
        resolve_config(overrides, preset=preset, model=SUGGESTS)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_an_explicit_dense_on_a_model_without_tokens_is_refused():
    with pytest.raises(ConfigError, match="needs an export with per-patch tokens"):
        resolve_config({"dense": True}, model=ModelFacts({}, has_tokens=False))


def test_settings_are_checked_before_the_model_is_looked_up(tmp_path):
    from streamdet import Detector

    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="needs scoring='calibrated'"):
        Detector(missing, ["a car"], verify=True, scoring="reference")
    with pytest.raises(ConfigError, match="unknown setting 'windw'"):
        Detector(missing, ["a car"], windw=3)


def test_per_prompt_thresholds_and_json_records():
    config = resolve_config({"threshold": {"a  red car": 0.7}, "templates": "a photo of {}."})
    assert config.boxes.for_prompt("a red car") == 0.7  # prompts normalised like the detector's
    assert config.boxes.for_prompt("a person") == config.boxes.threshold
    assert config.scoring.templates == ("a photo of {}.",)
    record = json.loads(json.dumps(config.to_dict()))
    assert record["boxes"]["prompt_thresholds"] == {"a red car": 0.7}
    assert record["sources"]["prompt_thresholds"] == "you"
    assert record["preset"] == "model"


def test_a_config_rebuilds_itself_and_serves_as_a_base():
    config = resolve_config({"stride": 2, "refine": True}, preset="writeup", model=SUGGESTS)
    again = resolve_config(config.flat())
    assert again.flat() == config.flat()
    based = resolve_config({"threshold": 0.2}, base=config)
    assert based.grid == config.grid and based.boxes.threshold == 0.2
    assert based.sources["refine"] == "you" and based.sources["patch"] == "preset writeup"


def test_writeup_preset_is_the_original_method():
    config = resolve_config(preset="writeup", model=SUGGESTS)
    assert config.grid == GridConfig(patch=64, window=4, stride=1, scales=(), overhang=False)
    assert config.scoring.scoring == "reference" and not config.verify.enabled
    assert config.boxes.threshold == 0.5
    assert set(PRESETS) >= {"model", "fast", "writeup"}


def _flags(*argv: str):
    args = build_parser().parse_args(["detect", "x.png", *argv])
    return settings_from_args(args)


def test_cli_flags_map_onto_settings_in_one_place():
    s = _flags()
    assert s.preset is None and s.overrides == {}
    s = _flags(
        "--fast",
        "--stride", "2",
        "--scales", "2,6",
        "--no-verify",
        "--threshold", "0.4",
        "--threshold", "a red car=0.6",
        "--template", "a photo of {}.",
        "--device", "cuda",
        "--allow-fallback",
    )  # fmt: skip
    assert s.preset == "fast"
    assert s.overrides == {
        "stride": 2,
        "scales": (2, 6),
        "verify": False,
        "threshold": 0.4,
        "prompt_thresholds": {"a red car": 0.6},
        "templates": ("a photo of {}.",),
        "device": "cuda",
        "allow_fallback": True,
    }
    config = resolve_config(s.overrides, preset=s.preset)
    assert config.runtime.precision == "fp16" and config.grid.scales == (2, 6)
    assert _flags("--scales", "none").overrides == {"scales": ()}
    with pytest.raises(ConfigError, match="--fast is --preset fast"):
        _flags("--fast", "--preset", "writeup")


def test_reuse_flags_and_values():
    assert _flags("--reuse", "0.05").overrides == {"reuse": 0.05}
    assert _flags("--no-reuse").overrides == {"reuse": False}
    assert _flags("--reuse", "off").overrides == {"reuse": False}
    assert _flags("--reuse", "0", "--reuse-refresh", "10").overrides == {
        "reuse": 0.0,
        "reuse_refresh": 10,
    }
    with pytest.raises(SystemExit):
        _flags("--reuse", "lots")
    default = resolve_config({})
    assert default.reuse.enabled and default.reuse.threshold == REUSE_TOLERANCE
    assert resolve_config({"reuse": True}).reuse.threshold == REUSE_TOLERANCE
    assert resolve_config({"reuse": 0}).reuse.threshold == 0.0  # exact, not off
    off = resolve_config({"reuse": False})
    assert off.reuse.threshold is False and not off.reuse.enabled
    # off survives a round trip through the flat names (False, not None: None means "not given")
    assert resolve_config(off.flat()).reuse.enabled is False
    assert resolve_config({}, preset="writeup").reuse.enabled is False
    for bad in ({"reuse": 1.5}, {"reuse": "yes"}, {"reuse_refresh": 0}, {"reuse_motion": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            resolve_config(bad)
    # reuse needs the windows method: a default gives way, a chosen value is refused
    assert resolve_config({"method": "occlusion"}).reuse.enabled is False
    with pytest.raises(ConfigError, match=r"reuse=0\.1 \(set by you\) needs method='windows'"):
        resolve_config({"method": "occlusion", "reuse": 0.1})


def test_every_setting_but_the_config_only_ones_has_a_flag():
    from streamdet.cli.flags import FLAGS

    assert {f.setting for f in FLAGS} == set(SETTINGS) - {"prompt_thresholds"}  # via --threshold


def test_the_configuration_page_lists_every_setting_and_preset():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    missing = [key for key in [*SETTINGS, *PRESETS] if f"`{key}`" not in page]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_an_fp32_export_runs_int8_on_a_cpu_unless_someone_chose():
    fp32 = ModelFacts(precision="fp32")
    config = resolve_config({}, model=fp32)
    assert (config.runtime.precision, config.sources["precision"]) == ("int8", "built-in")
    assert resolve_config({"precision": "fp32"}, model=fp32).runtime.precision == "fp32"
    assert resolve_config({"device": "cuda"}, model=fp32).runtime.precision is None
    assert resolve_config({"backend": "torch"}, model=fp32).runtime.precision is None
    assert resolve_config({}, model=ModelFacts(precision="fp16")).runtime.precision is None
    assert resolve_config({}).runtime.precision is None  # no model known yet: nothing assumed


def test_the_writeup_preset_is_the_windows_method_whatever_the_model_suggests():
    facts = ModelFacts({"method": "dense"}, precision="fp32")
    config = resolve_config({}, preset="writeup", model=facts)
    assert config.scoring.method == "windows" and config.sources["method"] == "preset writeup"
