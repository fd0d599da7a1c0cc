"""Varied people (issue 18): walking or standing, often in trousers of another colour; the legs
are part of the person's box and labels, and nothing changes when the option is off."""

from __future__ import annotations

import cv2
import numpy as np

from streamdet.synth.data import TRUE, CaptionTable, caption_set, make_batch
from streamdet.synth.drawing import Placement
from streamdet.synth.randomise import Style, Variety, draw_varied, trousers, varied_scene
from streamdet.synth.variants import TROUSERS, varied_prims

RED, BLUE, SKIN = (0, 0, 255), (255, 0, 0), (150, 185, 225)


def _roles(prims: tuple) -> set[str]:
    return {p[-1] if p[0] == "poly" else p[3 if p[0] == "circle" else 4] for p in prims}


def test_dressed_people_wear_trousers_in_about_the_set_share() -> None:
    rng = np.random.default_rng(0)
    dressed = [varied_prims(rng, "person", people=True) for _ in range(300)]
    share = np.mean(["legs" in _roles(p) for p in dressed])
    assert abs(share - TROUSERS) < 0.08
    # without the option no person has a legs role: one colour head to foot, as before
    plain = [varied_prims(rng, "person") for _ in range(50)]
    assert not any("legs" in _roles(p) for p in plain)


def test_the_option_draws_nothing_for_other_kinds() -> None:
    """Other kinds are drawn from the same random numbers with the option on or off."""
    for kind in ("car", "star", "house", "tree"):
        a = varied_prims(np.random.default_rng(4), kind, people=True)
        b = varied_prims(np.random.default_rng(4), kind)
        assert len(a) == len(b)
        for p, q in zip(a, b, strict=True):
            assert p[0] == q[0] and np.allclose(np.asarray(p[1]), np.asarray(q[1]))


def test_trousers_are_inside_the_persons_box_below_the_shirt() -> None:
    """A person in blue trousers and a red shirt: the blue is drawn in the lower half of the box
    the drawing returns (the box the labels use), the red in the upper half."""
    seen = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        prims = varied_prims(rng, "person", people=True)
        if "legs" not in _roles(prims):
            continue
        seen += 1
        image = np.full((200, 200, 3), 128, np.uint8)
        style = Style(
            colours={"main": RED, "legs": BLUE, "skin": SKIN},
            stretch=(1.0, 1.0),
            line_type=cv2.LINE_8,
            outline=None,
            textured=False,
        )
        place = Placement("person", "red", "large", (100.0, 100.0), 120.0)
        x1, y1, x2, y2 = draw_varied(rng, image, place, prims, style)
        ys, xs = np.nonzero((image == BLUE).all(axis=2))
        assert len(ys) > 30
        # (within the pixel or so by which a thick line's ends outgrow its nominal width)
        assert xs.min() >= x1 - 2 and xs.max() <= x2 + 2 and ys.max() <= y2 + 2
        assert ys.mean() > (y1 + y2) / 2
        red_ys = np.nonzero((image == RED).all(axis=2))[0]
        assert red_ys.mean() < ys.mean()
    assert seen > 10


def test_trouser_colours_are_valid_and_varied() -> None:
    rng = np.random.default_rng(1)
    colours = [trousers(rng) for _ in range(100)]
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    assert len(set(colours)) > 50


def test_varied_people_scenes_change_only_with_the_option_and_stay_labelled() -> None:
    a = varied_scene(np.random.default_rng(9), 240, 320)
    b = varied_scene(np.random.default_rng(9), 240, 320, variety=Variety(people=False))
    assert np.array_equal(a.scene.image, b.scene.image)
    table = CaptionTable.build(caption_set())
    # people are about one object in fourteen: enough crops that some scenes hold one
    plain = make_batch(np.random.default_rng(6), table, 128, randomise=1.0)
    varied = make_batch(
        np.random.default_rng(6), table, 128, randomise=1.0, variety=Variety(people=True)
    )
    assert not np.array_equal(plain.images, varied.images)
    assert ((varied.labels == TRUE).sum(axis=1) > 0).sum() > 30
