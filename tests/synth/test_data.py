"""Training crops and their labels: a caption is true only where its object is clearly shown."""

from __future__ import annotations

import numpy as np

from streamdet.synth.data import (
    IGNORE,
    TRUE,
    CaptionTable,
    caption_set,
    label_crop,
    make_batch,
    single_object_crops,
)
from streamdet.synth.scenes import COLOURS, KINDS

TABLE = CaptionTable.build(caption_set())
RED_CIRCLE = np.array([[list(COLOURS).index("red"), KINDS.index("circle")]])
BOX = np.array([[100.0, 100.0, 140.0, 140.0]])


def _label(text: str, labels: np.ndarray) -> int:
    return int(labels[TABLE.texts.index(text)])


def test_caption_set_covers_the_phrasings() -> None:
    texts = set(TABLE.texts)
    for text in ("a red circle", "a circle", "a red shape", "a red object", "a small red circle"):
        assert text in texts
    assert "an orange car" in texts
    assert len(texts) == len(TABLE.texts)


def test_whole_object_makes_its_captions_true() -> None:
    labels, background = label_crop(TABLE, RED_CIRCLE, BOX, (90, 90, 60))
    for text in ("a red circle", "a circle", "a red shape", "a large red circle"):
        assert _label(text, labels) == TRUE, text
    for text in ("a blue circle", "a red square", "a car", "a small red circle"):
        assert _label(text, labels) == 0, text
    assert background == 0


def test_far_object_makes_everything_false() -> None:
    labels, background = label_crop(TABLE, RED_CIRCLE, BOX, (0, 0, 60))
    assert (labels == 0).all()
    assert background == TRUE


def test_half_shown_object_is_ignored_not_taught() -> None:
    labels, background = label_crop(TABLE, RED_CIRCLE, BOX, (125, 90, 60))
    assert _label("a red circle", labels) == IGNORE
    assert _label("a blue square", labels) == 0
    assert background == IGNORE


def test_make_batch_shapes_and_mix() -> None:
    batch = make_batch(np.random.default_rng(0), TABLE, 64, image_size=32)
    assert batch.images.shape == (64, 32, 32, 3)
    assert batch.labels.shape == (64, len(TABLE.texts))
    assert (batch.background == TRUE).any() and (batch.background == 0).any()
    assert (batch.labels == TRUE).any(axis=1).mean() > 0.3


def test_single_object_crops_are_balanced() -> None:
    data = single_object_crops(np.random.default_rng(0), 88, image_size=32, height=120, width=200)
    assert data.images.shape == (88, 32, 32, 3)
    assert sorted(np.bincount(data.kind).tolist()) == [8] * 11
    assert sorted(np.bincount(data.colour).tolist()) == [11] * 8
