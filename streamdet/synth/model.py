"""The built-in CLIP's architecture, its files on disk, and zero-shot accuracy on synthetic crops.

The model is a plain transformers ``CLIPModel`` with the real CLIP BPE tokenizer, only small, so it
goes through exactly the loading, export and inference code of openai/clip-vit-base-patch32.
Imports torch and transformers; nothing at runtime in streamdet needs this module.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

from streamdet.synth.data import BACKGROUND_PROMPTS, SingleObjectSet
from streamdet.synth.scenes import COLOURS, KINDS, OBJECTS, SHAPES, Query

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# The tokenizer files shipped with the model; vocab.json and merges.txt are redundant with
# tokenizer.json (CLIPTokenizerFast loads without them) and are left out to keep the model small.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class Architecture:
    """Sizes of the small CLIP. The 49,408-row token table (``text_width`` wide) dominates the
    parameter count, so the text tower is narrow; the vision tower carries the capacity."""

    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_width: int = 48
    text_layers: int = 2
    text_heads: int = 4
    projection_dim: int = 64


def resized_input(model: CLIPModel, image_size: int) -> CLIPModel:
    """``model`` taking ``image_size``-pixel images: its position embeddings resized bicubically
    from its token grid to the new one (the class token's row kept), every other weight as it was.

    Why: the detector's tokens follow the model's input size. A larger input gives its
    verification views finer tokens (96 pixels: 12 x 12 instead of 8 x 8) and its one pass too
    (11 frame pixels instead of 16, ``streamdet.detect.onepass.token_px``), which is where a
    96-pixel model's held-out gain and most of its cost are (docs/models.md, "Input at 96
    pixels"). The resized model is then fine-tuned at that size (``train --init ...
    --image-size``).
    """
    vision = model.config.vision_config
    patch, old_grid = vision.patch_size, vision.image_size // vision.patch_size
    grid = image_size // patch
    key = "vision_model.embeddings.position_embedding.weight"
    state = model.state_dict()
    rows = state[key].float()  # (1 + old_grid**2, width)
    cells = rows[1:].reshape(1, old_grid, old_grid, -1).permute(0, 3, 1, 2)
    cells = torch.nn.functional.interpolate(
        cells, size=(grid, grid), mode="bicubic", align_corners=False
    )
    state[key] = torch.cat([rows[:1], cells.permute(0, 2, 3, 1).reshape(grid * grid, -1)])
    state.pop("vision_model.embeddings.position_ids", None)  # a buffer of the new size is made
    config = CLIPConfig.from_dict(model.config.to_dict())
    config.vision_config.image_size = image_size
    resized = CLIPModel(config)
    resized.load_state_dict(state)  # strict: every other weight has the same shape
    return resized


def architecture_of(config: CLIPConfig) -> Architecture:
    """The :class:`Architecture` of a saved model's config (to fine-tune it and save it again)."""
    vision, text = config.vision_config, config.text_config
    return Architecture(
        image_size=vision.image_size,
        patch_size=vision.patch_size,
        vision_width=vision.hidden_size,
        vision_layers=vision.num_hidden_layers,
        vision_heads=vision.num_attention_heads,
        text_width=text.hidden_size,
        text_layers=text.num_hidden_layers,
        text_heads=text.num_attention_heads,
        projection_dim=config.projection_dim,
    )


def build_model(arch: Architecture) -> CLIPModel:
    """A randomly initialised ``CLIPModel`` of ``arch`` (seed torch before calling)."""
    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": arch.text_width,
            "intermediate_size": 4 * arch.text_width,
            "num_hidden_layers": arch.text_layers,
            "num_attention_heads": arch.text_heads,
            "max_position_embeddings": 77,
            "hidden_act": "quick_gelu",
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 49407,
        },
        vision_config={
            "hidden_size": arch.vision_width,
            "intermediate_size": 4 * arch.vision_width,
            "num_hidden_layers": arch.vision_layers,
            "num_attention_heads": arch.vision_heads,
            "image_size": arch.image_size,
            "patch_size": arch.patch_size,
            "hidden_act": "quick_gelu",
        },
        projection_dim=arch.projection_dim,
        logit_scale_init_value=2.6592,
    )
    return CLIPModel(config)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float32 normalised with CLIP's mean and std."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


#: Detector settings shipped with the model in streamdet.json (copied into meta.json "defaults").
#: Chosen on the quality benchmark's frames (seeds 1 and 2, not the reported seed):
#:
#: * the one-pass ``dense`` method (the whole frame through the model once; recipe stage 4 taught
#:   the tokens where objects are), which beat the windows method on AP50 at a tenth of its cost;
#:   its token heatmaps' boxes are cut at 70% of their region's peak (re-chosen for the stage-5
#:   model on seeds 1 and 2: AP50 0.765 and 0.045 false boxes a frame against 0.755 and 0.055
#:   at 60%) and verified by crops
#:   around them: two per box (1.5 and 2 x its longer side), the 2x crops for the strongest boxes
#:   only while a frame's crops stay within 16 (``verify_budget``; a crowded frame costs what one
#:   crop per box cost; two crops for every box is work a moving camera at 30 FPS on two cores
#:   cannot afford: docs/benchmarks.md, "Two crops and their mean"); the box's probability is
#:   the best of its crops (``verify_combine``), and it is kept when 0.5 x the log-odds of its
#:   heatmap peak plus the log-odds of that probability reach those of 0.7 (``verify_trust``,
#:   ``verify_floor``): a box the heatmap is sure of needs less from its crops. Chosen on tuning
#:   seeds 1-4 (every candidate's peak and crops replayed under each rule, at the false boxes
#:   the rule before allowed): AP50 0.882 -> 0.897, 0.033 false boxes a frame both; before it,
#:   the mean of two crops held every box to 0.2 (docs/benchmarks.md, "Trusting sure boxes");
#: * frames longer than 640 pixels seen as if resized to 640 (``max_side``: their tokens grow
#:   with them, 32 pixels at 1280x720), since every other choice was made at 640x360 and its
#:   16-pixel tokens over a larger frame did worse: on the training generator's tuning seeds
#:   1-4 at 1280x720 AP50 0.914 and 0.059 false boxes a frame at 16-pixel tokens, 0.929 and
#:   0.031 at 32-pixel ones (the held-out seeds 0.826 and 0.824, a tie); at 1920x1080 0.876
#:   and 0.050 against 0.926 and 0.029 (docs/benchmarks.md, "Other frame sizes");
#: * for tracking, boxes from 0.4 start and continue tracks (``track_high``; the built-in 0.5
#:   suited the best single crop's confidences, the mean of two runs lower: bench_tracking's
#:   clips, IDF1 0.824 at 0.5, 0.883 at 0.4 and 0.882 at 0.3, one crop 0.877 at 0.5; with the
#:   trust in sure boxes 0.901 at 0.4, 0.911 at 0.3, within that benchmark's noise);
#: * tracked boxes drawn at 0.3 x the track's predicted box + 0.7 x the new box
#:   (``track_smoothing``; the built-in 0.5): once boxes were placed by log-odds the detector's
#:   own boxes were closer, and at 0.5 the smoothed ones lagged them (bench_tracking's videos:
#:   AP50 0.954 untracked, tracked 0.947 at 0.5, 0.952 at 0.4, 0.956 at 0.3, 0.955 at 0.2; IDF1
#:   0.918 / 0.918 / 0.916 / 0.910);
#: * for the windows method (``method="windows"``, ``by_method``): 128-pixel windows (4 cells of
#:   32) plus 64-pixel ones (scale 2) for small objects, fine heatmaps from each window's patch
#:   tokens (8-pixel cells), boxes cut at 95% of their region's peak (the trained patch tokens
#:   make a lone object's heatmap flat at its peak), verification floor 0.1;
#: * for both: windows over the frame edges, refined edges; a candidate threshold of 0.3 for the
#:   windows method, which verification makes safe (without it, a higher threshold was best, with
#:   lower AP50 and more false boxes), and 0.5 ("likelier than the background") for the dense
#:   method: the same AP50 on the training generator's seeds 1 and 2 (0.777 / 0.751 against
#:   0.778 / 0.751 at 0.3) with fewer candidates to verify on real clips;
#: * windows (and dense before the next item): each verified box moved 0.4 of the way towards
#:   the box its crop's patch tokens show (``verify_refine``; stage-6 model, seeds 1 and 2: dense
#:   AP50 0.785 / 0.771 unmoved, 0.855 / 0.808 at 0.4, 0.834 / 0.773 at 0.65; windows 0.739 /
#:   0.689 unmoved, 0.743 / 0.747 at 0.4);
#: * both views' boxes, not the first's alone: half the way towards 0.6 x the first view's box +
#:   0.4 x the second's, unless the second's is over 1.2 x the first's area (a neighbour taken
#:   in) (``verify_refine`` 0.5, ``verify_refine_second`` 0.4; tokens the views have anyway):
#:   on tuning seeds 1-4 AP50 0.897 -> 0.894 (a tie) and AP50:95 0.499 -> 0.521 (every seed);
#:   held-out seeds 0.759 -> 0.771; fresh training seeds 5-8 0.879 -> 0.891; tracking IDF1 the
#:   same (docs/benchmarks.md, "Two crops place a box"); the windows method keeps 0.4 of its
#:   first view's (not measured);
#: * 0.6 of the way, not 0.5, once the views' boxes were read from log-odds rather than
#:   probabilities (``verify.relative_maps``): on tuning seeds 1-4 AP50 0.904 at 0.5, 0.909 at
#:   0.6, 0.903 at 0.7 (0.879 before the log-odds);
#: * not (yet) the 2x crop as a second opinion for unsure boxes (``verify_recheck`` 0.05, rescue
#:   floor 0.4, at most 12 boxes): AP50 +0.016 on seeds 1-4 and on four held-out seeds, but 0.5-2
#:   ms more a frame end to end on the real clips, which leaves the 540p dashcam near 30 FPS
#:   (docs/benchmarks.md, "A second opinion"); an option.
#:
#: docs/models.md has the figures behind these choices.
DETECTOR_DEFAULTS: dict[str, object] = {
    "method": "dense",
    "patch": 32,
    "window": 4,
    "stride": 1,
    "scales": [2],
    "threshold": 0.5,
    "peak_ratio": 0.7,
    "overhang": True,
    "max_side": 640,
    "refine": True,
    "verify": True,
    "verify_floor": 0.7,
    "verify_margins": [1.5, 2.0],
    "verify_combine": "best",
    "verify_budget": 16,
    "verify_trust": 0.5,
    "verify_refine": 0.6,
    "verify_refine_second": 0.4,
    "track_high": 0.4,
    "track_smoothing": 0.3,
    "by_method": {
        "windows": {
            "threshold": 0.3,
            "dense": True,
            "peak_ratio": 0.95,
            "verify_floor": 0.1,
            "verify_margins": [1.5, 2.0],
            "verify_combine": "best",
            "verify_budget": 32,
            "verify_trust": 0.0,
            "verify_refine": 0.4,
            "verify_refine_second": 0.0,
        }
    },
}


def save_model(
    model: CLIPModel,
    out: Path,
    *,
    tokenizer_source: Path,
    arch: Architecture,
    threshold: float | None,
    extra: dict | None = None,
) -> None:
    """Write the HF folder: fp16 safetensors + config, tokenizer, processor config, streamdet.json.

    Written into a sibling temporary folder first and swapped in, so a reader (or a crash during a
    checkpoint) never sees half a model.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    half = CLIPModel(model.config)
    half.load_state_dict(model.state_dict())
    half = half.to(torch.float16)
    half.config.dtype = "float16"
    half.save_pretrained(tmp, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(Path(tokenizer_source) / name, tmp / name)
    CLIPImageProcessor(
        size={"shortest_edge": arch.image_size},
        crop_size={"height": arch.image_size, "width": arch.image_size},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    ).save_pretrained(tmp)
    meta = {
        "background_prompts": list(BACKGROUND_PROMPTS),
        **DETECTOR_DEFAULTS,
        "window_threshold": threshold,  # best-F1 threshold on training-like crops (information)
    }
    (tmp / "streamdet.json").write_text(json.dumps(meta, indent=2) + "\n")
    if extra is not None:
        (tmp / "training.json").write_text(json.dumps(extra, indent=2) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    for f in tmp.iterdir():
        f.replace(out / f.name)
    if extra is None and (out / "training.json").exists():
        (out / "training.json").unlink()
    shutil.rmtree(tmp, ignore_errors=True)


def load_model(folder: Path) -> tuple[CLIPModel, CLIPTokenizerFast]:
    """The model (float32, eval mode) and tokenizer from a saved folder."""
    model = CLIPModel.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = CLIPTokenizerFast.from_pretrained(folder)
    return model, tokenizer


@torch.no_grad()
def text_embeddings(
    model: CLIPModel, tokenizer: CLIPTokenizerFast, texts: list[str]
) -> torch.Tensor:
    """(len(texts), D) unit-norm text embeddings."""
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    emb = model.get_text_features(**tokens)
    emb = getattr(emb, "pooler_output", emb)
    return torch.nn.functional.normalize(emb, dim=-1)


@torch.no_grad()
def image_embeddings(model: CLIPModel, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """(N, D) unit-norm image embeddings of (N, S, S, 3) uint8 RGB crops."""
    out = []
    for i in range(0, len(images), batch):
        emb = model.get_image_features(pixel_values=to_pixels(images[i : i + batch]))
        emb = getattr(emb, "pooler_output", emb)
        out.append(torch.nn.functional.normalize(emb, dim=-1))
    return torch.cat(out)


def zero_shot_accuracy(
    model: CLIPModel, tokenizer: CLIPTokenizerFast, data: SingleObjectSet
) -> dict[str, float]:
    """Top-1 zero-shot accuracy per attribute on single-object crops.

    colour: 8-way over "a <colour> shape" (all crops); shape: 6-way over "a <shape>" (crops of
    shapes); object: 5-way over "a <object>" (crops of objects); combined: 88-way over
    "a <colour> <kind>" (all crops, both right).
    """
    was_training = model.training
    model.eval()
    img = image_embeddings(model, data.images)
    colours, kinds = list(COLOURS), list(KINDS)

    def predict(texts: list[str], rows: np.ndarray) -> np.ndarray:
        txt = text_embeddings(model, tokenizer, texts)
        return (img[torch.from_numpy(rows)] @ txt.T).argmax(1).numpy()

    all_rows = np.arange(len(data.colour))
    shape_rows = np.flatnonzero(data.kind < len(SHAPES))
    object_rows = np.flatnonzero(data.kind >= len(SHAPES))
    colour_pred = predict([Query(colour=c).text for c in colours], all_rows)
    shape_pred = predict([Query(kind=k).text for k in SHAPES], shape_rows)
    object_pred = predict([Query(kind=k).text for k in OBJECTS], object_rows)
    pairs = [(c, k) for c in colours for k in kinds]
    combined_pred = predict([Query(colour=c, kind=k).text for c, k in pairs], all_rows)
    truth = data.colour * len(kinds) + data.kind
    model.train(was_training)
    return {
        "colour": float((colour_pred == data.colour).mean()),
        "shape": float((shape_pred == data.kind[shape_rows]).mean()),
        "object": float((object_pred == data.kind[object_rows] - len(SHAPES)).mean()),
        "combined": float((combined_pred == truth).mean()),
    }


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "Architecture",
    "asdict",
    "build_model",
    "count_parameters",
    "image_embeddings",
    "load_model",
    "resized_input",
    "save_model",
    "text_embeddings",
    "to_pixels",
    "zero_shot_accuracy",
]
