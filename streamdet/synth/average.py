"""Average the weights of fine-tuned models of one architecture into one model ("model soup").

A fine-tune on one more kind of randomised data moves held-out quality by a few points either
way from run to run (issue 18: seven such runs, docs/models.md). The even average of the weights
before and after such a fine-tune kept what both knew: on the quality benchmark's held-out
generator it was better than either (the recipe's last step, :mod:`streamdet.synth.recipe`).
Weights are averaged in float32 and saved as every trained model is (float16, with a fresh
best-F1 window threshold for ``streamdet.json``), so the result is reproducible from its sources.

    python -m streamdet.synth.average --out OUT MODEL_A MODEL_B
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import CLIPConfig

from streamdet.synth.data import BACKGROUND_PROMPTS, CaptionTable, caption_set
from streamdet.synth.logits import calibrate_threshold
from streamdet.synth.model import architecture_of, load_model, save_model

#: Seed of the crops the averaged model's window threshold is calibrated on.
CALIBRATION_SEED = 2000


def average_models(sources: Sequence[Path], out: Path) -> dict[str, float]:
    """Write the even float32 average of ``sources``' weights to ``out`` (tokenizer and
    processor from the last source); returns the calibration of its window threshold.

    Raises ``ValueError`` when fewer than two sources are given or their architectures differ."""
    if len(sources) < 2:
        raise ValueError(f"averaging needs at least two models, but got {len(sources)}")
    arches = [architecture_of(CLIPConfig.from_pretrained(s)) for s in sources]
    if any(a != arches[0] for a in arches[1:]):
        raise ValueError(
            "cannot average models of different architectures: "
            + ", ".join(f"{s} ({a})" for s, a in zip(sources, arches, strict=True))
        )
    loaded = [load_model(Path(s)) for s in sources]
    model, tokenizer = loaded[-1]
    states = [m.state_dict() for m, _ in loaded]
    mean = {k: sum(s[k].float() for s in states) / len(states) for k in states[0]}
    model.load_state_dict(mean)
    table = CaptionTable.build(caption_set())
    texts = list(table.texts) + list(BACKGROUND_PROMPTS)
    tokens = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    with torch.no_grad():
        calib = calibrate_threshold(model, tokens, table, CALIBRATION_SEED)
    save_model(
        model.eval(),
        Path(out),
        tokenizer_source=Path(sources[-1]),
        arch=arches[0],
        threshold=calib["threshold"],
    )
    return calib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("models", type=Path, nargs="+", help="model folders to average")
    args = parser.parse_args(argv)
    missing = [m for m in args.models if not (m / "config.json").is_file()]
    if missing:
        parser.error(f"not a model folder (no config.json): {missing[0]}")
    try:
        calib = average_models(args.models, args.out)
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps({"out": str(args.out), "calibration": calib}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
