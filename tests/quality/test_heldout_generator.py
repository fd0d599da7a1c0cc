"""The held-out scene generator (``streamdet.quality.heldout``): deterministic, its own shades and
geometry, true boxes on the drawn pixels, hidden targets ignored, never imported by training."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import streamdet.synth
from streamdet.quality.dataset import FRAME_KINDS
from streamdet.quality.heldout import build_heldout_dataset
from streamdet.quality.heldout.build import ground_truth
from streamdet.quality.heldout.colours import (
    SHADES,
    is_named,
    margin,
    sample_shade,
    training_rgb,
)
from streamdet.quality.heldout.frames import make_heldout_scene
from streamdet.quality.heldout.raster import Pose
from streamdet.quality.heldout.scenes import MAX_OCCLUDED, Item, Look, render
from streamdet.quality.heldout.shapes import aspect, make_kind, star_inner_ratio
from streamdet.synth.vocabulary import KINDS, SHAPES, parse_prompt

REPO = Path(__file__).resolve().parents[2]
SETS = {"s": ("a red circle", "a small blue star", "a person")}


def flat(h: int = 120, w: int = 200, value: float = 90.0) -> np.ndarray:
    return np.full((h, w, 3), value, np.float32)


def plain_item(kind: str, center, extent: float, seed: int = 0, angle: float = 0.0) -> Item:
    """An object of one flat colour (no shading, no texture), so its pixels are measurable."""
    rng = np.random.default_rng(seed)
    colour = np.array([230.0, 30.0, 30.0], np.float32)
    roles = ("main", "shade", "tyre", "hub", "glass", "skin", "trunk", "door", "roof", "legs")
    look = Look(make_kind(rng, kind), dict.fromkeys(roles, colour))
    return Item(kind, "red", "large", Pose(center, extent, angle), look)


def test_frames_are_deterministic_per_seed_and_differ_between_seeds():
    kwargs = dict(frames_per_kind=1, videos_per_set=1, video_frames=3, height=96, width=160)
    a = build_heldout_dataset(SETS, seed=7, **kwargs)
    b = build_heldout_dataset(SETS, seed=7, **kwargs)
    c = build_heldout_dataset(SETS, seed=8, **kwargs)
    assert a.truths == b.truths and a.tracks == b.tracks
    assert all(np.array_equal(a.images[i], b.images[i]) for i in a.images)
    assert any(not np.array_equal(a.images[i], c.images[i]) for i in a.images)
    assert len(a.stills) == 3 * len(FRAME_KINDS) and len(a.videos) == 3
    assert all(
        a.images[i].shape == (96, 160, 3) and a.images[i].dtype == np.uint8 for i in a.images
    )
    assert set(a.scenes) == {f.image_id for f in a.stills}
    assert a.notes["generator"] == "heldout"


def test_frame_kinds_hold_their_target_or_none_of_the_prompts():
    prompts = SETS["s"]
    for p, target in enumerate(prompts):
        for k, kind in enumerate(FRAME_KINDS):
            rng = np.random.default_rng([3, p, k])
            scene = make_heldout_scene(rng, kind, target, prompts, 180, 320)
            truths = ground_truth(1, scene, prompts)
            if kind == "negative":
                assert not truths
            else:
                assert any(t.prompt == target for t in truths)
            if kind == "edge":  # the target crosses the frame edge, mostly inside
                q = parse_prompt(target)
                shares = [
                    o.visible
                    for o in scene.objects
                    if q.matches_attributes(o.kind, o.colour, o.size)
                ]
                assert any(0.45 <= v < 1.0 for v in shares), shares


def test_true_box_is_the_box_of_the_drawn_pixels():
    bg = flat()
    for n, kind in enumerate(KINDS):
        item = plain_item(kind, (97.3, 61.7), 70.0, seed=n, angle=17.0 * n)
        scene = render(bg, "flat", [item])
        (obj,) = scene.objects
        change = np.abs(scene.image - bg).max(axis=2)
        if kind in SHAPES:  # one colour: half the colour step is the mask's coverage rule
            strong = change >= 0.5 * 140.0 - 1e-3
            rows, cols = np.flatnonzero(strong.any(1)), np.flatnonzero(strong.any(0))
            assert obj.box == (cols[0], rows[0], cols[-1] + 1.0, rows[-1] + 1.0), kind
        # every touched pixel lies in the box or its anti-aliased rim (sharp tips fade over a
        # few pixels below half coverage); the box never reaches past the touched pixels
        touched = change > 0
        rows, cols = np.flatnonzero(touched.any(1)), np.flatnonzero(touched.any(0))
        x1, y1, x2, y2 = obj.box
        assert cols[0] <= x1 <= cols[0] + 3 and rows[0] <= y1 <= rows[0] + 3, kind
        assert cols[-1] - 2 <= x2 <= cols[-1] + 1 and rows[-1] - 2 <= y2 <= rows[-1] + 1, kind
        assert not obj.ignore and obj.visible == 1.0 and obj.occluded == 0.0


def test_an_object_across_the_edge_has_its_full_box_outside_and_a_visible_share():
    scene = render(flat(), "flat", [plain_item("square", (10.0, 60.0), 60.0)])
    (obj,) = scene.objects
    assert obj.full_box[0] < 0 and obj.box[0] == 0.0
    assert obj.visible == pytest.approx((obj.box[2] - 0) / (obj.full_box[2] - obj.full_box[0]))
    far = render(flat(), "flat", [plain_item("square", (-15.0, 60.0), 60.0)]).objects[0]
    assert far.visible < 0.5 and far.ignore


def test_hidden_targets_are_ignored_and_lightly_covered_ones_keep_their_visible_box():
    target = plain_item("circle", (100.0, 60.0), 80.0)
    wall = plain_item("square", (100.0, 60.0), 70.0)  # covers most of the circle
    wall = Item("occluder", "", "", wall.pose, wall.look)
    (hidden,) = render(flat(), "flat", [target], [wall]).objects
    assert hidden.occluded > MAX_OCCLUDED and hidden.ignore
    (truth,) = ground_truth(1, render(flat(), "flat", [target], [wall]), ["a red circle"])
    assert truth.ignore
    post = plain_item("square", (135.0, 60.0), 30.0)  # clips the right edge of the circle
    post = Item("occluder", "", "", post.pose, post.look)
    (seen,) = render(flat(), "flat", [target], [post]).objects
    assert 0 < seen.occluded <= MAX_OCCLUDED and not seen.ignore
    assert seen.box[2] < render(flat(), "flat", [target]).objects[0].box[2]


def test_shades_are_named_distinct_and_away_from_the_training_palette():
    rng = np.random.default_rng(0)
    for name in SHADES:
        for _ in range(100):
            rgb = sample_shade(rng, name)
            assert is_named(rgb, name)
            assert not any(is_named(rgb, other) for other in SHADES if other != name), name
            assert np.abs(rgb - training_rgb(name)).max() > margin(name) >= 16


def test_shape_geometry_differs_from_the_training_generator():
    rng = np.random.default_rng(1)
    for _ in range(50):
        # training: five points at inner radius 0.42; equilateral triangles (height 0.866 of base)
        ratio = star_inner_ratio(make_kind(rng, "star"))
        assert not 0.38 <= ratio <= 0.46
        w, h = aspect(make_kind(rng, "triangle"))
        assert not 0.8 <= h / w <= 0.93 and h / w < 1.15
        for kind in KINDS:
            assert max(aspect(make_kind(rng, kind))) == pytest.approx(1.0)


def test_training_code_never_imports_the_held_out_generator():
    modules = [m.name for m in pkgutil.iter_modules(streamdet.synth.__path__)]
    for name in modules:
        source = (Path(streamdet.synth.__path__[0]) / f"{name}.py").read_text(encoding="utf-8")
        assert "heldout" not in source and "streamdet.quality" not in source, name
    imports = "; ".join(f"import streamdet.synth.{m}" for m in modules)
    code = f"{imports}; import sys; print([m for m in sys.modules if 'heldout' in m])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
