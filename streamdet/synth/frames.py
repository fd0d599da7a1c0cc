"""Whole-frame training data and forward pass for the one-pass ``dense`` method.

The built-in model was first trained on window crops only; run over a whole frame in one pass
(:func:`streamdet.clip.frame_tower.frame_tower`) its patch tokens localised poorly. The scene
generator knows which object every pixel shows, so each token of a whole frame can be labelled
and the tokens taught where objects are (``streamdet.synth.train --frame-weight``):

* :func:`make_frame_batch` renders fresh random scenes like the quality benchmark's (640 x 360,
  now and then another size), turns each into exactly the input the detector feeds the frame
  tower (:meth:`streamdet.detect.onepass.FrameGrid.pixels`: padded to whole cells of ``token_px``
  frame pixels with the mean colour, resized to ``model_patch`` pixels per cell) and labels every
  token with :func:`streamdet.synth.data.label_cells` on the same cells (TRUE for the captions of
  the object that covers it, FALSE on background and padding, IGNORE at borders);
* :func:`frame_token_logits` runs the model over those pixels as the frame tower does, position
  embeddings interpolated bicubically, the same dense last layer
  (:func:`streamdet.clip.frame_tower.dense_last_layer`), but with the model's own patch
  embedding, so every weight, the patch and position embeddings included, gets a gradient (the
  exported tower folds them into constants). A test checks both give the same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from streamdet.clip.frame_tower import dense_last_layer
from streamdet.config import GridConfig
from streamdet.detect.onepass import FrameGrid, token_px
from streamdet.synth.data import CaptionTable, cover_cells, label_cells
from streamdet.synth.model import CLIP_MEAN, CLIP_STD, DETECTOR_DEFAULTS
from streamdet.synth.randomise import PLAIN, Variety, varied_scene
from streamdet.synth.scenes import COLOURS, KINDS, Query, Scene, random_scene

#: The quality benchmark's frame size (width, height); most training frames have it.
FRAME_SIZE = (640, 360)
#: Share of frames drawn at another size (any width 384..800, height 216..480), so that the
#: tokens do not learn one grid's position embeddings only.
OTHER_SIZE_SHARE = 0.25
#: Frame pixels per token and model pixels per patch: the detector's defaults for this model.
TOKEN_PX = 16
MODEL_PATCH = 8


def detector_token_px(image_size: int, model_patch: int = MODEL_PATCH) -> int:
    """Frame pixels per token of the detector's one pass, at the built-in model's settings
    (:data:`streamdet.synth.model.DETECTOR_DEFAULTS`), for a model of ``image_size`` input:
    :data:`TOKEN_PX` (16) at 64 pixels, 11 at 96 (``streamdet.detect.onepass.token_px``).
    Why: a model trained at another input size (``train --image-size``) is run on tokens of
    this size, so its frames are trained on them too."""
    defaults = DETECTOR_DEFAULTS
    grid = GridConfig(patch=int(defaults["patch"]), window=int(defaults["window"]))
    return token_px(grid, image_size, model_patch)


@dataclass(frozen=True)
class FrameBatch:
    """Frames as the frame tower takes them and one label per token and caption.

    ``pixels`` (N, H, W, 3) float32 BGR 0..255, H and W multiples of the model patch; ``labels``
    (N, rows, cols, C) int8 TRUE / FALSE / IGNORE for the captions of the caption table; ``cover``
    (N, rows, cols, C) float32, when asked for, the share of each token the caption's objects
    cover (soft targets: see ``streamdet.synth.train.soft_patch_loss``).
    """

    pixels: np.ndarray
    labels: np.ndarray
    cover: np.ndarray | None = None


def mean_fill() -> tuple[float, float, float]:
    """The model's mean colour in BGR 0..255: what the detector pads frames with."""
    r, g, b = (float(v) * 255.0 for v in CLIP_MEAN)
    return (b, g, r)


def _frame_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """A random scene of one of the quality benchmark's sorts: clutter (often empty of some
    prompt), several copies of one object, or one object among near misses that differ from it
    in colour or in kind only."""
    mode = rng.random()
    if mode < 0.5:
        return random_scene(rng, height, width, n_objects=(0, 5), max_overlap=0.3)
    colours, kinds = list(COLOURS), list(KINDS)
    colour, kind = colours[rng.integers(len(colours))], kinds[rng.integers(len(kinds))]
    target = Query(colour=colour, kind=kind).text
    if mode < 0.7:
        copies = int(rng.integers(2, 4))
        return random_scene(rng, height, width, include=[target] * copies, n_objects=(0, 2))
    other_colour = colours[(colours.index(colour) + rng.integers(1, len(colours))) % len(colours)]
    other_kind = kinds[(kinds.index(kind) + rng.integers(1, len(kinds))) % len(kinds)]
    include = [
        target,
        Query(colour=other_colour, kind=kind).text,
        Query(colour=colour, kind=other_kind).text,
    ]
    return random_scene(rng, height, width, include=include, n_objects=(0, 1))


def _owner_and_attrs(scene: Scene, grid: FrameGrid) -> tuple[np.ndarray, np.ndarray]:
    """The scene's owner map padded to whole cells (padding: background) and its objects' (n, 2)
    colour and kind indices."""
    colours, kinds = list(COLOURS), list(KINDS)
    attrs = np.array(
        [[colours.index(o.colour), kinds.index(o.kind)] for o in scene.objects], dtype=np.int64
    ).reshape(-1, 2)
    owner = np.full((grid.rows * grid.token_px, grid.cols * grid.token_px), -1, dtype=np.int8)
    owner[: grid.frame_h, : grid.frame_w] = scene.owner  # type: ignore[assignment]
    return owner, attrs


def label_frame(
    table: CaptionTable, scene: Scene, grid: FrameGrid, doubt: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols, C) token labels of a rendered scene on ``grid``'s cells; the padding at the
    right and bottom (the detector's mean-colour border) is background. ``doubt``: the objects'
    doubtful colours in a randomised scene (:class:`streamdet.synth.randomise.VariedScene`)."""
    owner, attrs = _owner_and_attrs(scene, grid)
    return label_cells(table, attrs, owner, grid.rows, grid.cols, doubt)


def frame_cover(
    table: CaptionTable, scene: Scene, grid: FrameGrid, doubt: np.ndarray | None = None
) -> np.ndarray:
    """(rows, cols, C) share of each token covered by objects each caption describes (NaN where
    unknowable: sized captions, doubtful colours; ``streamdet.synth.data.cover_cells``)."""
    owner, attrs = _owner_and_attrs(scene, grid)
    return cover_cells(table, attrs, owner, grid.rows, grid.cols, doubt)


def make_frame_batch(
    rng: np.random.Generator,
    table: CaptionTable,
    n_frames: int,
    *,
    token_px: int = TOKEN_PX,
    model_patch: int = MODEL_PATCH,
    frame_size: tuple[int, int] | None = None,
    soft: bool = False,
    randomise: float = 0.0,
    variety: Variety = PLAIN,
) -> FrameBatch:
    """``n_frames`` fresh scenes of one size (``frame_size`` (width, height), else
    :data:`FRAME_SIZE` or, with probability :data:`OTHER_SIZE_SHARE`, a random one) as frame-tower
    input with token labels (and, with ``soft``, each token's cover per caption). A share
    ``randomise`` of them are domain-randomised (:func:`streamdet.synth.randomise.varied_scene`),
    ``variety`` as there."""
    if frame_size is None:
        frame_size = FRAME_SIZE
        if rng.random() < OTHER_SIZE_SHARE:
            frame_size = (int(rng.integers(384, 801)), int(rng.integers(216, 481)))
    width, height = frame_size
    grid = FrameGrid(height, width, token_px, model_patch)
    fill = mean_fill()
    pixels, labels, cover = [], [], []
    for _ in range(n_frames):
        doubt = None
        if randomise > 0 and rng.random() < randomise:
            varied = varied_scene(rng, height, width, variety=variety)
            scene, doubt = varied.scene, varied.doubt
        else:
            scene = _frame_scene(rng, height, width)
        pixels.append(grid.pixels(scene.image, fill))
        labels.append(label_frame(table, scene, grid, doubt))
        if soft:
            cover.append(frame_cover(table, scene, grid, doubt))
    return FrameBatch(
        pixels=np.stack(pixels),
        labels=np.stack(labels),
        cover=np.stack(cover) if soft else None,
    )


def frame_tokens(model: Any, pixels: torch.Tensor, head: str) -> torch.Tensor:
    """(N, H / p, W / p, D) unit patch-token embeddings of (N, H, W, 3) BGR 0..255 frames, as
    :func:`streamdet.clip.frame_tower.frame_tower` computes them, differentiable in every weight."""
    vision = model.vision_model
    embeddings = vision.embeddings
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1) * 255.0
    x = (pixels.flip(-1).permute(0, 3, 1, 2) - mean) / std  # NCHW RGB, normalised
    x = embeddings.patch_embedding(x)  # (N, width, h, w)
    n, width, h, w = x.shape
    tokens = x.flatten(2).transpose(1, 2)  # (N, h*w, width)
    positions = embeddings.position_embedding.weight  # (1 + g*g, width)
    side = round((positions.shape[0] - 1) ** 0.5)
    grid_positions = positions[1:].reshape(1, side, side, width).permute(0, 3, 1, 2)
    pos = F.interpolate(grid_positions, size=(h, w), mode="bicubic", align_corners=False)
    tokens = tokens + pos.reshape(width, h * w).transpose(0, 1)
    first = (embeddings.class_embedding + positions[0]).view(1, 1, width).expand(n, 1, width)
    hidden = vision.pre_layrnorm(torch.cat([first, tokens], dim=1))
    for layer in vision.encoder.layers[:-1]:
        out = layer(hidden, None)
        hidden = out[0] if isinstance(out, tuple) else out
    out = dense_last_layer(torch, vision.encoder.layers[-1], hidden, head, (h, w))
    out = F.normalize(model.visual_projection(vision.post_layernorm(out)), dim=-1)
    return out.reshape(n, h, w, out.shape[-1])


def frame_token_logits(
    model: Any, pixels: np.ndarray, texts: torch.Tensor, scale: torch.Tensor, head: str
) -> torch.Tensor:
    """(N, rows * cols, T) logits of every token of (N, H, W, 3) frames against (T, D) unit
    text embeddings: ``scale`` x cosine, what the detector's calibrated softmax starts from."""
    tokens = frame_tokens(model, torch.from_numpy(pixels), head)
    return scale * tokens.reshape(len(pixels), -1, tokens.shape[-1]) @ texts.T
