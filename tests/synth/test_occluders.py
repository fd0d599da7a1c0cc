"""Varied occluders (issue 18): they cover part of the object, what they cover is background,
and they change nothing when off."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.synth.data import TRUE, CaptionTable, caption_set, make_batch
from streamdet.synth.occluders import KINDS, occlude
from streamdet.synth.randomise import VARIED_OCCLUDE, Variety, varied_scene


def _canvas() -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    image = np.full((200, 300, 3), 200, np.uint8)
    owner = np.full((200, 300), -1, np.int8)
    box = (100.0, 60.0, 180.0, 140.0)
    image[60:140, 100:180] = (0, 0, 220)
    owner[60:140, 100:180] = 0
    return image, owner, box


@pytest.mark.parametrize("kind", [k for k, _ in KINDS])
def test_every_kind_covers_part_of_the_object_and_marks_it_background(kind: str) -> None:
    covered = []
    for seed in range(8):
        image, owner, box = _canvas()
        before = image.copy()
        occlude(np.random.default_rng(seed), image, owner, box, kind=kind)
        lost = (owner[60:140, 100:180] == -1).mean()
        covered.append(lost)
        # a covered pixel shows the occluder, not the object's red
        hit = owner[60:140, 100:180] == -1
        assert (image[60:140, 100:180][hit] != before[60:140, 100:180][hit]).any(axis=1).all()
        # the owner map is only ever cleared, never given to anything else
        assert set(np.unique(owner)) <= {-1, 0}
    assert max(covered) > 0.03, f"{kind} never covered the object"
    assert min(covered) < 0.9, f"{kind} always hid the whole object"
    assert np.mean(covered) < 0.7


def test_occluders_are_muted_not_object_colours() -> None:
    """Occluders must not look like a target: low saturation, never a vivid red or blue."""
    import cv2

    sats = []
    for seed in range(30):
        image = np.full((120, 120, 3), 128, np.uint8)
        owner = np.zeros((120, 120), np.int8)
        occlude(np.random.default_rng(seed), image, owner, (30.0, 30.0, 90.0, 90.0), kind="rock")
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        hit = owner == -1
        if hit.any():
            sats.append(float(np.median(hsv[..., 1][hit])) / 255)
    assert len(sats) > 20 and max(sats) < 0.6


def test_varied_occluders_are_drawn_in_about_half_the_scenes(monkeypatch) -> None:
    from streamdet.synth import occluders

    calls: list[int] = []

    def counting(*args, **kwargs) -> None:
        calls.append(1)
        occlude(*args, **kwargs)

    monkeypatch.setattr(occluders, "occlude", counting)
    rng = np.random.default_rng(4)
    with_objects = occluded = 0
    for _ in range(200):
        before = len(calls)
        scene = varied_scene(rng, 200, 260, variety=Variety(occluders=True))
        if scene.scene.objects:
            with_objects += 1
            occluded += len(calls) > before
    assert abs(occluded / with_objects - VARIED_OCCLUDE) < 0.1
    # off (the default): never drawn, and the same generator state gives the same scene
    calls.clear()
    a = varied_scene(np.random.default_rng(9), 240, 320)
    b = varied_scene(np.random.default_rng(9), 240, 320, variety=Variety(occluders=False))
    assert not calls and np.array_equal(a.scene.image, b.scene.image)


def test_varied_occluder_batches_differ_and_stay_labelled() -> None:
    table = CaptionTable.build(caption_set())
    plain = make_batch(np.random.default_rng(6), table, 32, randomise=1.0)
    varied = make_batch(
        np.random.default_rng(6), table, 32, randomise=1.0, variety=Variety(occluders=True)
    )
    assert not np.array_equal(plain.images, varied.images)
    assert ((varied.labels == TRUE).sum(axis=1) > 0).sum() > 8


def test_stage_7_batches_stay_as_they_were() -> None:
    """Recipe stage 7's batches (``--randomise 0.9 --verify-crops 0.25 --varied-occluders``) are
    those the shipped model was trained on (hash recorded when it was), so it reproduces."""
    import hashlib

    table = CaptionTable.build(caption_set())
    batch = make_batch(
        np.random.default_rng(5),
        table,
        16,
        patch_grid=8,
        randomise=0.9,
        verify_crops=0.25,
        variety=Variety(occluders=True),
    )
    data = batch.images.tobytes() + batch.labels.tobytes() + batch.patches.tobytes()
    assert hashlib.sha256(data).hexdigest() == (
        "b693190d50f9ec52616abb0ed5064de7ffb4341dbb345082c9d3708647bd9961"
    )
