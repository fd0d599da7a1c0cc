"""Domain randomisation for training (issue 18): labels stay true, and nothing else changes."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from streamdet.synth.crops import PAD_RGB, VIEW_MARGINS, cut, view_box
from streamdet.synth.data import (
    FALSE,
    IGNORE,
    TRUE,
    CaptionTable,
    caption_set,
    label_cells,
    label_crop,
    make_batch,
)
from streamdet.synth.randomise import (
    NEIGHBOURS,
    SHADES,
    Variety,
    classify_shade,
    shade,
    varied_scene,
)
from streamdet.synth.scenes import COLOURS, KINDS, random_scene

COLOUR_NAMES = list(COLOURS)


def _hsv(bgr: tuple[int, int, int]) -> tuple[float, float, float]:
    h, s, v = cv2.cvtColor(np.array([[bgr]], np.uint8), cv2.COLOR_BGR2HSV)[0, 0]
    return float(h), float(s) / 255, float(v) / 255


def _inside_safe(name: str, h: float, s: float, v: float, tol: float = 0.0) -> bool:
    """Inside ``name``'s safe ranges, widened by ``tol`` (hue by 50 x ``tol``)."""
    (h0, h1, _, _), (s0, s1, _, _), (v0, v1, _, _) = SHADES[name]
    h0, h1 = h0 - 50 * tol, h1 + 50 * tol
    hue_ok = name in ("white", "black") or h0 <= h <= h1 or h0 <= h - 180 <= h1
    return hue_ok and s0 - tol <= s <= s1 + tol and v0 - tol <= v <= v1 + tol


def test_safe_shades_read_as_their_own_name_and_no_other() -> None:
    rng = np.random.default_rng(0)
    clear = doubtful = 0
    for name in COLOUR_NAMES:
        for _ in range(150):
            sh = shade(rng, name)
            h, s, v = _hsv(sh.bgr)
            if sh.doubt:
                doubtful += 1
                assert name in sh.doubt
                assert len(sh.doubt) >= 2 or name in ("white", "black")
                assert sh.doubt <= {name, *NEIGHBOURS[name]}
                continue
            clear += 1
            # the drawn colour (after rounding to 8 bits) is still inside its name's safe
            # ranges, give or take a rounding step, and inside no other name's
            assert _inside_safe(name, h, s, v, tol=0.02), (name, sh.bgr, (h, s, v))
            others = [o for o in COLOUR_NAMES if o != name and _inside_safe(o, h, s, v)]
            assert not others, (name, sh.bgr, others)
    assert clear > 6 * len(COLOUR_NAMES) * 10 and doubtful > 50


def test_margin_shades_are_doubtful_between_the_neighbouring_names() -> None:
    assert classify_shade("red", 0.0, 0.9, 0.9) == frozenset()
    assert classify_shade("red", 7.0, 0.9, 0.9) == {"red", "orange"}
    assert classify_shade("red", -8.0, 0.9, 0.9) == {"red", "purple"}
    assert classify_shade("blue", 110.0, 0.5, 0.9) == {"blue", "black"}
    assert classify_shade("white", 50.0, 0.15, 0.95) == {"white"}
    assert classify_shade("white", 50.0, 0.05, 0.95) == frozenset()


def test_default_off_leaves_the_generator_and_the_crops_as_they_were() -> None:
    """Byte-identical to the generator before randomisation existed (hashes recorded from
    commit 260f3ad): the quality benchmark's train generator must not move."""
    digest = hashlib.sha256()
    for seed in range(6):
        scene = random_scene(np.random.default_rng(seed), 360, 640)
        digest.update(scene.image.tobytes())
        digest.update(scene.owner.tobytes())
    assert digest.hexdigest() == "04078c81dde503bfd047ad4a307d40d887fd9187bf836187472c46079fc2117e"
    table = CaptionTable.build(caption_set())
    batch = make_batch(np.random.default_rng(3), table, 16, patch_grid=8, easy_fraction=0.25)
    data = batch.images.tobytes() + batch.labels.tobytes() + batch.patches.tobytes()
    assert hashlib.sha256(data).hexdigest() == (
        "15331dff53b81c052ecee04de579ae53965979db27207e3daef706951227b154"
    )
    again = make_batch(
        np.random.default_rng(3), table, 16, patch_grid=8, easy_fraction=0.25, randomise=0.0
    )
    assert np.array_equal(again.images, batch.images)


def test_verification_views_off_leave_stage_5_batches_as_they_were() -> None:
    """``verify_crops`` 0 (recipe stage 5) draws the randomised batches of before the option
    existed (hash recorded from commit d08a606), so stage 5 still reproduces the shipped model."""
    table = CaptionTable.build(caption_set())
    batch = make_batch(
        np.random.default_rng(4), table, 16, patch_grid=8, easy_fraction=0.25, randomise=0.8
    )
    data = batch.images.tobytes() + batch.labels.tobytes() + batch.patches.tobytes()
    assert hashlib.sha256(data).hexdigest() == (
        "d51fad82f50ba8c3052b21340d4321130f705bf654017b40b3ba43d9c79cf1c9"
    )


def test_verification_views_are_centred_at_the_verify_margins() -> None:
    boxes = np.array([[100.0, 50.0, 140.0, 70.0]])  # 40 x 20, centre (120, 60)
    sides = set()
    for seed in range(20):
        x, y, side = view_box(np.random.default_rng(seed), 360, 640, boxes)
        assert (x + side / 2, y + side / 2) == pytest.approx((120, 60), abs=0.5)
        sides.add(side)
    assert sides == {round(40 * m) for m in VIEW_MARGINS} == {60, 80}
    # at the frame's edge the view moves inside it rather than hanging over
    x, y, side = view_box(np.random.default_rng(0), 360, 640, np.array([[0.0, 0.0, 30, 30]]))
    assert x == 0 and y == 0 and side in (45, 60)


def test_verification_views_show_their_object() -> None:
    """Every view frames one object whole, so far more crops have a TRUE caption than the
    ordinary mix (a third of which are anywhere, often on nothing)."""
    table = CaptionTable.build(caption_set())

    def shown(views: float) -> float:
        batch = make_batch(np.random.default_rng(5), table, 96, randomise=1.0, verify_crops=views)
        return float((batch.background == FALSE).mean())

    assert shown(1.0) > 0.85 and shown(1.0) > shown(0.0) + 0.1


def _table_index(table: CaptionTable, text: str) -> int:
    return table.texts.index(text)


def test_doubtful_colours_are_ignored_not_guessed() -> None:
    table = CaptionTable.build(caption_set())
    red, orange, blue = (COLOUR_NAMES.index(c) for c in ("red", "orange", "blue"))
    attrs = np.array([[red, KINDS.index("circle")]])
    full = np.array([[40.0, 40.0, 80.0, 80.0]])
    crop = (30, 30, 60)
    doubt = np.zeros((1, len(COLOUR_NAMES)), bool)
    doubt[0, [red, orange]] = True
    plain, _ = label_crop(table, attrs, full, crop)
    labels, background = label_crop(table, attrs, full, crop, doubt=doubt)
    at = {
        t: _table_index(table, t)
        for t in (
            "a red circle",
            "an orange circle",
            "a circle",
            "a blue circle",
            "a red shape",
            "a red square",
        )
    }
    assert plain[at["a red circle"]] == TRUE and plain[at["an orange circle"]] == FALSE
    assert labels[at["a red circle"]] == IGNORE and labels[at["an orange circle"]] == IGNORE
    assert labels[at["a red shape"]] == IGNORE
    assert labels[at["a circle"]] == TRUE  # the kind is still sure
    assert labels[at["a blue circle"]] == FALSE and labels[at["a red square"]] == FALSE
    assert background == FALSE
    # the same for patches: no TRUE or FALSE for the doubtful colours where the object is
    owner = np.full((64, 64), -1, np.int8)
    owner[16:48, 16:48] = 0
    cells = label_cells(table, attrs, owner, 4, 4, doubt)
    assert (cells[1:3, 1:3, at["a red circle"]] == IGNORE).all()
    assert (cells[1:3, 1:3, at["an orange circle"]] == IGNORE).all()
    assert (cells[1:3, 1:3, at["a circle"]] == TRUE).all()
    assert (cells[1:3, 1:3, at["a blue circle"]] == FALSE).all()
    assert (cells[0, 0] == FALSE)[table.size < 0].all()
    assert blue >= 0


def test_hidden_objects_are_never_targets() -> None:
    table = CaptionTable.build(caption_set())
    attrs = np.array([[COLOUR_NAMES.index("green"), KINDS.index("star")]])
    full = np.array([[40.0, 40.0, 80.0, 80.0]])
    labels, background = label_crop(table, attrs, full, (30, 30, 60), hidden=np.array([True]))
    star = _table_index(table, "a green star")
    assert labels[star] == IGNORE and background == IGNORE
    assert labels[_table_index(table, "a red star")] == FALSE


def test_varied_scenes_keep_owner_doubt_and_hidden_consistent() -> None:
    rng = np.random.default_rng(5)
    seen_doubt = seen_hidden = tiny = 0
    for _ in range(12):
        varied = varied_scene(rng, 180, 320)
        scene = varied.scene
        n = len(scene.objects)
        assert scene.image.shape == (180, 320, 3) and scene.image.dtype == np.uint8
        assert varied.doubt.shape == (n, len(COLOUR_NAMES)) and varied.hidden.shape == (n,)
        assert scene.owner.min() >= -1 and scene.owner.max() < max(n, 1)
        for i, obj in enumerate(scene.objects):
            if varied.doubt[i].any():  # a doubtful shade is doubtful about its own name too
                assert varied.doubt[i, COLOUR_NAMES.index(obj.colour)]
                seen_doubt += 1
            shown = int((scene.owner == i).sum())
            if not varied.hidden[i]:
                assert shown > 0
            seen_hidden += int(varied.hidden[i])
            tiny += int(obj.placement.extent <= 32)
    assert seen_doubt > 0 and tiny > 0


def test_randomised_batches_differ_and_stay_labelled() -> None:
    table = CaptionTable.build(caption_set())
    plain = make_batch(np.random.default_rng(1), table, 24, patch_grid=8)
    varied = make_batch(np.random.default_rng(1), table, 24, patch_grid=8, randomise=1.0)
    assert not np.array_equal(plain.images, varied.images)
    assert (varied.labels == TRUE).any() and (varied.labels == FALSE).any()
    assert (varied.patches == TRUE).any()


def test_randomised_frames_carry_labels() -> None:
    pytest.importorskip("torch")
    from streamdet.synth.frames import make_frame_batch

    table = CaptionTable.build(caption_set())
    batch = make_frame_batch(
        np.random.default_rng(2), table, 2, frame_size=(320, 192), randomise=1.0
    )
    assert batch.pixels.shape[0] == 2 and (batch.labels == TRUE).any()


def test_randomised_scenes_soft_targets_ignore_what_hard_labels_ignore() -> None:
    # soft targets (``--patch-soft``, ``--frame-soft``) on randomised scenes: a doubtful colour's
    # captions and sized captions are NaN (ignored), never a guessed share; every hard TRUE is a
    # cover of at least one half, every hard FALSE one of at most a tenth
    pytest.importorskip("torch")
    from streamdet.synth.frames import make_frame_batch

    table = CaptionTable.build(caption_set())
    sized = table.size >= 0
    crops = make_batch(
        np.random.default_rng(3), table, 48, patch_grid=8, randomise=1.0, soft_patches=True
    )
    frames = make_frame_batch(
        np.random.default_rng(3), table, 2, frame_size=(320, 192), soft=True, randomise=1.0
    )
    for labels, cover in ((crops.patches, crops.cover), (frames.labels, frames.cover)):
        assert cover is not None and cover.shape == labels.shape
        assert np.isnan(cover[..., sized]).all() and not np.isnan(cover[..., ~sized]).all()
        known = ~np.isnan(cover)
        assert ((cover[known] >= 0) & (cover[known] <= 1)).all()
        assert (cover[labels == TRUE] >= 0.5).all() and (cover[labels == FALSE] <= 0.1).all()
        edge = known & (cover > 0.1) & (cover < 0.9)
        assert edge.any()  # the edge tokens the soft targets are for
    # a caption's cell ignored by its hard label for a doubtful shade is ignored by the soft one
    doubtful = (crops.patches == IGNORE) & ~sized & np.isnan(crops.cover)
    assert doubtful.any()


def test_soft_patches_draw_no_random_number() -> None:
    # the same seed gives the same crops and hard labels with soft targets or without
    table = CaptionTable.build(caption_set())
    hard = make_batch(np.random.default_rng(4), table, 24, patch_grid=8, randomise=1.0)
    soft = make_batch(
        np.random.default_rng(4), table, 24, patch_grid=8, randomise=1.0, soft_patches=True
    )
    assert hard.cover is None and soft.cover is not None
    assert np.array_equal(hard.images, soft.images) and np.array_equal(hard.patches, soft.patches)


def test_train_rejects_a_randomise_share_outside_0_to_1(capsys) -> None:
    pytest.importorskip("torch")
    from streamdet.synth.train import main as train_main

    with pytest.raises(SystemExit) as stop:
        train_main(["--out", "/nonexistent/x", "--steps", "1", "--randomise", "1.5"])
    assert stop.value.code == 2
    assert "--randomise is a share" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--randomise", "0.8", "--verify-crops", "-0.1"], "--verify-crops is a share"),
        (["--verify-crops", "0.3"], "--verify-crops needs --randomise"),
    ],
)
def test_train_rejects_bad_verification_view_shares(capsys, argv, message) -> None:
    pytest.importorskip("torch")
    from streamdet.synth.train import main as train_main

    with pytest.raises(SystemExit) as stop:
        train_main(["--out", "/nonexistent/x", "--steps", "1", *argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_padded_views_stay_centred_past_the_frame_edge() -> None:
    """``pad_views`` (tried after stage 6): a view of an object at the edge is cut as the detector
    cuts it, centred on the object, the part past the edge in the model's mean colour."""
    boxes = np.array([[0.0, 100.0, 30.0, 130.0]])  # 30 x 30 against the left edge
    x, y, side = view_box(np.random.default_rng(0), 360, 640, boxes, pad=True)
    assert side in (45, 60) and (x + side / 2, y + side / 2) == pytest.approx((15, 115), abs=0.5)
    assert x < 0
    image = np.full((360, 640, 3), 7, np.uint8)
    view = cut(image, (x, y, side), PAD_RGB)
    assert view.shape == (side, side, 3)
    assert (view[:, :-x] == PAD_RGB).all() and (view[:, -x:] == 7).all()
    owner = cut(np.zeros((360, 640), np.int8), (x, y, side), -1)
    assert (owner[:, :-x] == -1).all() and (owner[:, -x:] == 0).all()


def test_padding_shows_nothing_and_half_an_object_can_count() -> None:
    """What lies past the frame's edge is not shown, even inside a padded crop; with
    ``positive_visible`` 0.5 an object half inside the frame is a target, as the quality
    benchmarks count it (at the default 0.6 it is unclear)."""
    table = CaptionTable.build(caption_set())
    attrs = np.array([[COLOUR_NAMES.index("red"), KINDS.index("circle")]])
    full = np.array([[-18.0, 100.0, 22.0, 140.0]])  # 40 x 40, 55% inside the frame
    crop = (-28, 90, 60)  # centred on it, 28 pixels of padding
    circle = _table_index(table, "a red circle")
    unclear, _ = label_crop(table, attrs, full, crop, frame=(360, 640))
    shown, background = label_crop(table, attrs, full, crop, frame=(360, 640), positive_visible=0.5)
    assert unclear[circle] == IGNORE
    assert shown[circle] == TRUE and background == FALSE
    # without the frame, the padding would wrongly count as showing the whole object
    whole, _ = label_crop(table, attrs, full, crop)
    assert whole[circle] == TRUE


def test_stage_7_batches_pad_their_views() -> None:
    table = CaptionTable.build(caption_set())

    def padded(pad: bool) -> int:
        batch = make_batch(
            np.random.default_rng(5), table, 96, randomise=1.0, verify_crops=1.0, pad_views=pad
        )
        corners = batch.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # (N, 4, 3)
        return int((corners == PAD_RGB).all(axis=2).any(axis=1).sum())

    assert padded(True) > 3 and padded(False) == 0


def test_wide_shapes_reach_past_the_default_proportions() -> None:
    """``wide`` (tried after stage 6) draws stars of 5 to 8 points, Latin crosses (the bar off
    centre), rounded squares and flatter or taller triangles; every shape still fills its unit
    box, so it is drawn at the size the scene asked for."""
    from streamdet.synth.variants import varied_prims

    rng = np.random.default_rng(11)
    points, bars, corners, aspects = set(), [], [], []
    for _ in range(120):
        (star,) = varied_prims(rng, "star", wide=True)
        points.add(len(star[1]) // 2)
        (cross,) = varied_prims(rng, "cross", wide=True)
        pts = cross[1]
        arm = pts[np.isclose(np.abs(pts[:, 0]), np.abs(pts[:, 0]).max())]  # the bar's ends
        bars.append(float(arm[:, 1].mean()))
        corners.append(len(varied_prims(rng, "square", wide=True)[0][1]))
        tri = varied_prims(rng, "triangle", wide=True)[0][1]
        aspects.append(float(np.ptp(tri[:, 1]) / np.ptp(tri[:, 0])))
        for prims in (star, cross):
            span = prims[1].max(0) - prims[1].min(0)
            assert span.max() == pytest.approx(1.0)
    assert points == {5, 6, 7, 8}
    assert min(bars) < -0.1 and sum(abs(b) < 1e-9 for b in bars) > 40  # Latin and plain crosses
    assert {4, 20} <= set(corners)  # square corners and rounded ones
    assert min(aspects) < 0.55 and max(aspects) > 1.1
    # the kinds it leaves alone, and wide off: the default proportions, no extra draws
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    for kind in ("ring", "person", "house", "circle"):
        wide = varied_prims(a, kind, wide=True)
        plain = varied_prims(b, kind)
        assert len(wide) == len(plain)
        pairs = zip(wide, plain, strict=True)
        assert all(np.allclose(np.asarray(x[1]), np.asarray(y[1])) for x, y in pairs)


@pytest.mark.parametrize("variety", [Variety(wide_shapes=True), Variety(hard_camera=True)])
def test_variety_batches_differ_and_stay_labelled(variety: Variety) -> None:
    table = CaptionTable.build(caption_set())
    plain = make_batch(np.random.default_rng(6), table, 32, randomise=1.0)
    varied = make_batch(np.random.default_rng(6), table, 32, randomise=1.0, variety=variety)
    assert not np.array_equal(plain.images, varied.images)
    assert (varied.labels == TRUE).sum() > 10
    assert ((varied.labels == TRUE).sum(axis=1) > 0).sum() > 8


@pytest.mark.parametrize(
    "option", ["--wide-shapes", "--varied-occluders", "--varied-people", "--hard-camera"]
)
def test_train_rejects_scene_options_without_randomised_scenes(option: str, capsys) -> None:
    """Options that act on randomised scenes are refused, in one line, when there are none."""
    pytest.importorskip("torch")
    from streamdet.synth.train import main as train_main

    with pytest.raises(SystemExit) as stop:
        train_main(["--out", "/nonexistent/x", "--steps", "1", option])
    assert stop.value.code == 2
    assert f"{option} needs --randomise" in capsys.readouterr().err


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_hard_camera_is_dimmer_and_blurrier_and_spares_small_objects() -> None:
    """``degrade.HARD`` reaches darker and blurrier frames than the recipe's effects from the
    same seeds, and a frame whose smallest object is 12 pixels gets less blur."""
    from streamdet.synth.degrade import HARD, MILD, degrade

    frame = random_scene(np.random.default_rng(3), 180, 320).image
    mild, hard, hard_small = [], [], []
    for seed in range(40):
        mild.append(degrade(np.random.default_rng(seed), frame, camera=MILD))
        hard.append(degrade(np.random.default_rng(seed), frame, camera=HARD))
        hard_small.append(degrade(np.random.default_rng(seed), frame, smallest=12, camera=HARD))
    assert min(f.mean() for f in hard) < min(f.mean() for f in mild) - 5
    assert np.median([_sharpness(f) for f in hard]) < 0.8 * np.median([_sharpness(f) for f in mild])
    assert np.median([_sharpness(f) for f in hard_small]) > np.median([_sharpness(f) for f in hard])
    plain = degrade(np.random.default_rng(0), frame)
    assert np.array_equal(plain, mild[0])  # MILD is the default
