"""From layers of settings to one checked ``DetectorConfig``.

The layers, lowest first (a higher layer's value wins):

1. the built-in defaults (``streamdet.config.settings``, the dataclass defaults);
2. the model's suggestions (its ``meta.json`` "defaults" and background prompts), the way
   transformers keeps a model's suggested generation settings apart from a call's arguments;
3. a named preset (``streamdet.config.presets``: ``model``, ``fast``, ``writeup``);
4. the caller's own settings (``Detector(..., stride=2)``, ``--stride 2``).

Then the combination is checked by a short list of rules ("dense heatmaps need calibrated
scoring", ...). A rule broken by a *suggested* value (built-in or model) is settled quietly: the
suggestion does not apply (the model suggests dense heatmaps, you ask for reference scoring: no
dense heatmaps). A rule broken by values someone *chose* (a preset or you) is an error that names
both values and where each came from. ``resolve_config`` without a model checks everything that can
be checked before a model is loaded; ``Detector`` calls it again with the model's meta.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streamdet.clip.meta import TOKENS_OUTPUT, ModelMeta
from streamdet.config.checks import check_settings
from streamdet.config.presets import get_preset
from streamdet.config.settings import GROUPS, SETTINGS, DetectorConfig, builtin_defaults
from streamdet.errors import ConfigError

BUILTIN = "built-in"
MODEL = "model"
CALLER = "you"
#: Layers whose values give way quietly when a rule says they cannot apply.
SUGGESTED = (BUILTIN, MODEL)


def preset_source(name: str) -> str:
    return f"preset {name}"


#: The image tower's precision on a CPU when nobody chose one (for fp32 exports run by ONNX
#: Runtime): int8 matched fp32 on the quality benchmark and ran faster (docs/benchmarks.md).
CPU_PRECISION = "int8"

#: The key of meta.json's ``defaults`` holding per-method suggestions ({method: {setting: value}}).
BY_METHOD = "by_method"


@dataclass(frozen=True)
class ModelFacts:
    """What the resolver needs to know of a model, read from its meta.json before it loads.

    suggestions: the model's suggested settings by flat name (unknown keys left out).
    by_method: suggestions that hold for one method only (meta.json ``defaults.by_method``, e.g.
    the box threshold of one-pass ``dense`` heatmaps), applied above ``suggestions`` when the
    resolved method is theirs, below presets and the caller.
    precision: the precision the model was exported in (None: not known); an fp32 export runs
    its image tower in ``CPU_PRECISION`` on a CPU unless someone chose otherwise.
    has_tokens: whether its image graph gives per-patch tokens (None: an older export that does
    not say; assumed possible until the graph is opened).
    """

    suggestions: Mapping[str, Any] = field(default_factory=dict)
    has_tokens: bool | None = None
    by_method: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    precision: str | None = None

    @classmethod
    def from_meta(cls, meta: ModelMeta) -> ModelFacts:
        suggested = {k: v for k, v in meta.defaults.items() if k in SETTINGS}
        suggested["background_prompts"] = meta.background_prompts
        outputs = meta.image_outputs
        by_method = meta.defaults.get(BY_METHOD, {})
        if not isinstance(by_method, Mapping):
            by_method = {}
        tokens = None if outputs is None else TOKENS_OUTPUT in outputs
        by = {str(k): dict(v) for k, v in by_method.items()}
        return cls(suggested, tokens, by, meta.precision)


Values = dict[str, Any]


@dataclass(frozen=True)
class _Rule:
    """``feature`` (when ``active``) needs ``ok``; ``blame`` are the settings that can break it;
    ``off`` gives the feature's value when a suggestion of it cannot apply."""

    feature: str
    active: Callable[[Values], bool]
    ok: Callable[[Values, ModelFacts], bool]
    needs: str
    blame: tuple[str, ...]
    off: Callable[[Values], Any]
    fix: str


def _smallest_window(v: Values) -> int:
    return min((v["window"], *v["scales"]))


RULES: tuple[_Rule, ...] = (
    _Rule(
        "stride",
        lambda v: True,
        lambda v, m: v["stride"] <= _smallest_window(v),
        "a stride no larger than the smallest window",
        ("window", "scales"),
        _smallest_window,
        "use a smaller stride or a larger window (else some cells are seen by no window)",
    ),
    _Rule(
        "dense",
        lambda v: v["dense"],
        lambda v, m: v["scoring"] == "calibrated",
        "scoring='calibrated'",
        ("scoring",),
        lambda v: False,
        "drop dense or use calibrated scoring",
    ),
    _Rule(
        "dense",
        lambda v: v["dense"],
        lambda v, m: v["method"] == "windows",
        "method='windows'",
        ("method",),
        lambda v: False,
        "drop dense or use the windows method",
    ),
    _Rule(
        "dense",
        lambda v: v["dense"],
        lambda v, m: m.has_tokens is not False,
        "an export with per-patch tokens (this model's image graph has none)",
        (),
        lambda v: False,
        "export the model again with `streamdet export`, or drop dense",
    ),
    _Rule(
        "verify",
        lambda v: v["verify"],
        lambda v, m: v["scoring"] == "calibrated",
        "scoring='calibrated'",
        ("scoring",),
        lambda v: False,
        "drop verify or use calibrated scoring (reference scores are not probabilities)",
    ),
    _Rule(
        "reuse",
        lambda v: v["reuse"] is not False,
        lambda v, m: v["method"] in ("windows", "dense"),
        "method='windows' or 'dense'",
        ("method",),
        lambda v: False,
        "drop reuse (--no-reuse) or use the windows or dense method (every occluded copy shows "
        "the whole frame, so no window's input stays the same)",
    ),
    _Rule(
        "crop_on_device",
        lambda v: v["crop_on_device"] is True,
        lambda v, m: v["method"] == "windows",
        "method='windows'",
        ("method",),
        lambda v: None,
        "drop crop_on_device or use the windows method (occlusion cuts on the host)",
    ),
    _Rule(
        "precision",
        lambda v: v["precision"] == "int8",
        lambda v, m: v["device"] == "cpu",
        "device='cpu'",
        ("device",),
        lambda v: None,
        "use precision fp16 on a GPU, or device cpu (int8 is ONNX Runtime's CPU quantisation)",
    ),
    _Rule(
        "precision",
        lambda v: v["precision"] == "int8",
        lambda v, m: v["backend"] != "torch",
        "backend='onnxruntime'",
        ("backend",),
        lambda v: None,
        "use backend onnxruntime (or auto) for int8",
    ),
    _Rule(
        "backend",
        lambda v: v["backend"] == "torch",
        lambda v, m: v["device"] in ("cpu", "cuda"),
        "device='cpu' or 'cuda'",
        ("device",),
        lambda v: "auto",
        "use backend onnxruntime for TensorRT (it runs through ONNX Runtime)",
    ),
    _Rule(
        "precision",
        lambda v: v["precision"] == "fp16" and v["backend"] == "torch",
        lambda v, m: v["device"] == "cuda",
        "device='cuda' with the PyTorch backend",
        ("device",),
        lambda v: None,
        "use fp32 on the CPU, or device cuda",
    ),
)


def _describe(source: str) -> str:
    if source == CALLER:
        return "set by you"
    if source == MODEL:
        return "suggested by the model"
    if source == BUILTIN:
        return "the built-in default"
    return f"from {source}"


def _apply_rules(values: Values, sources: dict[str, str], facts: ModelFacts) -> None:
    """Settle or refuse every broken rule, in order (earlier settlements feed later rules)."""
    for rule in RULES:
        if not rule.active(values) or rule.ok(values, facts):
            continue
        feature = rule.feature
        if sources[feature] in SUGGESTED:
            values[feature] = rule.off(values)
            sources[feature] = f"{sources[feature]} (not applicable: needs {rule.needs})"
            continue
        said = f"{feature}={values[feature]!r} ({_describe(sources[feature])}) needs {rule.needs}"
        broken = [k for k in rule.blame if _resetting_fixes(rule, k, values, facts)]
        broken = broken or list(rule.blame)
        if broken:
            why = ", ".join(f"{k}={values[k]!r} ({_describe(sources[k])})" for k in broken)
            said += f", but {why}"
        raise ConfigError(f"{said}; {rule.fix}")


def _resetting_fixes(rule: _Rule, key: str, values: Values, facts: ModelFacts) -> bool:
    """Whether ``rule`` would hold with ``key`` at its built-in default (names the culprit)."""
    trial = {**values, key: builtin_defaults()[key]}
    return rule.ok(trial, facts)


def resolve_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    model: ModelFacts | None = None,
    base: DetectorConfig | None = None,
) -> DetectorConfig:
    """Layer the settings (see the module docstring) and check the combination.

    overrides: the caller's settings by flat name (None values mean "not given"; ``threshold``
        may be a {prompt: number} mapping).
    preset: a preset name (None: ``model``, the model's own suggestions).
    model: the model's suggestions and capabilities; None checks without a model.
    base: a resolved config to start from instead of the built-in defaults and the model's
        suggestions (its values keep the sources it records).
    Raises ``ConfigError`` (one line) for a bad value, an unknown setting or a preset, or a
    combination that cannot work.
    """
    facts = model or ModelFacts()
    chosen = get_preset(preset)
    caller = check_settings(overrides or {}, _describe(CALLER))
    values: Values
    sources: dict[str, str]
    if base is not None:
        values = base.flat()
        sources = {k: base.sources.get(k, BUILTIN) for k in values}
    else:
        values = builtin_defaults()
        sources = dict.fromkeys(values, BUILTIN)
        suggested = check_settings(facts.suggestions, _describe(MODEL))
        values.update(suggested)
        sources.update(dict.fromkeys(suggested, MODEL))
    device = caller.get("device", values["device"])
    from_preset = check_settings(chosen.for_device(device), _describe(preset_source(chosen.name)))
    for layer, source in ((from_preset, preset_source(chosen.name)), (caller, CALLER)):
        values.update(layer)
        sources.update(dict.fromkeys(layer, source))
    per_method = check_settings(facts.by_method.get(values["method"], {}), _describe(MODEL))
    for key, value in per_method.items():
        if sources[key] in (BUILTIN, MODEL):
            values[key] = value
            sources[key] = MODEL
    if (
        values["precision"] is None
        and sources["precision"] in SUGGESTED
        and facts.precision == "fp32"
        and values["device"] == "cpu"
        and values["backend"] != "torch"
    ):
        # the built-in default on a CPU: int8 was as accurate as fp32 on the quality benchmark
        # and faster (docs/benchmarks.md); an explicit precision="fp32" keeps fp32
        values["precision"] = CPU_PRECISION
        sources["precision"] = BUILTIN
    if values["scoring"] == "reference" and sources["threshold"] == MODEL:
        # the model's threshold is for its calibrated probabilities, not min-max heatmaps
        values["threshold"] = builtin_defaults()["threshold"]
        sources["threshold"] = BUILTIN
    _apply_rules(values, sources, facts)
    groups: dict[str, dict[str, Any]] = {name: {} for name in GROUPS}
    for key, (group, attr) in SETTINGS.items():
        groups[group][attr] = values[key]
    built = {name: GROUPS[name](**kwargs) for name, kwargs in groups.items()}
    return DetectorConfig(**built, preset=chosen.name, sources=MappingProxyType(sources))
