"""Regenerate the built-in model in one command: nine training stages and an average, export.

    python -m streamdet.synth.recipe --out streamdet/models/scenes-clip
    python -m streamdet.synth.recipe --out /tmp/scenes-clip --dry-run   # print the steps only
    python -m streamdet.synth.recipe --out streamdet/models/scenes-clip --from-stage 8 \
        --init /tmp/scenes-clip.average                                 # stage 8 only

Each stage is a run of :mod:`streamdet.synth.train` from the previous stage's weights, with a fixed
seed and step count, so the result is reproducible for a given torch build and thread count:

1. from scratch: colours, shapes and objects on window-like crops (15,000 steps);
2. the per-patch loss: patch tokens learn which object each pixel shows (6,000 steps);
3. hard negatives: the most confident wrong captions pushed down (5,000 steps);
4. whole frames: every token of 640 x 360 generated frames, run in one pass through the dense
   head (``naclip``) as the ``dense`` method does, learns which object it shows
   (``--frame-weight``, :mod:`streamdet.synth.frames`), with the window losses kept in the mix
   on half the crops so that the windows method does not regress (900 steps, about 20 minutes on
   one thread);
5. domain randomisation (issue 18): the window, patch, hard-negative and frame losses of stage 4
   on scenes drawn many more ways (``--randomise 0.8``: four in five crops' and frames' scenes
   come from :mod:`streamdet.synth.randomise`: other shades within each colour name, outlines,
   textures, proportions, tiny objects, new backgrounds, occluders, hard negatives, lighting,
   blur, noise and codec artefacts), so that the model holds up on scenes it never saw;
6. more of it, aimed at verification (issue 18): the losses of stage 5 at a lower learning rate
   (1e-4), nine in ten scenes randomised, and a quarter of the randomised scenes' crops cut as
   verification views (``--verify-crops 0.25``: centred on one object at 1.5x or 2x its longer
   side, the crops whose global embedding decides whether a detector's box is kept; on the
   held-out generator verification was where most found objects were lost) (4,500 steps, about
   47 minutes on one thread);
7. varied occluders (issue 18): stage 6's losses and data, but half the randomised scenes have
   objects covered by poles, railings, leafy branches or rocks, shaded and textured
   (``--varied-occluders``, :mod:`streamdet.synth.occluders`), where stage 6 drew flat bars and
   ellipses in a third of them; on one held-out seed 8 of the 22 true boxes verification dropped
   were crossed by a pole or a branch (3,000 steps, about 42 minutes on one thread);
8. a harder camera (issue 18), from the even average of stages 6 and 7's weights
   (:data:`AVERAGED`, :mod:`streamdet.synth.average`; the model shipped before stage 8):
   stage 7's losses and data, but the randomised scenes' camera effects reach dim light, strong
   defocus and motion blur, stronger noise and lower bit-rates (``--hard-camera``,
   :data:`streamdet.synth.degrade.HARD`); the held-out generator's misses were blurred, dim and
   low-contrast objects the crops no longer named (3,000 steps, about 37 minutes on one thread);
9. a 96-pixel input (issue 18): stage 8's losses and data with the model's input resized from
   64 to 96 pixels (``--image-size 96``, :func:`streamdet.synth.model.resized_input`), so its
   one pass has 11-pixel tokens instead of 16 and its whole frames are drawn at those tokens
   (:func:`streamdet.synth.frames.detector_token_px`); on the held-out generator people were
   found far more often (AP50 0.59 -> 0.78), at about three times the one pass's time
   (1,000 steps, about 26 minutes on two threads).

The shipped model is stage 9's.

Stages 1 to 9 and the average are written beside ``--out`` (``<out>.stage1`` ...
``<out>.stage9``, ``<out>.average``) and kept, so an interrupted run can go on from a finished
stage with ``--from-stage``; ``--init`` names another folder holding the previous stage's model
(from stage 7, the stage-6 model averaged in; for stage 8, the average). Stage 3's model is the
built-in model as shipped before stage 4 existed (git: ``streamdet/models/scenes-clip`` at commit
a160d80, made by this recipe's stages 1 to 3), stage 4's the one shipped before stage 5 existed
(commit 260f3ad), stage 5's the one shipped before stage 6 existed (commit d08a606), stage 6's
the one shipped before stage 7 existed (commit dd96c7d), the average the one shipped before
stage 8 existed (commit 405cc22), stage 8's the one shipped before stage 9 existed (commit
5f6e5c4). To redo stage 9 alone, check that folder out somewhere and pass it as ``--init`` with
``--from-stage 9``::

    mkdir -p /tmp/scenes-clip.stage8
    git archive 5f6e5c4 streamdet/models/scenes-clip | tar -x --strip-components=3 \
        -C /tmp/scenes-clip.stage8

(stage 8 and on the same way from 405cc22 with ``--from-stage 8``, stage 7 and on from dd96c7d
with ``--from-stage 7``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

#: (name, train.py arguments) per stage; each after the first starts from the one before (stage 8
#: from the average of stages 6 and 7: :data:`AVERAGED`, :data:`FROM_AVERAGE`).
STAGES: tuple[tuple[str, str], ...] = (
    ("stage1", "--seed 0 --steps 15000 --lr 1e-3"),
    ("stage2", "--seed 1 --steps 6000 --lr 3e-4 --patch-weight 1 --easy-until 0"),
    ("stage3", "--seed 2 --steps 5000 --lr 2e-4 --patch-weight 1 --hard-weight 1 --easy-until 0"),
    (
        "stage4",
        "--seed 3 --steps 900 --batch 32 --lr 2e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2",
    ),
    (
        "stage5",
        "--seed 4 --steps 4000 --batch 32 --lr 2e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2 --randomise 0.8 --threads 1",
    ),
    (
        "stage6",
        "--seed 5 --steps 4500 --batch 32 --lr 1e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2 --randomise 0.9"
        " --verify-crops 0.25 --threads 1",
    ),
    (
        "stage7",
        "--seed 10 --steps 3000 --batch 32 --lr 1e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2 --randomise 0.9"
        " --verify-crops 0.25 --threads 1 --varied-occluders",
    ),
    (
        "stage8",
        "--seed 21 --steps 3000 --batch 32 --lr 1e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2 --randomise 0.9"
        " --verify-crops 0.25 --threads 1 --varied-occluders --hard-camera",
    ),
    (
        "stage9",
        "--seed 29 --steps 1000 --batch 32 --lr 1e-4 --warmup-steps 50 --patch-weight 1"
        " --hard-weight 1 --easy-until 0 --frame-weight 2 --frames 2 --randomise 0.9"
        " --verify-crops 0.25 --threads 2 --varied-occluders --hard-camera --image-size 96",
    ),
)

#: These stages' weights are averaged (:mod:`streamdet.synth.average`) into ``<out>.average``,
#: the model :data:`FROM_AVERAGE` starts from (better on the held-out generator than either).
AVERAGED = ("stage6", "stage7")
#: The stage that starts from the average instead of the stage before it.
FROM_AVERAGE = "stage8"
_NAMES = [name for name, _ in STAGES]


def average_folder(out: Path) -> Path:
    """Where the average of :data:`AVERAGED` is written: ``<out>.average``."""
    return out.with_name(f"{out.name}.average")


def stage_folders(out: Path, first: int = 1, init: Path | None = None) -> list[Path]:
    """Where each stage's model is: ``<out>.stageN``, except that the stage before ``first`` is
    ``init`` when given (for :data:`FROM_AVERAGE`, ``init`` is the average instead)."""
    folders = [out.with_name(f"{out.name}.{name}") for name in _NAMES]
    if init is not None and first > 1 and _NAMES[first - 1] != FROM_AVERAGE:
        folders[first - 2] = init
    return folders


def averaged_sources(out: Path, first: int = 1, init: Path | None = None) -> list[Path]:
    """The model folders whose weights are averaged into ``<out>.average`` (:data:`AVERAGED`)."""
    folders = stage_folders(out, first, init)
    return [folders[_NAMES.index(name)] for name in AVERAGED]


def _start(i: int, out: Path, first: int, init: Path | None) -> Path | None:
    """The model stage ``i`` (0-based) starts from."""
    if _NAMES[i] == FROM_AVERAGE:
        return init if init is not None and first == i + 1 else average_folder(out)
    return stage_folders(out, first, init)[i - 1] if i > 0 else init


def stage_commands(out: Path, first: int = 1, init: Path | None = None) -> list[list[str]]:
    """The ``streamdet.synth.train`` argument lists for stages ``first``..last, each writing
    ``<out>.stageN``. Stage ``first`` starts from ``init`` when given (else from the previous
    stage's folder; :data:`FROM_AVERAGE` from the average)."""
    folders = stage_folders(out, first, init)
    commands = []
    for i, (_, args) in enumerate(STAGES):
        if i + 1 < first:
            continue
        start = _start(i, out, first, init)
        before = ["--init", str(start)] if start is not None else []
        commands.append(["--out", str(folders[i]), *before, *args.split()])
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument(
        "--from-stage",
        type=int,
        default=1,
        choices=range(1, len(STAGES) + 1),
        help="skip the stages before",
    )
    parser.add_argument(
        "--init", type=Path, help="the previous stage's model (default: <out>.stageN-1)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    args = parser.parse_args(argv)
    commands = stage_commands(args.out, args.from_stage, args.init)
    sources = averaged_sources(args.out, args.from_stage, args.init)
    averaged = stage_folders(args.out)[_NAMES.index(FROM_AVERAGE)]
    last = folder_of(commands[-1])
    average = ["python", "-m", "streamdet.synth.average", "--out", str(average_folder(args.out))]
    steps: list[list[str]] = []
    for command in commands:
        if folder_of(command) == averaged and args.from_stage <= _NAMES.index(FROM_AVERAGE):
            steps.append([*average, *map(str, sources)])  # the average is made on the way
        steps.append(["python", "-m", "streamdet.synth.train", *command])
    steps += [
        ["cp", "-R", f"{last}/.", f"{args.out}/"],
        ["python", "-m", "streamdet.synth.evaluate", "--model", str(args.out)],
        ["streamdet", "export", str(args.out), "-o", str(args.out), "--overwrite"],
    ]
    if args.dry_run:
        for step in steps:
            print(" ".join(step))
        return 0
    from streamdet.clip.export import export_model
    from streamdet.clip.hub import BUILTIN_MODELS
    from streamdet.synth import train
    from streamdet.synth.average import average_models
    from streamdet.synth.evaluate import evaluate

    for step in steps[:-3]:
        if step[2] == "streamdet.synth.average":
            calibration = average_models(sources, average_folder(args.out))
            print(json.dumps({"averaged": calibration}), flush=True)
        else:
            train.main(step[3:])
    shutil.copytree(last, args.out, dirs_exist_ok=True)
    print(json.dumps(evaluate(args.out)), flush=True)
    builtin = BUILTIN_MODELS["streamdet/scenes-clip"]
    name = "streamdet/scenes-clip" if args.out.resolve() == builtin.resolve() else None
    report = export_model(args.out, args.out, overwrite=True, source_name=name)
    print(
        f"exported {args.out} (parity: image {report.image_max_abs_diff:.2e}, "
        f"text {report.text_max_abs_diff:.2e})",
        flush=True,
    )
    return 0


def folder_of(command: list[str]) -> Path:
    """The folder a ``streamdet.synth.train`` argument list writes (its ``--out``)."""
    return Path(command[command.index("--out") + 1])


if __name__ == "__main__":
    sys.exit(main())
