"""Training crops and their labels: a caption is true only where its object is clearly shown."""

from __future__ import annotations

import numpy as np

from streamdet.synth.data import (
    IGNORE,
    TRUE,
    CaptionTable,
    caption_set,
    label_crop,
    label_patches,
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


def test_patch_labels_follow_the_pixels_of_each_object() -> None:
    owner = np.full((64, 64), -1, dtype=np.int8)
    owner[8:40, 8:40] = 0  # the red circle's pixels (a 32 px block: 4 x 4 patches of 8 px)
    owner[40:44, 8:40] = 0  # a thin rim: half of each patch row below is covered
    labels = label_patches(TABLE, RED_CIRCLE, owner, 8)
    red_circle = labels[:, :, TABLE.texts.index("a red circle")]
    assert (red_circle[1:5, 1:5] == TRUE).all()  # covered patches
    assert (red_circle[5, 1:5] == TRUE).all()  # exactly half covered counts as shown
    assert red_circle[0, 0] == 0 and red_circle[7, 7] == 0  # background patches
    assert (labels[1:5, 1:5, TABLE.texts.index("a blue circle")] == 0).all()  # wrong colour
    assert (labels[1:5, 1:5, TABLE.texts.index("a red square")] == 0).all()  # wrong shape
    assert (labels[:, :, TABLE.texts.index("a small red circle")] == IGNORE).all()  # sized
    owner[41:44, 8:40] = -1  # now a sliver: 1 of 8 rows covered, neither shown nor absent
    edge = label_patches(TABLE, RED_CIRCLE, owner, 8)[:, :, TABLE.texts.index("a circle")]
    assert (edge[5, 1:5] == IGNORE).all()


def test_make_batch_with_patch_labels() -> None:
    batch = make_batch(np.random.default_rng(1), TABLE, 32, image_size=32, patch_grid=4)
    assert batch.patches is not None and batch.patches.shape == (32, 4, 4, len(TABLE.texts))
    shown = (batch.patches == TRUE).any(axis=(1, 2))  # (N, C): captions shown somewhere
    # a caption true of the whole crop is shown on some patch of it
    assert (shown | (batch.labels != TRUE)).mean() > 0.95
    assert (batch.patches == 0).any()
    assert make_batch(np.random.default_rng(1), TABLE, 4, image_size=32).patches is None
