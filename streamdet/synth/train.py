"""Train the built-in CLIP (streamdet/scenes-clip) from scratch on synthetic scenes.

    python -m streamdet.synth.train --out streamdet/models/scenes-clip --seed 0 --steps 4500

Each step renders fresh random scenes, cuts detector-like square crops out of them (around an
object, around part of one, or anywhere) and labels every caption of a fixed caption set TRUE,
FALSE or IGNORE for every crop (see :mod:`streamdet.synth.data`). The loss trains exactly the
score the detector uses, p(prompt) = softmax over [prompt, background prompts] of the logits:

* a per-caption binary term: sigmoid(logit(caption) - logsumexp(logits(backgrounds))) should be 1
  for TRUE captions and 0 for FALSE ones, so the background prompts become a calibrated threshold
  that wrong-colour, wrong-shape and empty crops stay under;
* a multi-positive softmax over all captions (backgrounds included, TRUE for empty crops);
* one softmax per attribute family (kind only, colour only, colour + kind), which forces kind to
  be learnt: without them colour alone satisfies the other terms.

With ``--frame-weight`` (recipe stage 4) each step also renders whole frames, runs them in one
pass through the dense head the ``dense`` method uses and applies the per-patch loss to every
token (:mod:`streamdet.synth.frames`). The losses themselves are in :mod:`streamdet.synth.losses`.

The first 30% of the steps use easy scenes only (see ``make_batch``'s ``easy_fraction``), then a
quarter easy. Runs on the CPU with one torch thread by default: on two cores shared with other
work, two threads ran much slower than one (threads waiting on each other). Data come from a
plain loop, no DataLoader.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from transformers import CLIPModel, CLIPTokenizerFast

from streamdet.synth.data import (
    BACKGROUND_PROMPTS,
    POSITIVE_VISIBLE,
    CaptionTable,
    caption_set,
    make_batch,
    single_object_crops,
)
from streamdet.synth.frames import detector_token_px, frame_token_logits, make_frame_batch
from streamdet.synth.logits import (
    calibrate_threshold,
    logits_for,
    logits_with_patches,
    texts_and_scale,
)
from streamdet.synth.losses import patch_loss, soft_patch_loss, streamdet_loss
from streamdet.synth.model import (
    Architecture,
    build_model,
    count_parameters,
    resized_input,
    save_model,
    to_pixels,
    zero_shot_accuracy,
)
from streamdet.synth.randomise import Variety

DEFAULT_TOKENIZER = Path("/work/shared/models/clip-vit-base-patch32-noweights")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (with the seed)."""

    seed: int = 0
    steps: int | None = None
    minutes: float | None = None
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    softmax_weight: float = 0.5
    easy_until: float = 0.3
    threads: int = 1
    patch_weight: float = 0.0
    hard_weight: float = 0.0
    weak_weight: float = 0.0
    frame_weight: float = 0.0
    frames: int = 2
    frame_head: str = "naclip"
    frame_soft: bool = False
    patch_soft: bool = False
    randomise: float = 0.0
    verify_crops: float = 0.0
    pad_views: bool = False
    positive_visible: float = POSITIVE_VISIBLE
    wide_shapes: bool = False
    varied_occluders: bool = False
    varied_people: bool = False
    hard_camera: bool = False
    init: str | None = None
    arch: Architecture = field(default_factory=Architecture)

    @property
    def variety(self) -> Variety:
        """What else the randomised scenes draw: the four options above, as the data takes them."""
        return Variety(
            self.wide_shapes, self.varied_occluders, self.varied_people, self.hard_camera
        )


def _labels_with_background(labels: np.ndarray, background: np.ndarray, n_bg: int) -> torch.Tensor:
    """(N, C) caption labels + (N,) background label -> (N, C + n_bg) int8 tensor."""
    bg = np.repeat(background[:, None], n_bg, axis=1)
    return torch.from_numpy(np.concatenate([labels, bg], axis=1))


def _frame_loss(
    model: CLIPModel,
    rng: np.random.Generator,
    table: CaptionTable,
    tokens: dict[str, torch.Tensor],
    config: TrainConfig,
    n_bg: int,
) -> torch.Tensor:
    """The per-token loss on ``config.frames`` whole generated frames, run in one pass through
    the dense head the detector uses (:mod:`streamdet.synth.frames`): the patch loss on every
    token of the frame instead of every patch of a crop."""
    arch = config.arch
    batch = make_frame_batch(
        rng,
        table,
        config.frames,
        token_px=detector_token_px(arch.image_size, arch.patch_size),
        model_patch=arch.patch_size,
        soft=config.frame_soft,
        randomise=config.randomise,
        variety=config.variety,
    )
    txt, scale = texts_and_scale(model, tokens)
    logits = frame_token_logits(model, batch.pixels, txt, scale, config.frame_head)
    return _token_loss(logits, batch.labels, batch.cover, n_bg)


def _token_loss(
    logits: torch.Tensor, labels: np.ndarray, cover: np.ndarray | None, n_bg: int
) -> torch.Tensor:
    """The per-token loss of crops' patches or frames' tokens, (N, P, C + n_bg) ``logits``
    against (N, ..., C) hard ``labels``, or soft targets where ``cover`` is given (NaN: sized
    captions and doubtful shades, ignored; ``--patch-soft``, ``--frame-soft``)."""
    n, c = len(labels), labels.shape[-1]
    if cover is not None:
        return soft_patch_loss(logits, torch.from_numpy(cover.reshape(n, -1, c)), n_bg)
    return patch_loss(logits, torch.from_numpy(labels.reshape(n, -1, c)), n_bg)


def _first_of_colour(table: CaptionTable) -> np.ndarray:
    """Mask keeping one caption per colour among equivalent ones ("a red shape", not "a red
    object"), so that a family softmax has one column per class."""
    seen: set[tuple[int, int, int]] = set()
    keep = np.zeros(len(table.texts), dtype=bool)
    for i, key in enumerate(zip(table.colour, table.kind, table.size, strict=True)):
        k = tuple(int(v) for v in key)
        keep[i] = k not in seen
        seen.add(k)
    return keep


def _easy_fraction(config: TrainConfig, progress: float) -> float:
    """The curriculum: only easy scenes for the first ``easy_until`` of training, then a quarter."""
    return 1.0 if progress < config.easy_until else 0.25


def _lr_at(config: TrainConfig, step: int, progress: float) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(
    config: TrainConfig, out: Path, *, tokenizer_source: Path, checkpoint_minutes: float
) -> dict:
    """Train, checkpointing into ``out`` every ``checkpoint_minutes``; return a record of it."""
    if config.steps is None and config.minutes is None:
        raise ValueError("give steps or minutes")
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(1)  # OpenCV's own pool would fight torch's threads for the same cores
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.init is not None:  # fine-tune a saved model (its own architecture)
        model = CLIPModel.from_pretrained(config.init, dtype=torch.float32)
        if model.config.vision_config.image_size != config.arch.image_size:
            model = resized_input(model, config.arch.image_size)  # --image-size
    else:
        model = build_model(config.arch)
    model.train()
    n_params = count_parameters(model)
    tokenizer = CLIPTokenizerFast.from_pretrained(tokenizer_source)
    captions = caption_set()
    table = CaptionTable.build(captions)
    texts = list(table.texts) + list(BACKGROUND_PROMPTS)
    tokens = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    n_bg = len(BACKGROUND_PROMPTS)
    families = {
        "kind": torch.from_numpy(np.flatnonzero((table.colour < 0) & (table.size < 0))),
        "colour": torch.from_numpy(
            np.flatnonzero((table.kind < 0) & (table.size < 0) & _first_of_colour(table))
        ),
        "colour_kind": torch.from_numpy(
            np.flatnonzero((table.colour >= 0) & (table.kind >= 0) & (table.size < 0))
        ),
    }
    vision_config = model.config.vision_config
    val = single_object_crops(
        np.random.default_rng(config.seed + 1000), 352, image_size=vision_config.image_size
    )
    grid = vision_config.image_size // vision_config.patch_size

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        is_table = "embedding" in name
        (no_decay if p.ndim < 2 or is_table or "logit_scale" in name else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    print(
        f"params {n_params:,}  captions {len(texts)}  config {json.dumps(asdict(config))}",
        flush=True,
    )
    start = last_ckpt = last_log = time.monotonic()
    data_s = 0.0
    step = 0
    history = []
    while True:
        elapsed = time.monotonic() - start
        if config.steps is not None:
            progress = step / config.steps
        else:
            progress = elapsed / (config.minutes * 60)  # type: ignore[operator]
        if progress >= 1.0:
            break
        lr = _lr_at(config, step, progress)
        for group in opt.param_groups:
            group["lr"] = lr
        t0 = time.monotonic()
        batch = make_batch(
            rng,
            table,
            config.batch,
            image_size=vision_config.image_size,
            easy_fraction=_easy_fraction(config, progress),
            patch_grid=grid if config.patch_weight > 0 else 0,
            randomise=config.randomise,
            verify_crops=config.verify_crops,
            pad_views=config.pad_views,
            positive_visible=config.positive_visible,
            variety=config.variety,
            soft_patches=config.patch_soft,
        )
        labels = _labels_with_background(batch.labels, batch.background, n_bg)
        pixels = to_pixels(batch.images)
        data_s += time.monotonic() - t0
        if batch.patches is not None:
            logits, patch_logits = logits_with_patches(model, pixels, tokens)
        else:
            logits = logits_for(model, pixels, tokens)
        loss, parts = streamdet_loss(
            logits,
            labels,
            n_bg,
            config.softmax_weight,
            families,
            config.hard_weight,
            config.weak_weight,
        )
        if batch.patches is not None:
            patches = _token_loss(patch_logits, batch.patches, batch.cover, n_bg)
            loss = loss + config.patch_weight * patches
            parts["patch"] = float(patches.detach())
        if config.frame_weight > 0:
            frame_loss = _frame_loss(model, rng, table, tokens, config, n_bg)
            loss = loss + config.frame_weight * frame_loss
            parts["frame"] = float(frame_loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        now = time.monotonic()
        if now - last_log >= 60 or step == 1:
            acc = zero_shot_accuracy(model, tokenizer, val)
            record = {
                "step": step,
                "minutes": round((now - start) / 60, 2),
                "loss": round(loss.item(), 4),
                **{k: round(v, 4) for k, v in parts.items()},
                "scale": round(model.logit_scale.exp().item(), 2),
                "lr": round(lr, 6),
                "steps_per_s": round(step / (now - start), 3),
                "data_share": round(data_s / (now - start), 3),
                **{f"acc_{k}": round(v, 3) for k, v in acc.items()},
            }
            history.append(record)
            print(json.dumps(record), flush=True)
            last_log = now
        if checkpoint_minutes > 0 and now - last_ckpt >= checkpoint_minutes * 60:
            save_model(
                model, out, tokenizer_source=tokenizer_source, arch=config.arch, threshold=None
            )
            print(f"checkpoint at step {step} -> {out}", flush=True)
            last_ckpt = now
    wall = time.monotonic() - start
    calib = calibrate_threshold(model, tokens, table, config.seed + 2000)
    acc = zero_shot_accuracy(model, tokenizer, val)
    record = {
        "config": asdict(config),
        "steps_done": step,
        "wall_minutes": round(wall / 60, 2),
        "parameters": n_params,
        "val_accuracy": acc,
        "calibration": calib,
        "history": history,
    }
    print(json.dumps({k: v for k, v in record.items() if k != "history"}), flush=True)
    save_model(
        model,
        out,
        tokenizer_source=tokenizer_source,
        arch=config.arch,
        threshold=calib["threshold"],
    )
    return record


def main(argv: list[str] | None = None) -> int:
    """``python -m streamdet.synth.train``: the command line is :mod:`streamdet.synth.train_cli`."""
    from streamdet.synth.train_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
