"""The quality benchmark's report: targets, markdown tables, the model's identity, the JSON file.

The targets are checked on the ``calibrated`` setting, and its AP50 against ``reference`` (the
original write-up's scoring); a target whose settings were not run counts as not passed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TARGET_AP50 = 0.7
TARGET_AP50_RATIO = 2.0
TARGET_FALSE_BOXES = 0.05


def check_targets(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The targets on the ``calibrated`` result (and against ``reference``): value, bound, passed.

    A target whose settings were not run, or whose value is undefined, is reported as not passed.
    """
    cal = configs.get("calibrated", {})
    ref = configs.get("reference", {})
    ap, ref_ap, fb = cal.get("ap50"), ref.get("ap50"), cal.get("false_boxes_per_frame")
    if ap is None or ref_ap is None:
        ratio = None
    else:
        ratio = math.inf if ref_ap == 0 and ap > 0 else (ap / ref_ap if ref_ap else 0.0)
    targets = {
        "calibrated_ap50": {"value": ap, "min": TARGET_AP50},
        "calibrated_over_reference_ap50": {
            "value": None
            if ratio is None
            else (round(ratio, 3) if math.isfinite(ratio) else "inf"),
            "min": TARGET_AP50_RATIO,
        },
        "calibrated_false_boxes_per_frame": {"value": fb, "max": TARGET_FALSE_BOXES},
    }
    targets["calibrated_ap50"]["passed"] = ap is not None and ap >= TARGET_AP50
    targets["calibrated_over_reference_ap50"]["passed"] = (
        ratio is not None and ratio >= TARGET_AP50_RATIO
    )
    targets["calibrated_false_boxes_per_frame"]["passed"] = (
        fb is not None and fb <= TARGET_FALSE_BOXES
    )
    return targets


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` places, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(configs: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per setting: AP, false boxes, stability, speed."""
    lines = [
        "| config | AP50 | AP50:95 | false boxes/frame | jitter | blink | ms/frame |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in configs.items():
        cells = [
            name,
            fmt(r["ap50"]),
            fmt(r["ap50_95"]),
            fmt(r["false_boxes_per_frame"]),
            fmt(r["jitter"]),
            fmt(r["blink"]),
            fmt(r["ms_per_frame"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prompt_table(configs: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> str:
    """AP50 per prompt for some settings, prompts as rows ("" when none of them was run)."""
    names = [n for n in names if n in configs]
    if not names:
        return ""
    prompts = list(next(iter(configs[n] for n in names))["per_prompt"])
    lines = [
        "| prompt | " + " | ".join(f"AP50 {n}" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for p in prompts:
        cells = [fmt(configs[n]["per_prompt"][p]["ap50"]) for n in names]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_info(model: str, cache_dir: str | None) -> dict[str, Any]:
    """The model as resolved: folder, checksum of its meta.json files, input size, precision."""
    from streamdet.detect.model import find_model

    meta = find_model(model, cache_dir=cache_dir).meta
    return {
        "name": str(model),
        "folder": str(meta.folder),
        "checksum": meta.checksum,
        "image_size": meta.image_size,
        "embed_dim": meta.embed_dim,
        "precision": meta.precision,
        "threshold_suggested": meta.defaults.get("threshold"),
    }


def summary(report: Mapping[str, Any]) -> str:
    """What the command prints: the settings table, the cell-grid ceiling, AP50 per prompt of
    calibrated and reference, and each target with pass/FAIL."""
    ceiling = report["grid_ceiling"]
    patch = report["settings"]["patch"]
    lines = [
        markdown_table(report["configs"]),
        "",
        f"Cell-grid ceiling (exact boxes snapped to {patch} px cells): "
        f"AP50 {fmt(ceiling['ap50'])}, AP50:95 {fmt(ceiling['ap50_95'])}",
        "",
        prompt_table(report["configs"], ["calibrated", "reference"]),
        "",
    ]
    for name, t in report["targets"].items():
        bound = f">= {t['min']}" if "min" in t else f"<= {t['max']}"
        lines.append(
            f"target {name}: {fmt(t['value'])} ({bound}) {'pass' if t['passed'] else 'FAIL'}"
        )
    return "\n".join(lines)


def write_report(report: Mapping[str, Any], out: Path) -> None:
    """The report as indented JSON at ``out`` (written whole, then moved into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    partial.replace(out)
