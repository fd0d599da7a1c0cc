"""Markdown tables of the quality benchmark's printed report, one function per table.

Each takes the report's per-generator results (``{"train": {"configs": ...}, "heldout": ...}``)
and lays generators out as column groups, so the training and held-out numbers sit side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Generators = Mapping[str, Mapping[str, Any]]


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` places, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_table(configs: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per setting: AP, false boxes, stability, speed."""
    header = ["config", "AP50", "AP50:95", "false boxes/frame", "jitter", "blink", "ms/frame"]
    rows = [
        [
            n,
            r["ap50"],
            r["ap50_95"],
            r["false_boxes_per_frame"],
            r["jitter"],
            r["blink"],
            fmt(r["ms_per_frame"], 1),
        ]
        for n, r in configs.items()
    ]
    return _table(header, rows)


def side_by_side(generators: Generators) -> str:
    """Per setting run on every generator: AP50, false boxes, jitter, blink of each; the AP50 gap
    (first generator minus the others)."""
    names = list(generators)
    first = generators[names[0]]["configs"]
    settings = [s for s in first if all(s in generators[g]["configs"] for g in names)]
    header = ["config"]
    for metric in ("AP50", "false boxes/frame", "jitter", "blink"):
        header += [f"{metric} {g}" for g in names]
    header += [f"AP50 gap {names[0]}-{g}" for g in names[1:]]
    rows = []
    for s in settings:
        r = {g: generators[g]["configs"][s] for g in names}
        row: list[object] = [s]
        for key in ("ap50", "false_boxes_per_frame", "jitter", "blink"):
            row += [r[g][key] for g in names]
        for g in names[1:]:
            a, b = r[names[0]]["ap50"], r[g]["ap50"]
            row.append(None if a is None or b is None else round(a - b, 4))
        rows.append(row)
    return _table(header, rows)


def _analysis(generators: Generators, setting: str) -> dict[str, Mapping[str, Any]]:
    return {
        g: v["configs"][setting]["analysis"]
        for g, v in generators.items()
        if setting in v["configs"] and "analysis" in v["configs"][setting]
    }


def prompt_table(generators: Generators, setting: str) -> str:
    """AP50 and recall (at the operating point) per prompt, per generator."""
    runs = {g: v["configs"][setting] for g, v in generators.items() if setting in v["configs"]}
    if not runs:
        return ""
    analysis = _analysis(generators, setting)
    prompts = list(next(iter(runs.values()))["per_prompt"])
    header = ["prompt", *(f"AP50 {g}" for g in runs), *(f"recall {g}" for g in analysis)]
    rows = []
    for p in prompts:
        row: list[object] = [p, *(runs[g]["per_prompt"][p]["ap50"] for g in runs)]
        row += [a["recall_by_prompt"].get(p, {}).get("recall") for a in analysis.values()]
        rows.append(row)
    return _table(header, rows)


def _grouped(analysis: Mapping[str, Mapping[str, Any]], key: str, what: str) -> str:
    """Recall per group (size, frame kind) with counts, generators as columns."""
    groups: dict[str, None] = {}
    for a in analysis.values():
        groups.update(dict.fromkeys(a[key]))
    header = [what, *(f"recall {g} (found/true)" for g in analysis)]
    rows = []
    for group in groups:
        row: list[object] = [group]
        for a in analysis.values():
            cell = a[key].get(group)
            row.append(f"{cell['recall']:.3f} ({cell['found']}/{cell['true']})" if cell else "-")
        rows.append(row)
    return _table(header, rows)


def _backgrounds(analysis: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for g, a in analysis.items():
        for bg, cell in a["recall_by_background"].items():
            fb = a["false_boxes_by_background"].get(bg)
            rows.append(
                [
                    g,
                    bg,
                    f"{cell['recall']:.3f} ({cell['found']}/{cell['true']})",
                    fb["per_frame"] if fb else None,
                ]
            )
    header = ["generator", "background", "recall (found/true)", "false boxes/frame w/o target"]
    return _table(header, rows)


def _causes(analysis: Mapping[str, Mapping[str, Any]]) -> str:
    causes = list(next(iter(analysis.values()))["false_boxes_by_cause"])
    header = ["a wrong box lies on", *(f"w/o target {g}" for g in analysis)]
    header += [f"all wrong {g}" for g in analysis]
    rows = [
        [
            c,
            *(a["false_boxes_by_cause"][c] for a in analysis.values()),
            *(a["wrong_boxes_by_cause"][c] for a in analysis.values()),
        ]
        for c in causes
    ]
    return _table(header, rows)


def _calibration(analysis: Mapping[str, Mapping[str, Any]]) -> str:
    bins = [row["bin"] for row in next(iter(analysis.values()))["calibration"]]
    header = ["confidence", *(f"precision {g} (right/boxes)" for g in analysis)]
    rows = []
    for k, b in enumerate(bins):
        row: list[object] = [b]
        for a in analysis.values():
            cell = a["calibration"][k]
            precision = fmt(cell["precision"])
            row.append(f"{precision} ({cell['right']}/{cell['boxes']})" if cell["boxes"] else "-")
        rows.append(row)
    return _table(header, rows)


def analysis_tables(generators: Generators, setting: str) -> str:
    """Recall by object size, frame kind and background; wrong boxes by cause; calibration."""
    analysis = _analysis(generators, setting)
    if not analysis:
        return ""
    parts = [
        "Recall by object size (square root of the true box's area):",
        _grouped(analysis, "recall_by_size", "size"),
        "Recall by frame kind:",
        _grouped(analysis, "recall_by_frame_kind", "frame kind"),
        "Recall and false boxes by background:",
        _backgrounds(analysis),
        "Wrong boxes by what they lie on (on frames without the target; all wrong boxes):",
        _causes(analysis),
        "Calibration: precision of boxes by confidence (boxes on ignore regions left out):",
        _calibration(analysis),
    ]
    return "\n\n".join(parts)
