"""Whole-frame training data and the differentiable frame pass (streamdet.synth.frames)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from streamdet.clip.frame_tower import frame_tower  # noqa: E402
from streamdet.detect.onepass import FrameGrid  # noqa: E402
from streamdet.synth.data import FALSE, IGNORE, TRUE, CaptionTable, caption_set  # noqa: E402
from streamdet.synth.drawing import Placement  # noqa: E402
from streamdet.synth.frames import (  # noqa: E402
    frame_token_logits,
    frame_tokens,
    label_frame,
    make_frame_batch,
    mean_fill,
)
from streamdet.synth.model import CLIP_MEAN, CLIP_STD, build_model  # noqa: E402
from streamdet.synth.scenes import render_scene  # noqa: E402
from streamdet.synth.train import patch_loss  # noqa: E402

TABLE = CaptionTable.build(caption_set())


@pytest.mark.parametrize("head", ["naclip", "maskclip"])
def test_training_pass_gives_the_frame_towers_tokens(head: str, tiny_arch) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_arch).eval()
    for p in model.parameters():  # make the position embeddings matter
        p.data += 0.05 * torch.randn_like(p)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 24, 56, 3)).astype(np.float32)
    tower = frame_tower(torch, model, list(CLIP_MEAN), list(CLIP_STD), head)
    with torch.no_grad():
        expected = tower(torch.from_numpy(pixels))
        got = frame_tokens(model, torch.from_numpy(pixels), head)
    assert got.shape == (2, 3, 7, 16)
    assert torch.allclose(got, expected, atol=1e-5)


def test_training_pass_reaches_the_patch_and_position_embeddings(tiny_arch) -> None:
    model = build_model(tiny_arch)
    pixels = torch.from_numpy(np.full((1, 16, 24, 3), 90.0, np.float32))
    frame_tokens(model, pixels, "naclip")[..., 0].sum().backward()
    embeddings = model.vision_model.embeddings
    assert embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert embeddings.position_embedding.weight.grad.abs().sum() > 0


def test_token_labels_follow_the_objects_pixels() -> None:
    background = np.full((72, 120, 3), 128, np.uint8)  # 5 x 8 tokens of 16 px, 8 px of padding
    circle = Placement("circle", "red", "large", (40.0, 32.0), 36.0, 0.0, False)
    scene = render_scene(background, [circle])
    grid = FrameGrid(72, 120, 16, 8)
    labels = label_frame(TABLE, scene, grid)
    assert labels.shape == (5, 8, len(TABLE.texts))
    red_circle = labels[:, :, TABLE.texts.index("a red circle")]
    assert red_circle[1:3, 2].tolist() == [TRUE, TRUE]  # the circle's middle tokens
    assert red_circle[0, 7] == FALSE and (red_circle[4] == FALSE).all()  # background, padding
    assert (red_circle == IGNORE).any()  # its rim
    assert labels[1, 2, TABLE.texts.index("a red star")] == FALSE  # wrong kind
    assert labels[1, 2, TABLE.texts.index("a blue circle")] == FALSE  # wrong colour
    assert (labels[:, :, TABLE.texts.index("a large red circle")] == IGNORE).all()  # sized


def test_frame_batch_is_what_the_detector_feeds() -> None:
    batch = make_frame_batch(np.random.default_rng(0), TABLE, 3, frame_size=(200, 90))
    grid = FrameGrid(90, 200, 16, 8)
    assert batch.pixels.shape == (3, *grid.input_shape, 3) and batch.pixels.dtype == np.float32
    assert batch.labels.shape == (3, grid.rows, grid.cols, len(TABLE.texts))
    # the bottom padding (6 px of the last 16 px row) is the detector's mean colour
    assert np.allclose(batch.pixels[:, -1, :, :], np.array(mean_fill(), np.float32), atol=1.0)
    assert (batch.labels == TRUE).any() and (batch.labels == FALSE).any()
    sizes = {make_frame_batch(np.random.default_rng(s), TABLE, 1).pixels.shape for s in range(12)}
    assert (1, 184, 320, 3) in sizes and len(sizes) > 1  # mostly 640 x 360, some other sizes


def test_frame_loss_teaches_the_tokens(tiny_arch) -> None:
    from transformers import CLIPTokenizerFast

    from streamdet.synth.logits import texts_and_scale
    from streamdet.synth.train import DEFAULT_TOKENIZER

    if not (DEFAULT_TOKENIZER / "tokenizer.json").is_file():
        pytest.skip("no tokenizer folder")
    torch.manual_seed(0)
    model = build_model(tiny_arch)
    names = ["a red circle", "a blue square", "a car", "background", "an empty background"]
    cols = [TABLE.texts.index(t) for t in names[:3]]
    tokens = dict(CLIPTokenizerFast.from_pretrained(DEFAULT_TOKENIZER)(names, padding=True))
    tokens = {k: torch.tensor(v) for k, v in tokens.items()}
    batch = make_frame_batch(np.random.default_rng(0), TABLE, 4, frame_size=(160, 96))
    labels = torch.from_numpy(batch.labels[..., cols].reshape(4, -1, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        txt, scale = texts_and_scale(model, tokens)
        loss = patch_loss(frame_token_logits(model, batch.pixels, txt, scale, "naclip"), labels, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_soft_token_loss_is_the_patch_loss_away_from_edges() -> None:
    from streamdet.synth.train import soft_patch_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 5)  # 3 captions + 2 backgrounds
    labels = torch.randint(-1, 2, (2, 6, 3), dtype=torch.int8)
    cover = labels.float().masked_fill(labels == IGNORE, float("nan"))
    assert float(soft_patch_loss(logits, cover, 2)) == pytest.approx(
        float(patch_loss(logits, labels, 2)), rel=1e-5
    )


def test_soft_token_loss_wants_an_edge_tokens_score_to_be_its_cover() -> None:
    from streamdet.synth.train import soft_patch_loss

    cover = torch.tensor([[[0.3], [1.0], [0.0], [0.0], [0.0]]])  # 5 tokens, 1 caption
    losses = {}
    for p in (0.1, 0.2, 0.3, 0.4, 0.6, 0.9):  # the edge token's score; the others are right
        z = torch.tensor([np.log(p / (1 - p)), 6.0, -6.0, -6.0, -6.0]).view(1, 5, 1)
        logits = torch.cat([z, torch.zeros(1, 5, 1)], dim=-1)  # one background at logit 0
        losses[p] = float(soft_patch_loss(logits, cover, 1))
    assert min(losses, key=losses.get) == 0.3


def test_frame_batch_cover_is_the_share_of_each_token() -> None:
    batch = make_frame_batch(np.random.default_rng(2), TABLE, 2, frame_size=(200, 90), soft=True)
    assert batch.cover is not None and batch.cover.shape == batch.labels.shape
    sized = TABLE.size >= 0  # size is not a token's: ignored (NaN), as its hard label is
    assert np.isnan(batch.cover[..., sized]).all() and not np.isnan(batch.cover[..., ~sized]).any()
    known = batch.cover[..., ~sized]
    assert (known >= 0).all() and (known <= 1).all()
    assert (batch.cover[batch.labels == TRUE] >= 0.5).all()
    assert (batch.cover[batch.labels == FALSE] <= 0.1).all()
    assert make_frame_batch(np.random.default_rng(2), TABLE, 1, frame_size=(200, 90)).cover is None
