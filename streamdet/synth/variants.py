"""Randomly proportioned kinds for domain-randomised training scenes (issue 18).

The scene generator draws every kind with one geometry (:mod:`streamdet.synth.drawing`); a model
trained on it learns that geometry. :func:`varied_prims` gives one randomly proportioned instance
of a kind in the same primitive format: stars of 5 to 7 points and any inner radius, triangles of
any apex and height, rings and crosses of any thickness, people of other builds (as an option
walking, in trousers), houses of other proportions, trees with other crowns. Used by
:mod:`streamdet.synth.randomise` only.
"""

from __future__ import annotations

import math

import numpy as np

from streamdet.synth.drawing import base_prims, normalise_prims


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _person(rng: np.random.Generator) -> list:
    """A standing person of random build: limb widths, head size, arm and leg spread."""
    leg, arm = rng.uniform(0.06, 0.14), rng.uniform(0.04, 0.1)
    spread, reach = rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.2)
    shoulder, hip = rng.uniform(0.09, 0.16), rng.uniform(0.07, 0.12)
    head = rng.uniform(0.08, 0.14)
    hand_y = rng.uniform(-0.05, 0.12)
    return [
        ("line", (-hip / 2, 0.15), (-hip / 2 - spread, 0.5), leg, "main"),
        ("line", (hip / 2, 0.15), (hip / 2 + spread, 0.5), leg, "main"),
        (
            "poly",
            np.array([[-shoulder, -0.26], [shoulder, -0.26], [hip, 0.18], [-hip, 0.18]]),
            "main",
        ),
        ("line", (-shoulder, -0.22), (-shoulder - reach, hand_y), arm, "main"),
        (
            "line",
            (shoulder, -0.22),
            (shoulder + reach * rng.uniform(0.3, 1.2), hand_y),
            arm,
            "main",
        ),
        ("circle", (0.0, -0.28 - head - 0.01), head, "skin", -1),
    ]


def _dressed_person(rng: np.random.Generator) -> list:
    """A person standing or walking (legs in stride, arms swinging), often in trousers.

    Legs take the ``"legs"`` role (a colour of their own, :func:`streamdet.synth.randomise`'s
    trousers) in :data:`TROUSERS` of the people and arms the ``"skin"`` role in
    :data:`BARE_ARMS`: people in real footage rarely wear one colour head to foot, and a model
    that has only seen one-colour people finds the shirt and boxes the torso alone. (Tried after
    stage 7 and not in the recipe: held-out people did worse, docs/models.md.)
    """
    leg, arm = rng.uniform(0.04, 0.12), rng.uniform(0.03, 0.09)
    shoulder, hip = rng.uniform(0.08, 0.15), rng.uniform(0.06, 0.11)
    head = rng.uniform(0.08, 0.13)
    legs = "legs" if rng.random() < TROUSERS else "main"
    arms = "skin" if rng.random() < BARE_ARMS else "main"
    if rng.random() < 0.6:  # walking: one foot forward, one back, arms swinging the other way
        stride, swing = rng.uniform(0.08, 0.22), rng.uniform(0.05, 0.2)
        feet = ((-stride, 0.5), (stride, 0.5))
        hands = ((swing, rng.uniform(0.0, 0.1)), (-swing, rng.uniform(0.0, 0.1)))
        hips = ((0.0, 0.15), (0.0, 0.15))
        shoulders = ((0.0, -0.22), (0.0, -0.22))
    else:  # standing, facing the camera
        spread, reach = rng.uniform(0.0, 0.1), rng.uniform(0.0, 0.15)
        feet = ((-hip / 2 - spread, 0.5), (hip / 2 + spread, 0.5))
        hand_y = rng.uniform(-0.02, 0.12)
        hands = ((-shoulder - reach, hand_y), (shoulder + reach, hand_y))
        hips = ((-hip / 2, 0.15), (hip / 2, 0.15))
        shoulders = ((-shoulder, -0.22), (shoulder, -0.22))
    prims: list = [("line", h, f, leg, legs) for h, f in zip(hips, feet, strict=True)]
    torso = np.array([[-shoulder, -0.26], [shoulder, -0.26], [hip, 0.18], [-hip, 0.18]])
    prims.append(("poly", torso, "main"))
    prims += [("line", s, h, arm, arms) for s, h in zip(shoulders, hands, strict=True)]
    prims.append(("circle", (0.0, -0.28 - head - 0.01), head, "skin", -1))
    return prims


#: Share of :func:`_dressed_person`'s people whose legs are in a colour of their own (trousers).
TROUSERS = 0.6

#: Share of :func:`_dressed_person`'s people with bare arms (skin-coloured).
BARE_ARMS = 0.3


def _house(rng: np.random.Generator) -> list:
    """A house of random proportions: wall width, roof height and overhang, door, windows."""
    half, wall = rng.uniform(0.3, 0.45), rng.uniform(0.35, 0.6)
    roof, over = rng.uniform(0.2, 0.5), rng.uniform(0.0, 0.1)
    prims = [
        ("poly", np.array([[-half, 0.0], [half, 0.0], [half, wall], [-half, wall]]), "main"),
        ("poly", np.array([[-half - over, 0.02], [0.0, -roof], [half + over, 0.02]]), "roof"),
    ]
    if rng.random() < 0.8:
        dw = rng.uniform(0.06, 0.1)
        prims.append(
            (
                "poly",
                np.array([[-dw, wall * 0.45], [dw, wall * 0.45], [dw, wall], [-dw, wall]]),
                "door",
            )
        )
    if rng.random() < 0.8:
        s = rng.uniform(0.08, 0.14)
        for x in (-half * 0.65, half * 0.65):
            prims.append(
                (
                    "poly",
                    np.array(
                        [
                            [x - s / 2, 0.1],
                            [x + s / 2, 0.1],
                            [x + s / 2, 0.1 + s],
                            [x - s / 2, 0.1 + s],
                        ]
                    ),
                    "glass",
                )
            )
    return prims


def _tree(rng: np.random.Generator) -> list:
    """A tree: the usual round crown, one oval crown, or a conifer; trunk of random width."""
    trunk = rng.uniform(0.04, 0.09)
    prims = [
        (
            "poly",
            np.array([[-trunk, 0.5], [-trunk * 0.8, 0.0], [trunk * 0.8, 0.0], [trunk, 0.5]]),
            "trunk",
        )
    ]
    style = rng.random()
    if style < 0.4:
        return base_prims("tree")
    if style < 0.7:
        r = rng.uniform(0.22, 0.33)
        prims.append(("circle", (0.0, -0.17), r, "main", -1))
        return prims
    width = rng.uniform(0.25, 0.4)
    for level in range(int(rng.integers(1, 4))):
        top = -0.5 + level * 0.15
        prims.append(
            ("poly", np.array([[0.0, top], [width, top + 0.45], [-width, top + 0.45]]), "main")
        )
    return prims


def _wide_shape(rng: np.random.Generator, kind: str) -> list | None:
    """A shape from wider proportions than :func:`varied_prims`' own (``wide``): stars of 5 to 8
    points, rounded squares, flatter and taller triangles, crosses with thin or chunky arms and
    with the bar off centre (a Latin cross). ``None`` for the kinds it leaves alone."""
    if kind == "star":
        points = int(rng.integers(5, 9))
        return [("poly", _star(points, 0.5, 0.5 * rng.uniform(0.25, 0.62)), "main")]
    if kind == "cross":
        t = rng.uniform(0.07, 0.28)
        bar = rng.uniform(-0.28, -0.06) if rng.random() < 0.35 else 0.0
        pts = [[-t, -0.5], [t, -0.5], [t, bar - t], [0.5, bar - t], [0.5, bar + t], [t, bar + t]]
        pts += [[t, 0.5], [-t, 0.5], [-t, bar + t], [-0.5, bar + t], [-0.5, bar - t], [-t, bar - t]]
        return [("poly", np.array(pts), "main")]
    if kind == "square" and rng.random() < 0.5:
        r = rng.uniform(0.04, 0.18)
        turns = np.linspace(0.0, math.pi / 2, 5)
        pts = []
        for (cx, cy), start in zip(
            [(0.5 - r, -0.5 + r), (0.5 - r, 0.5 - r), (-0.5 + r, 0.5 - r), (-0.5 + r, -0.5 + r)],
            [-math.pi / 2, 0.0, math.pi / 2, math.pi],
            strict=True,
        ):
            pts += [[cx + r * math.cos(start + a), cy + r * math.sin(start + a)] for a in turns]
        return [("poly", np.array(pts), "main")]
    if kind == "triangle":
        apex, height = rng.uniform(-0.45, 0.45), rng.uniform(0.5, 1.2)
        return [
            ("poly", np.array([[apex, -height / 2], [0.5, height / 2], [-0.5, height / 2]]), "main")
        ]
    return None


def varied_prims(
    rng: np.random.Generator, kind: str, *, wide: bool = False, people: bool = False
) -> tuple:
    """Unit primitives (as :func:`streamdet.synth.drawing.normalise_prims` makes them) of one
    randomly proportioned instance of ``kind``. With ``wide`` the shapes come from wider
    proportions (:func:`_wide_shape`; tried after stage 6, not in the recipe); with ``people``
    people are walking or standing and dressed (:func:`_dressed_person`). Without them no random
    number is drawn for them, so earlier stages' scenes are unchanged."""
    if people and kind == "person":
        return normalise_prims(_dressed_person(rng))
    shape = _wide_shape(rng, kind) if wide else None
    if shape is not None:
        return normalise_prims(shape)
    if kind == "ring":
        thick = rng.uniform(0.08, 0.26)
        prims = [("circle", (0.0, 0.0), 0.5 - thick / 2, "main", thick)]
    elif kind == "triangle":
        apex, height = rng.uniform(-0.35, 0.35), rng.uniform(0.6, 1.1)
        prims = [
            ("poly", np.array([[apex, -height / 2], [0.5, height / 2], [-0.5, height / 2]]), "main")
        ]
    elif kind == "star":
        points = int(rng.choice([5, 5, 5, 6, 7]))
        prims = [("poly", _star(points, 0.5, 0.5 * rng.uniform(0.3, 0.58)), "main")]
    elif kind == "cross":
        t = rng.uniform(0.1, 0.26)
        pts = [[-t, -0.5], [t, -0.5], [t, -t], [0.5, -t], [0.5, t], [t, t], [t, 0.5], [-t, 0.5]]
        pts += [[-t, t], [-0.5, t], [-0.5, -t], [-t, -t]]
        prims = [("poly", np.array(pts), "main")]
    elif kind == "person":
        prims = _person(rng)
    elif kind == "house":
        prims = _house(rng)
    elif kind == "tree":
        prims = _tree(rng)
    else:
        prims = base_prims(kind)
    return normalise_prims(prims)


__all__ = ["varied_prims"]
