"""Training and evaluation data for the built-in CLIP: detector-like crops of synthetic scenes,
with the captions that are true, false or unknowable for each.

The detector scores square windows of a frame, so the model is trained on square crops of random
scenes: around one object (whole or cut), around several, or anywhere (often nothing). A caption
is true for a crop when an object it describes is clearly in it (most of the object inside, and
the object not lost in a large crop), false when no object it describes is even partly there, and
ignored in between, so that the model is never taught a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamdet.synth.crops import PAD_RGB, crop_box, cut, resize_crop, view_box
from streamdet.synth.randomise import PLAIN, Variety, varied_scene
from streamdet.synth.scenes import COLOURS, KINDS, OBJECTS, SHAPES, SIZES, Query, random_scene

# Captions for crops that show none of the vocabulary; the detector's reference prompts.
BACKGROUND_PROMPTS: tuple[str, ...] = ("background", "an empty background", "nothing")

# Labels in a (crops, captions) label matrix.
FALSE, TRUE, IGNORE = 0, 1, -1

# An object counts as shown when this much of its box is in the crop ...
POSITIVE_VISIBLE = 0.6
# ... and its visible part spans at least this fraction of the crop side.
POSITIVE_FILL = 0.2
# It counts as absent when less than this much of its box is in the crop, or it spans less than
# ABSENT_FILL of the crop side, unless it still covers ABSENT_COVER of the crop's area.
ABSENT_VISIBLE = 0.2
ABSENT_FILL = 0.08
ABSENT_COVER = 0.1
# Size words describe how large an object looks in a window: "small" up to SMALL_FILL of the crop
# side, "large" from LARGE_FILL (unknowable in between).
SMALL_FILL = 0.42
LARGE_FILL = 0.55


@dataclass(frozen=True)
class Caption:
    """One training caption and the query that says which objects it describes."""

    text: str
    query: Query


def caption_set() -> tuple[Caption, ...]:
    """Every caption the model is trained on except the background ones, at several granularities.

    "a red circle", "a circle", "a red shape", "a red object", "a small red circle", "a small
    circle", "a small red shape"; every colour, kind and size of the vocabulary.
    """
    queries: list[Query] = []
    for size in (None, *SIZES):
        for colour in (None, *COLOURS):
            for kind in (None, *KINDS):
                if colour is None and kind is None:
                    continue
                queries.append(Query(colour=colour, kind=kind, size=size))
    captions = [Caption(q.text, q) for q in queries]
    # "object" is as generic as "shape"; teach both words for the colour-only captions.
    for colour in COLOURS:
        q = Query(colour=colour)
        captions.append(Caption(q.text.replace(" shape", " object"), q))
    return tuple(captions)


@dataclass(frozen=True)
class CaptionTable:
    """Captions as parallel index arrays (-1 = any), for vectorised labelling."""

    texts: tuple[str, ...]
    colour: np.ndarray  # (C,) int
    kind: np.ndarray  # (C,) int
    size: np.ndarray  # (C,) int

    @classmethod
    def build(cls, captions: tuple[Caption, ...]) -> CaptionTable:
        colours, sizes = list(COLOURS), list(SIZES)

        def idx(values: list[str], v: str | None) -> int:
            return -1 if v is None else values.index(v)

        return cls(
            texts=tuple(c.text for c in captions),
            colour=np.array([idx(colours, c.query.colour) for c in captions]),
            kind=np.array([idx(list(KINDS), c.query.kind) for c in captions]),
            size=np.array([idx(sizes, c.query.size) for c in captions]),
        )


# A patch shows a caption's object when matching objects cover at least this much of it, and does
# not when they cover at most PATCH_ABSENT (unknowable in between: the object's anti-aliased rim).
PATCH_SHOWN = 0.5
PATCH_ABSENT = 0.1


@dataclass(frozen=True)
class Batch:
    """Crops (N, S, S, 3) uint8 RGB and labels (N, C) int8 for the captions, plus (N,) int8 for
    "background" (TRUE: nothing there, FALSE: something there, IGNORE: unknowable).

    ``patches`` (N, g, g, C) int8, when asked for: per patch of a g x g grid over each crop, whether
    an object a caption describes covers it (sized captions IGNORE: size is not a patch's).
    ``cover`` (N, g, g, C) float32, when soft targets are asked for: the share of each patch the
    caption's objects cover (NaN: ignored; :func:`cover_cells`).
    """

    images: np.ndarray
    labels: np.ndarray
    background: np.ndarray
    patches: np.ndarray | None = None
    cover: np.ndarray | None = None


def _doubtful(table: CaptionTable, doubt: np.ndarray | None, n: int) -> np.ndarray:
    """(n, C) bool: captions naming a colour that an object's shade is doubtful between (see
    :class:`streamdet.synth.randomise.VariedScene`; ``doubt`` (n, colours) or None for none)."""
    if doubt is None or n == 0:
        return np.zeros((n, len(table.texts)), dtype=bool)
    named = table.colour >= 0
    return doubt[:, np.maximum(table.colour, 0)] & named[None, :]


def _caption_matches(
    table: CaptionTable, attrs: np.ndarray, doubt: np.ndarray | None = None
) -> np.ndarray:
    """(n, C) bool: which captions each object surely matches by colour and kind (size aside),
    from the objects' (n, 2) colour and kind indices; a caption naming a doubtful colour of an
    object (``doubt``, see :func:`_doubtful`) is no sure match."""
    colour_ok = (table.colour[None, :] < 0) | (table.colour[None, :] == attrs[:, :1])
    kind_ok = (table.kind[None, :] < 0) | (table.kind[None, :] == attrs[:, 1:2])
    return colour_ok & kind_ok & ~_doubtful(table, doubt, len(attrs))


def _possible_matches(
    table: CaptionTable, attrs: np.ndarray, doubt: np.ndarray | None = None
) -> np.ndarray:
    """(n, C) bool: which captions each object may match: surely, or by a doubtful colour."""
    kind_ok = (table.kind[None, :] < 0) | (table.kind[None, :] == attrs[:, 1:2])
    colour_ok = (table.colour[None, :] < 0) | (table.colour[None, :] == attrs[:, :1])
    return kind_ok & (colour_ok | _doubtful(table, doubt, len(attrs)))


def cell_cover(
    table: CaptionTable,
    attrs: np.ndarray,
    owner: np.ndarray,
    rows: int,
    cols: int,
    matches: np.ndarray | None = None,
) -> np.ndarray:
    """(rows, cols, C) float32: the share of each of a ``rows`` x ``cols`` grid of cells over an
    ``owner`` map (object index per pixel, -1 background) that objects matching each caption
    cover (colour and kind; size aside), from the objects' (n, 2) colour and kind indices
    (or the given (n, C) ``matches``)."""
    cover = np.zeros((rows, cols, len(table.texts)), dtype=np.float32)
    if matches is None:
        matches = _caption_matches(table, attrs)
    for j in np.unique(owner):
        if j < 0:
            continue
        mask = (owner == j).astype(np.float32)
        frac = cv2.resize(mask, (cols, rows), interpolation=cv2.INTER_AREA)  # (rows, cols)
        cover[:, :, matches[j]] += frac[:, :, None]
    return np.minimum(cover, 1.0)


def _sure_and_possible(
    table: CaptionTable,
    attrs: np.ndarray,
    owner: np.ndarray,
    shape: tuple[int, int],
    doubt: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two (rows, cols, C) :func:`cell_cover` maps of a ``shape`` grid: the share sure matches of
    each caption cover, and the share possible ones do (doubtful shades too; the same array
    without ``doubt``)."""
    rows, cols = shape
    sure = cell_cover(table, attrs, owner, rows, cols, _caption_matches(table, attrs, doubt))
    if doubt is None:
        return sure, sure
    return sure, cell_cover(table, attrs, owner, rows, cols, _possible_matches(table, attrs, doubt))


def label_cells(
    table: CaptionTable,
    attrs: np.ndarray,
    owner: np.ndarray,
    rows: int,
    cols: int,
    doubt: np.ndarray | None = None,
) -> np.ndarray:
    """(rows, cols, C) labels for a ``rows`` x ``cols`` grid of cells over an ``owner`` map
    (object index per pixel, -1 background) from the objects' (n, 2) colour and kind indices.

    A caption is TRUE for a cell its matching objects cover at least ``PATCH_SHOWN`` of, FALSE
    where they cover at most ``PATCH_ABSENT`` (background cells are FALSE for every caption) and
    IGNORE in between (object borders, partly covered cells); sized captions are IGNORE, size is
    not a cell's. Shared by the crops' patches and the whole frames' tokens. With ``doubt``
    (objects' doubtful colours, randomised scenes) a caption is TRUE only where sure matches
    cover the cell and FALSE only where possible ones do not.
    """
    cover, possible = _sure_and_possible(table, attrs, owner, (rows, cols), doubt)
    labels = np.full(cover.shape, IGNORE, dtype=np.int8)
    unsized = table.size < 0
    labels[(cover >= PATCH_SHOWN) & unsized] = TRUE
    labels[(possible <= PATCH_ABSENT) & unsized] = FALSE
    return labels


def cover_cells(
    table: CaptionTable,
    attrs: np.ndarray,
    owner: np.ndarray,
    rows: int,
    cols: int,
    doubt: np.ndarray | None = None,
) -> np.ndarray:
    """(rows, cols, C) soft targets for a grid of cells over an ``owner`` map: the share of each
    cell that objects surely matching each caption cover (:func:`cell_cover`), NaN (ignored)
    for sized captions (size is not a cell's) and where objects of a doubtful colour
    (``doubt``, randomised scenes) cover more than ``PATCH_ABSENT`` beyond the sure ones: such a
    cell's share is unknowable, as its hard label is (:func:`label_cells`)."""
    cover, possible = _sure_and_possible(table, attrs, owner, (rows, cols), doubt)
    cover = cover.copy()  # ``possible`` may be the same array
    cover[possible - cover > PATCH_ABSENT] = np.nan
    cover[..., table.size >= 0] = np.nan
    return cover


def label_patches(
    table: CaptionTable,
    attrs: np.ndarray,
    owner: np.ndarray,
    grid: int,
    doubt: np.ndarray | None = None,
) -> np.ndarray:
    """(grid, grid, C) labels for the patches of one crop from its ``owner`` map (side x side int8
    object index per pixel, -1 background) and the objects' (n, 2) colour and kind indices."""
    return label_cells(table, attrs, owner, grid, grid, doubt)


def _object_status(
    full: np.ndarray,
    crop: tuple[int, int, int],
    frame: tuple[int, int] | None = None,
    positive_visible: float = POSITIVE_VISIBLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Per object (rows of ``full``, unclipped xyxy boxes): status TRUE/FALSE/IGNORE for "shown
    in the crop", and apparent size index (0 small, 1 large, -1 unknowable). ``frame`` (h, w)
    bounds what a crop reaching past the frame's edge shows; ``positive_visible`` is the share
    of an object's box that must show for it to count as shown."""
    x, y, side = crop
    left, top, right, bottom = x, y, x + side, y + side
    if frame is not None:
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, frame[1]), min(bottom, frame[0])
    ix = np.clip(np.minimum(full[:, 2], right) - np.maximum(full[:, 0], left), 0, None)
    iy = np.clip(np.minimum(full[:, 3], bottom) - np.maximum(full[:, 1], top), 0, None)
    area = np.maximum((full[:, 2] - full[:, 0]) * (full[:, 3] - full[:, 1]), 1e-6)
    visible = ix * iy / area
    fill = np.maximum(ix, iy) / side
    cover = ix * iy / side**2
    status = np.full(len(full), IGNORE, dtype=np.int8)
    status[(visible >= positive_visible) & (fill >= POSITIVE_FILL)] = TRUE
    absent = ((visible < ABSENT_VISIBLE) | (fill < ABSENT_FILL)) & (cover < ABSENT_COVER)
    status[absent] = FALSE
    size = np.full(len(full), -1, dtype=np.int64)
    size[fill <= SMALL_FILL] = 0
    size[fill >= LARGE_FILL] = 1
    return status, size


def label_crop(
    table: CaptionTable,
    attrs: np.ndarray,
    full: np.ndarray,
    crop: tuple[int, int, int],
    *,
    doubt: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    frame: tuple[int, int] | None = None,
    positive_visible: float = POSITIVE_VISIBLE,
) -> tuple[np.ndarray, int]:
    """Labels (C,) for the captions and the background label of one crop.

    ``attrs`` is (n, 2) colour and kind indices of the scene's objects, ``full`` their (n, 4)
    unclipped boxes. A caption is TRUE if a shown object matches it, else IGNORE if an unclear one
    does, else FALSE. Randomised scenes add ``doubt`` (n, colours: captions naming an object's
    doubtful colours are IGNORE for it) and ``hidden`` (n,: mostly occluded objects are unclear,
    never shown). ``frame`` (h, w) is needed for crops reaching past the frame's edge (only the
    part inside it shows anything); ``positive_visible`` as in :func:`_object_status`.
    """
    labels = np.zeros(len(table.texts), dtype=np.int8)
    if len(full) == 0:
        return labels, TRUE
    status, size = _object_status(full, crop, frame, positive_visible)
    if hidden is not None:
        status[(status == TRUE) & hidden] = IGNORE
    match = _caption_matches(table, attrs, doubt)  # (n, C)
    possible = _possible_matches(table, attrs, doubt) & ~match
    sized = table.size[None, :] >= 0
    size_known = size[:, None] >= 0
    size_ok = ~sized | (size[:, None] == table.size[None, :])
    shown = status[:, None] == TRUE
    unclear = status[:, None] == IGNORE
    true = (match & shown & size_ok & (~sized | size_known)).any(0)
    doubtful = (match & (unclear | (shown & sized & ~size_known))).any(0)
    doubtful |= (possible & (shown | unclear)).any(0)
    labels[doubtful] = IGNORE
    labels[true] = TRUE
    if (status == TRUE).any():
        background = FALSE
    elif (status == IGNORE).any():
        background = IGNORE
    else:
        background = TRUE
    return labels, background


def make_batch(
    rng: np.random.Generator,
    table: CaptionTable,
    n_crops: int,
    *,
    image_size: int = 64,
    crops_per_scene: int = 4,
    scene_size: tuple[int, int] = (240, 400),
    easy_fraction: float = 0.0,
    patch_grid: int = 0,
    randomise: float = 0.0,
    verify_crops: float = 0.0,
    pad_views: bool = False,
    positive_visible: float = POSITIVE_VISIBLE,
    variety: Variety = PLAIN,
    soft_patches: bool = False,
) -> Batch:
    """``n_crops`` labelled crops from fresh random scenes, ``crops_per_scene`` from each.

    A share ``easy_fraction`` of the scenes are easy: one or two objects, whole, apart, on plain,
    gradient or noise backgrounds, each cropped tightly. A curriculum that starts easy lets the
    model find shape before it must find it in clutter (from scratch on hard crops it learnt
    colour only). ``patch_grid`` > 0 adds per-patch labels on that grid (see :class:`Batch`).
    A share ``randomise`` of the other scenes are domain-randomised
    (:func:`streamdet.synth.randomise.varied_scene`: other shades, proportions, styles,
    backgrounds, occluders, hard negatives, camera effects); at 0 the batch is what it always was.
    A share ``verify_crops`` of the randomised scenes' crops are verification views
    (:func:`~streamdet.synth.crops.view_box`: centred on one object at 1.5x or 2x its longer
    side), the crops whose global embedding decides whether a detector's box is kept; at 0 (the
    default, and recipe stage 5) no random number is drawn for it, so earlier stages' batches
    are unchanged.
    With ``pad_views`` a view of an object at the frame's edge stays centred on it and shows
    the model's mean colour past the edge, as verification's views do (else it moves inside the
    frame); ``positive_visible`` is the share of an object's box a crop must show for the object
    to count as shown (:data:`POSITIVE_VISIBLE`; the quality benchmarks require objects half in
    the frame, so a view of one cut at half its size should say it is there); ``variety`` what
    else the randomised scenes draw (:class:`~streamdet.synth.randomise.Variety`).
    ``soft_patches`` (with ``patch_grid``) adds each patch's cover per caption (:func:`cover_cells`,
    the soft targets of ``--patch-soft``); it draws no random number.
    """
    colours, kinds = list(COLOURS), list(KINDS)
    images = np.empty((n_crops, image_size, image_size, 3), dtype=np.uint8)
    labels = np.empty((n_crops, len(table.texts)), dtype=np.int8)
    background = np.empty(n_crops, dtype=np.int8)
    patches = (
        np.empty((n_crops, patch_grid, patch_grid, len(table.texts)), dtype=np.int8)
        if patch_grid > 0
        else None
    )
    cover = (
        np.empty((n_crops, patch_grid, patch_grid, len(table.texts)), dtype=np.float32)
        if patch_grid > 0 and soft_patches
        else None
    )
    i = 0
    while i < n_crops:
        h, w = (int(v) for v in rng.integers(scene_size[0], scene_size[1] + 1, size=2))
        easy = bool(rng.random() < easy_fraction)
        doubt = hidden = None
        if not easy and randomise > 0 and rng.random() < randomise:
            varied = varied_scene(rng, h, w, variety=variety)
            scene, doubt, hidden = varied.scene, varied.doubt, varied.hidden
        elif easy:
            scene = random_scene(
                rng,
                h,
                w,
                n_objects=(1, 2),
                max_overlap=0.0,
                edge_probability=0.0,
                background=str(rng.choice(["flat", "gradient", "noise"])),
            )
        else:
            scene = random_scene(rng, h, w, n_objects=(0, 5), max_overlap=0.15)
        rgb = cv2.cvtColor(scene.image, cv2.COLOR_BGR2RGB)
        attrs = np.array([[colours.index(o.colour), kinds.index(o.kind)] for o in scene.objects])
        full = np.array([o.full_box for o in scene.objects], dtype=np.float64).reshape(-1, 4)
        boxes = np.array([o.box for o in scene.objects], dtype=np.float64).reshape(-1, 4)
        boxes = boxes[(boxes[:, 2] - boxes[:, 0] > 2) & (boxes[:, 3] - boxes[:, 1] > 2)]
        views = verify_crops if doubt is not None and len(boxes) else 0.0
        for _ in range(min(crops_per_scene, n_crops - i)):
            if views > 0 and rng.random() < views:
                x, y, side = view_box(rng, h, w, boxes, pad=pad_views)
            else:
                x, y, side = crop_box(rng, h, w, boxes, easy=easy)
            images[i] = resize_crop(rng, cut(rgb, (x, y, side), PAD_RGB), image_size)
            labels[i], background[i] = label_crop(
                table,
                attrs.reshape(-1, 2),
                full,
                (x, y, side),
                doubt=doubt,
                hidden=hidden,
                frame=(h, w),
                positive_visible=positive_visible,
            )
            if patches is not None:
                owner = cut(scene.owner, (x, y, side), -1)  # type: ignore[arg-type]
                patches[i] = label_patches(table, attrs.reshape(-1, 2), owner, patch_grid, doubt)
                if cover is not None:
                    cover[i] = cover_cells(
                        table, attrs.reshape(-1, 2), owner, patch_grid, patch_grid, doubt
                    )
            i += 1
    return Batch(images=images, labels=labels, background=background, patches=patches, cover=cover)


@dataclass(frozen=True)
class SingleObjectSet:
    """Crops each showing one whole object, with its attribute indices, for zero-shot accuracy."""

    images: np.ndarray  # (N, S, S, 3) uint8 RGB
    colour: np.ndarray  # (N,) index into COLOURS
    kind: np.ndarray  # (N,) index into KINDS


def single_object_crops(
    rng: np.random.Generator, n: int, *, image_size: int = 64, height: int = 360, width: int = 640
) -> SingleObjectSet:
    """``n`` crops of fresh scenes, each around one whole object (1.3x to 3x its size), balanced
    over kinds and colours; other objects are kept out of the crop."""
    colours, kinds = list(COLOURS), list(KINDS)
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    colour_idx = np.empty(n, dtype=np.int64)
    kind_idx = np.empty(n, dtype=np.int64)
    for i in range(n):
        kind, colour = kinds[i % len(kinds)], colours[(i // len(kinds)) % len(colours)]
        scene = random_scene(
            rng, height, width, n_objects=0, include=[f"{colour} {kind}"], edge_probability=0.0
        )
        b = scene.objects[0].box
        extent = max(b[2] - b[0], b[3] - b[1])
        side = round(min(extent * rng.uniform(1.3, 3.0), height))
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x = round(min(max(cx - side / 2, 0), width - side))
        y = round(min(max(cy - side / 2, 0), height - side))
        crop = scene.image[y : y + side, x : x + side, ::-1]
        images[i] = cv2.resize(crop, (image_size, image_size), interpolation=cv2.INTER_AREA)
        colour_idx[i], kind_idx[i] = colours.index(colour), kinds.index(kind)
    return SingleObjectSet(images=images, colour=colour_idx, kind=kind_idx)


__all__ = [
    "BACKGROUND_PROMPTS",
    "OBJECTS",
    "SHAPES",
    "Batch",
    "Caption",
    "CaptionTable",
    "SingleObjectSet",
    "caption_set",
    "cell_cover",
    "cover_cells",
    "label_cells",
    "label_crop",
    "label_patches",
    "make_batch",
    "single_object_crops",
]
