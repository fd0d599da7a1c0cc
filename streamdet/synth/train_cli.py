"""The command line of :mod:`streamdet.synth.train`: its options, their checks, and the
:class:`~streamdet.synth.train.TrainConfig` they make.

    python -m streamdet.synth.train --out streamdet/models/scenes-clip --seed 0 --steps 4500

Kept apart from the training loop so that each module has one job; ``streamdet.synth.train``'s
``main`` calls :func:`main` here.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from transformers import CLIPConfig

from streamdet.synth.data import POSITIVE_VISIBLE
from streamdet.synth.model import Architecture, architecture_of
from streamdet.synth.train import DEFAULT_TOKENIZER, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    """Parse and check the options, train, and write the record if asked; 0 on success (a bad
    option exits 2 with a one-line message, as argparse does)."""
    parser = argparse.ArgumentParser(
        prog="python -m streamdet.synth.train",
        description="Train the built-in CLIP (streamdet/scenes-clip) on synthetic scenes.",
    )
    parser.add_argument("--out", type=Path, required=True, help="model folder to write")
    parser.add_argument("--seed", type=int, default=0)
    length = parser.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=int, help="optimizer steps (reproducible)")
    length.add_argument("--minutes", type=float, help="train for this long instead")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--softmax-weight", type=float, default=0.5)
    parser.add_argument(
        "--image-size",
        type=int,
        help="input (and verification view) size in pixels; with --init the model's position "
        "embeddings are resized to it (default: --init's, or 64). The detector's one pass "
        "then has finer tokens (11 frame pixels at 96, not 16), and frames train on those",
    )
    parser.add_argument("--vision-width", type=int, default=128)
    parser.add_argument("--vision-layers", type=int, default=4)
    parser.add_argument("--text-width", type=int, default=48)
    parser.add_argument("--text-layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument(
        "--tokenizer",
        type=Path,
        help=f"tokenizer files (default: --init's, or {DEFAULT_TOKENIZER})",
    )
    parser.add_argument(
        "--init", type=Path, help="fine-tune this saved model instead of starting from scratch"
    )
    parser.add_argument(
        "--patch-weight",
        type=float,
        default=0.0,
        help="weight of the per-patch loss that teaches the patch tokens where objects are",
    )
    parser.add_argument(
        "--hard-weight",
        type=float,
        default=0.0,
        help="weight of a term on the most confident wrong captions (about one per crop)",
    )
    parser.add_argument(
        "--weak-weight",
        type=float,
        default=0.0,
        help="weight of a term on the least confident true captions (about one per crop)",
    )
    parser.add_argument(
        "--frame-weight",
        type=float,
        default=0.0,
        help="weight of the per-token loss on whole frames run in one pass (the dense method)",
    )
    parser.add_argument(
        "--patch-soft",
        action="store_true",
        help="crop patches learn the share of them each caption's objects cover (soft targets)",
    )
    parser.add_argument("--frames", type=int, default=2, help="whole frames per step")
    parser.add_argument(
        "--frame-soft",
        action="store_true",
        help="frame tokens learn the share of them each caption's objects cover (soft targets)",
    )
    parser.add_argument(
        "--frame-head", default="naclip", help="dense last layer the frame loss runs through"
    )
    parser.add_argument(
        "--randomise",
        type=float,
        default=0.0,
        help="share of crops' and frames' scenes that are domain-randomised (recipe stage 5)",
    )
    parser.add_argument(
        "--verify-crops",
        type=float,
        default=0.0,
        help="share of the randomised scenes' crops that are verification views: centred on one "
        "object at 1.5x or 2x its longer side (recipe stage 6)",
    )
    parser.add_argument(
        "--pad-views",
        action="store_true",
        help="verification views of objects at the frame's edge stay centred and are padded with "
        "the model's mean colour past it, as the detector's are (tried after stage 6)",
    )
    parser.add_argument(
        "--positive-visible",
        type=float,
        default=POSITIVE_VISIBLE,
        help="share of an object's box a crop must show for the object to count as shown "
        f"(default {POSITIVE_VISIBLE}; tried after stage 6: 0.5)",
    )
    parser.add_argument(
        "--wide-shapes",
        action="store_true",
        help="randomised scenes draw shapes from wider proportions: stars of 5 to 8 points, "
        "rounded squares, Latin crosses, flatter and taller triangles (tried after stage 6)",
    )
    parser.add_argument(
        "--varied-occluders",
        action="store_true",
        help="randomised scenes are occluded (half of them, not 35%%) by poles, railings, leafy "
        "branches and rocks, shaded and textured, instead of flat bars and ellipses",
    )
    parser.add_argument(
        "--varied-people",
        action="store_true",
        help="randomised scenes' people walk or stand, often in trousers of another colour and "
        "with bare arms (tried after stage 7, not in the recipe: docs/models.md)",
    )
    parser.add_argument(
        "--hard-camera",
        action="store_true",
        help="randomised scenes get dim light, strong blur and low bit-rates (degrade.HARD)",
    )
    parser.add_argument(
        "--easy-until", type=float, default=0.3, help="share of steps on easy scenes only"
    )
    parser.add_argument("--record", type=Path, help="also write the training record (JSON) here")
    args = parser.parse_args(argv)
    for option, weight in (
        ("--hard-weight", args.hard_weight),
        ("--weak-weight", args.weak_weight),
    ):
        if weight < 0:
            parser.error(f"{option} is a loss weight: expected 0 or more, but got {weight}")
    if not 0.0 <= args.randomise <= 1.0:
        parser.error(f"--randomise is a share: expected 0..1, but got {args.randomise}")
    if not 0.0 <= args.verify_crops <= 1.0:
        parser.error(f"--verify-crops is a share: expected 0..1, but got {args.verify_crops}")
    if not 0.0 < args.positive_visible <= 1.0:
        parser.error(
            "--positive-visible is a share: expected above 0 up to 1, "
            f"but got {args.positive_visible}"
        )
    if args.pad_views and args.verify_crops == 0:
        parser.error("--pad-views needs --verify-crops above 0 (it acts on verification views)")
    on_randomised = {
        "--verify-crops": args.verify_crops > 0,
        "--wide-shapes": args.wide_shapes,
        "--varied-occluders": args.varied_occluders,
        "--varied-people": args.varied_people,
        "--hard-camera": args.hard_camera,
    }
    for option, given in on_randomised.items():
        if given and args.randomise == 0:
            parser.error(f"{option} needs --randomise above 0 (it acts on randomised scenes)")
    if args.patch_soft and args.patch_weight == 0:
        parser.error("--patch-soft needs --patch-weight above 0 (soft targets of the patch loss)")
    if args.frame_soft and args.frame_weight == 0:
        parser.error("--frame-soft needs --frame-weight above 0 (soft targets of the frame loss)")
    if args.init is not None:
        arch = architecture_of(CLIPConfig.from_pretrained(args.init))
    else:
        arch = Architecture(
            vision_width=args.vision_width,
            vision_layers=args.vision_layers,
            vision_heads=max(1, args.vision_width // 32),
            text_width=args.text_width,
            text_layers=args.text_layers,
            text_heads=max(1, args.text_width // 16),
        )
    if args.image_size is not None:
        if args.image_size < 2 * arch.patch_size or args.image_size % arch.patch_size:
            parser.error(
                f"--image-size {args.image_size}: give a multiple of the model's patch size "
                f"({arch.patch_size}) of at least {2 * arch.patch_size}"
            )
        arch = replace(arch, image_size=args.image_size)
    tokenizer = args.tokenizer or (args.init if args.init is not None else DEFAULT_TOKENIZER)
    config = TrainConfig(
        seed=args.seed,
        steps=args.steps,
        minutes=args.minutes,
        batch=args.batch,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        softmax_weight=args.softmax_weight,
        threads=args.threads,
        patch_weight=args.patch_weight,
        hard_weight=args.hard_weight,
        weak_weight=args.weak_weight,
        frame_weight=args.frame_weight,
        frames=args.frames,
        frame_head=args.frame_head,
        frame_soft=args.frame_soft,
        patch_soft=args.patch_soft,
        randomise=args.randomise,
        verify_crops=args.verify_crops,
        pad_views=args.pad_views,
        positive_visible=args.positive_visible,
        wide_shapes=args.wide_shapes,
        varied_occluders=args.varied_occluders,
        varied_people=args.varied_people,
        hard_camera=args.hard_camera,
        easy_until=args.easy_until,
        init=None if args.init is None else str(args.init),
        arch=arch,
    )
    record = train(
        config,
        args.out,
        tokenizer_source=tokenizer,
        checkpoint_minutes=args.checkpoint_minutes,
    )
    if args.record is not None:
        args.record.write_text(json.dumps(record, indent=2) + "\n")
    return 0
