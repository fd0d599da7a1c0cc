"""The quality benchmark's report: targets, the printed summary, the model's identity, the JSON.

Targets on the training generator are checked on the ``calibrated`` setting, and its AP50
against ``reference`` (the original write-up's scoring). Targets on the held-out generator (issue
18) are checked on ``calibrated`` too: AP50, every prompt's AP50, false boxes per frame without
the target, and the AP50 gap to the training generator. A target whose settings or generator
were not run counts as not passed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamdet.quality.tables import (
    analysis_tables,
    fmt,
    markdown_table,
    prompt_table,
    side_by_side,
)

TARGET_AP50 = 0.7
TARGET_AP50_RATIO = 2.0
TARGET_FALSE_BOXES = 0.05
#: Held-out generator targets (issue 18), on ``calibrated``.
TARGET_HELDOUT_AP50 = 0.7
TARGET_HELDOUT_PROMPT_AP50 = 0.5
TARGET_HELDOUT_FALSE_BOXES = 0.05
TARGET_HELDOUT_GAP = 0.10

__all__ = ["check_targets", "fmt", "gaps", "model_info", "summary", "write_report"]


def _configs(generators: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    return generators.get(name, {}).get("configs", {})


def _bound(value: Any, *, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    """A target entry: value, bound and whether it passed (None never passes)."""
    entry: dict[str, Any] = {"value": value}
    if low is not None:
        entry["min"] = low
        entry["passed"] = value is not None and value >= low
    else:
        entry["max"] = high
        entry["passed"] = value is not None and value <= high
    return entry


def check_targets(generators: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every target: value, bound, passed; see the module."""
    cal = _configs(generators, "train").get("calibrated", {})
    ref = _configs(generators, "train").get("reference", {})
    ap, ref_ap, fb = cal.get("ap50"), ref.get("ap50"), cal.get("false_boxes_per_frame")
    if ap is None or ref_ap is None:
        ratio = None
    else:
        ratio = math.inf if ref_ap == 0 and ap > 0 else (ap / ref_ap if ref_ap else 0.0)
    targets = {
        "calibrated_ap50": _bound(ap, low=TARGET_AP50),
        "calibrated_over_reference_ap50": _bound(ratio, low=TARGET_AP50_RATIO),
        "calibrated_false_boxes_per_frame": _bound(fb, high=TARGET_FALSE_BOXES),
    }
    if ratio is not None:
        targets["calibrated_over_reference_ap50"]["value"] = (
            round(ratio, 3) if math.isfinite(ratio) else "inf"
        )
    held = _configs(generators, "heldout").get("calibrated", {})
    held_ap = held.get("ap50")
    prompt_aps = [v["ap50"] for v in held.get("per_prompt", {}).values() if v["ap50"] is not None]
    gap = round(ap - held_ap, 4) if ap is not None and held_ap is not None else None
    targets["heldout_ap50"] = _bound(held_ap, low=TARGET_HELDOUT_AP50)
    targets["heldout_min_prompt_ap50"] = _bound(
        min(prompt_aps) if prompt_aps else None, low=TARGET_HELDOUT_PROMPT_AP50
    )
    targets["heldout_false_boxes_per_frame"] = _bound(
        held.get("false_boxes_per_frame"), high=TARGET_HELDOUT_FALSE_BOXES
    )
    targets["heldout_gap_ap50"] = _bound(gap, high=TARGET_HELDOUT_GAP)
    return targets


def gaps(generators: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per setting run on both generators: training minus held-out AP50 and AP50:95, held-out
    minus training false boxes per frame (positive: worse on the held-out generator)."""
    train, held = _configs(generators, "train"), _configs(generators, "heldout")
    out = {}
    for name in (n for n in train if n in held):
        a, b = train[name], held[name]

        def diff(x: Any, y: Any) -> float | None:
            return None if x is None or y is None else round(x - y, 4)

        out[name] = {
            "ap50": diff(a["ap50"], b["ap50"]),
            "ap50_95": diff(a["ap50_95"], b["ap50_95"]),
            "false_boxes_per_frame": diff(b["false_boxes_per_frame"], a["false_boxes_per_frame"]),
        }
    return out


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
    """What the command prints: per generator the settings table and cell-grid ceiling; both
    side by side; AP50 and recall per prompt; the analysed setting's failure analysis and
    calibration; each target with pass/FAIL."""
    generators = report["generators"]
    patch = report["settings"]["patch"]
    lines = []
    for name, g in generators.items():
        ceiling = g["grid_ceiling"]
        lines += [
            f"## Generator: {name}",
            "",
            markdown_table(g["configs"]),
            "",
            f"Cell-grid ceiling (exact boxes snapped to {patch} px cells): "
            f"AP50 {fmt(ceiling['ap50'])}, AP50:95 {fmt(ceiling['ap50_95'])}",
            "",
        ]
    if len(generators) > 1:
        lines += ["## Side by side", "", side_by_side(generators), ""]
    setting = report["settings"].get("analysed_setting", "calibrated")
    lines += [
        f"## Per prompt and failure analysis ({setting})",
        "",
        prompt_table(generators, setting),
        "",
    ]
    lines += [analysis_tables(generators, setting), ""]
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
