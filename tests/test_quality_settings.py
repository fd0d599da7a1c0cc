"""The quality benchmark's named settings are presets and overrides of the one configuration,
checked before any model loads (no model and no pycocotools needed here)."""

from __future__ import annotations

import sys

import pytest

from streamdet.config import PRESETS, resolve_config
from streamdet.errors import ConfigError, MissingDependencyError
from streamdet.quality import cli
from streamdet.quality.evaluate import RunSettings, detector_overrides
from streamdet.quality.metrics import require_pycocotools
from streamdet.quality.settings import QUICK_SETTINGS, make_settings

RUN = RunSettings(model="unused", patch=32, export_precision="fp32")


def resolved(name: str, run: RunSettings = RUN, **geometry: int):
    setting = make_settings(**(geometry or {"window": 4, "stride": 1, "patch": 32}))[name]
    return resolve_config(detector_overrides(setting, run), preset=setting.preset)


def test_the_full_run_compares_these_settings():
    assert list(make_settings(4, 1, 32)) == [
        "calibrated",
        "windows",
        "dense-unsplit",
        "dense-split3",
        "dense-split4",
        "windows-unsplit",
        "reference",
        "calibrated-w3",
        "calibrated-w5",
        "calibrated-s2",
        "calibrated-scales3+6",
        "calibrated-occlusion",
        "calibrated-peak0",
        "calibrated-peak0.15",
        "calibrated-peak0.5",
        "calibrated-refine",
        "calibrated-fast",
        "calibrated-t0.98",
        "calibrated-t0.99",
        "calibrated-t0.999",
        "calibrated-no-refine",
        "calibrated-no-dense",
        "calibrated-one-scale",
        "calibrated-no-verify",
        "calibrated-literal-sizes",
        "calibrated-overhang",
        "calibrated-no-overhang-peak0",
        "calibrated-overhang-peak0.8",
        "calibrated-p16-w8-s2",
        "calibrated-p16-w8-s1",
        "dense-naclip",
        "dense-clearclip",
        "dense-sclip",
        "dense-maskclip",
        "dense-peak0.95-floor0.1",
        "dense-no-verify",
        "dense-coarse",
        "dense-ts1.25",
        "dense-ts0.875",
        "dense-ts0.75",
        "dense-ts0.5",
        "dense-ts0.67",
        "calibrated-fine",
        "dense-zoom-ts1",
        "dense-ts1.5-zoom1",
        "dense-zoom-level0.5",
        "dense-zoom-margin4",
        "dense-views1.5",
        "dense-views1.75",
        "dense-views2.0",
        "dense-views1.5+2",
        "dense-views-mean",
        "dense-views-mean16",
        "dense-recheck",
        "dense-unrefined",
        "dense-view-boxes",
        "dense-first-view",
        "dense-t0.15",
        "dense-floor0.6",
        "dense-floor0.75",
        "dense-floor0.8",
        "dense-trust0.4",
        "dense-untrusted",
        "dense-trust0.3",
        "dense-trust-mean",
        "dense-full-res",
        "dense-t0.3",
        "dense-t0.5",
        "dense-t0.6",
        "dense-t0.7",
        "dense-bg1",
    ]
    assert set(QUICK_SETTINGS) <= set(make_settings(4, 1, 32))


def test_the_unsplit_settings_differ_from_their_method_only_in_split():
    settings = make_settings(4, 1, 32)
    for name, base_name, method in (
        ("dense-unsplit", "calibrated", "dense"),  # calibrated: the model's method (dense)
        ("windows-unsplit", "windows", "windows"),
    ):
        base = resolve_config(detector_overrides(settings[base_name], RUN))
        unsplit = resolve_config(detector_overrides(settings[name], RUN))
        assert (unsplit.scoring.method, unsplit.boxes.split, base.boxes.split) == (method, 0, 2)
        assert unsplit.flat() | {"split": 2} == base.flat() | {"method": method}


def test_every_setting_resolves_without_a_model():
    for setting in make_settings(4, 1, 32).values():
        config = resolve_config(detector_overrides(setting, RUN), preset=setting.preset)
        assert config.preset == (setting.preset or "model")


def test_fine_is_the_fine_preset_with_two_passes():
    config = resolved("calibrated-fine")
    assert make_settings(4, 1, 32)["calibrated-fine"].preset == "fine"
    assert config.scoring.method == "dense" and config.grid.zooms
    assert (config.grid.token_scale, config.grid.zoom_scale) == (1.5, 0.75)
    assert resolved("dense-zoom-margin4").grid.zoom_margin == 4


def test_fast_is_the_fast_preset_at_the_runs_precision():
    setting = make_settings(4, 1, 32)["calibrated-fast"]
    assert setting.preset == "fast"
    # the preset alone says what fast is: the setting repeats none of it
    assert not set(setting.overrides) & set(PRESETS["fast"].for_device("cpu"))
    config = resolved("calibrated-fast")
    fast = PRESETS["fast"].settings
    assert (config.scoring.method, config.grid.token_scale) == (fast["method"], fast["token_scale"])
    assert config.sources["method"] == "preset fast"
    # int8 on a CPU is the preset's; the run compares every setting as exported (fp32) ...
    assert config.runtime.precision == "fp32"
    # ... or at the precision the run asks for
    int8 = RunSettings(model="unused", patch=32, precision="int8", export_precision="fp32")
    assert resolved("calibrated-fast", int8).runtime.precision == "int8"
    # settings without a preset leave the precision to the export
    assert "precision" not in detector_overrides(make_settings(4, 1, 32)["calibrated"], RUN)


def test_settings_take_the_runs_cell_size_unless_they_name_their_own():
    assert resolved("calibrated").grid.patch == 32
    half = resolved("calibrated-p16-w8-s2")
    assert (half.grid.patch, half.grid.window, half.grid.stride) == (16, 8, 2)
    assert half.grid.scales == (4,)
    reference = resolved("reference")
    assert reference.scoring.scoring == "reference" and reference.grid.overhang is False


def test_settings_whose_windows_cannot_exist_are_left_out():
    names = make_settings(1, 1, 32)
    assert "calibrated-w0" not in names and "calibrated-scales0+3" not in names
    assert "calibrated-w2" in names
    # a stride the windows cannot take is said when the setting is chosen
    args = cli.parse_args(["--window", "1", "--configs", "calibrated,calibrated-p16-w2-s2"])
    with pytest.raises(ConfigError, match=r"^setting calibrated-p16-w2-s2: stride=2"):
        cli.chosen_settings(args, RUN)


def test_a_setting_that_cannot_work_is_named_before_any_model_loads():
    args = cli.parse_args(["--window", "2", "--stride", "3", "--configs", "calibrated"])
    with pytest.raises(ConfigError, match=r"^setting calibrated: stride=3 \(set by you\)"):
        cli.chosen_settings(args, RUN)


def test_missing_pycocotools_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools", None)
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(MissingDependencyError) as caught:
        require_pycocotools()
    message = str(caught.value)
    assert "pip install 'streamdet[bench]'" in message and "\n" not in message


def test_transfer_settings_change_one_choice_of_the_model_each():
    def values(name: str) -> dict:
        d = resolved(name).to_dict()
        return {(k, kk): v[kk] for k, v in d.items() if isinstance(v, dict) and k != "sources"
                for kk in v}  # fmt: skip

    base = values("dense-naclip")  # the one pass with the model's own head: nothing else set
    for name, key, value in (
        ("dense-t0.15", ("boxes", "threshold"), 0.15),
        ("dense-floor0.6", ("verify", "floor"), 0.6),
        ("dense-t0.3", ("boxes", "threshold"), 0.3),
        ("dense-bg1", ("scoring", "background_prompts"), ("background",)),
    ):
        changed = values(name)
        # the one choice is set (to a value the model's own settings do not use) ...
        assert changed[key] == (list(value) if isinstance(value, tuple) else value), name
        # ... and nothing else moves
        assert {k for k in base if base[k] != changed[k]} <= {key}, name
