"""Synthetic scenes with ground truth: coloured shapes and side-view everyday objects on varied
backgrounds.

The generator feeds three consumers: training the built-in CLIP (``streamdet.synth.train``), the
tests, and the detection benchmarks and demo, which need frames whose true boxes are known for any
prompt. Everything is drawn with OpenCV, anti-aliased, in BGR ``uint8`` like the frames streamdet
reads from video. A 640x360 scene takes a few milliseconds.

A scene is described by :class:`Placement` s (what to draw where), rendered by
:func:`render_scene` into a :class:`Scene` whose :class:`SceneObject` s carry the drawn boxes.
:func:`random_scene` picks placements at random (object count, kinds, prompts that must or must not
appear); :func:`moving_video` moves them smoothly over frames. :func:`parse_prompt` turns phrasings
like "a small red circle", "a triangle" or "a green shape" into a :class:`Query` that says which
objects a prompt means.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache

import cv2
import numpy as np

from streamdet.detect.sizes import SIZE_WORDS
from streamdet.errors import PromptError

# Vocabulary colours, as BGR uint8 (saturated, so that a muted background never reads as one).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (35, 30, 215),
    "green": (50, 165, 35),
    "blue": (215, 80, 30),
    "yellow": (30, 215, 240),
    "orange": (20, 135, 245),
    "purple": (175, 45, 135),
    "white": (245, 245, 245),
    "black": (22, 22, 22),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
OBJECTS: tuple[str, ...] = ("car", "person", "bicycle", "tree", "house")
KINDS: tuple[str, ...] = SHAPES + OBJECTS
SIZES: tuple[str, ...] = ("small", "large")
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "texture", "photo")

# Object extent (longest side of its box) as a fraction of the frame's shorter side, per size.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.08, 0.15), "large": (0.22, 0.40)}

# Words a prompt may use for "any kind", and synonyms folded onto the vocabulary.
GENERIC_NOUNS: frozenset[str] = frozenset({"shape", "object", "thing"})
_KIND_WORDS: dict[str, str] = {
    **{k: k for k in KINDS},
    **{k + "s": k for k in KINDS},
    "crosses": "cross",
    "people": "person",
    "man": "person",
    "woman": "person",
    "bike": "bicycle",
}
_FILLER_WORDS: frozenset[str] = frozenset({"a", "an", "the", "one", "some", "of", "photo"})

# Fixed colours of object parts that do not take the object's colour (BGR).
_PART_COLOURS: dict[str, tuple[int, int, int]] = {
    "tyre": (30, 30, 30),
    "hub": (150, 150, 150),
    "glass": (225, 205, 170),
    "skin": (150, 185, 225),
    "trunk": (40, 70, 110),
    "door": (35, 55, 85),
}


@dataclass(frozen=True)
class Placement:
    """What to draw and where: one object before rendering.

    ``extent`` is the length in pixels of the object's longer side before rotation; ``angle`` is in
    degrees, counter-clockwise; ``flip`` mirrors side-view objects left to right.
    """

    kind: str
    colour: str
    size: str
    center: tuple[float, float]
    extent: float
    angle: float = 0.0
    flip: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, but got {self.kind!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {tuple(COLOURS)}, but got {self.colour!r}")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, but got {self.size!r}")
        if not self.extent > 0:
            raise ValueError(f"extent must be > 0 pixels, but got {self.extent}")


@dataclass(frozen=True)
class SceneObject:
    """One drawn object with its ground truth.

    ``box`` is the drawn box (x1, y1, x2, y2) in pixels clipped to the frame; ``full_box`` the same
    before clipping, so ``visible`` (the fraction of the box area inside the frame) says how much of
    an object that crosses the frame edge is shown.
    """

    kind: str
    colour: str
    size: str
    box: tuple[float, float, float, float]
    full_box: tuple[float, float, float, float]
    visible: float
    placement: Placement


@dataclass(frozen=True)
class Scene:
    """A rendered frame (H x W x 3 uint8 BGR) and the objects drawn on it, back to front.

    ``owner`` (H x W int8) says which object each pixel shows: the index into ``objects`` of the
    last one drawn there, -1 for background. It is what per-patch training labels come from.
    """

    image: np.ndarray
    objects: tuple[SceneObject, ...]
    owner: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Query:
    """What a prompt asks for; ``None`` attributes match anything."""

    colour: str | None = None
    kind: str | None = None
    size: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        """True when ``obj`` has every attribute this query names."""
        return self.matches_attributes(obj.kind, obj.colour, obj.size)

    def matches_attributes(self, kind: str, colour: str, size: str) -> bool:
        """True when an object of this kind, colour and size has every attribute named here."""
        return (
            (self.colour is None or colour == self.colour)
            and (self.kind is None or kind == self.kind)
            and (self.size is None or size == self.size)
        )

    @property
    def text(self) -> str:
        """The canonical phrasing, e.g. "a small red circle", "an orange shape", "a car"."""
        words = [w for w in (self.size, self.colour) if w] + [self.kind or "shape"]
        article = "an" if words[0][0] in "aeiou" else "a"
        return " ".join([article, *words])

    def sample(
        self,
        rng: np.random.Generator,
        *,
        kinds: Sequence[str] = KINDS,
        colours: Sequence[str] = tuple(COLOURS),
        sizes: Sequence[str] = SIZES,
    ) -> tuple[str, str, str]:
        """A random (kind, colour, size) this query matches; free attributes come from the given."""
        kind = self.kind or str(rng.choice(list(kinds)))
        colour = self.colour or str(rng.choice(list(colours)))
        size = self.size or str(rng.choice(list(sizes)))
        return kind, colour, size


def parse_prompt(text: str) -> Query:
    """Parse "a [small|large] [colour] [shape|object|thing|<kind>]" into a :class:`Query`.

    Colour, size and kind may each be omitted ("a triangle", "a green shape", "a person"); plurals
    and a few synonyms (big, tiny, bike, people) are understood. Raises :class:`PromptError` for
    words outside the vocabulary, so a benchmark never scores a prompt it cannot ground.
    """
    words = re.findall(r"[a-z]+", text.lower())
    colour = kind = size = None
    generic = False
    for word in words:
        if word in _FILLER_WORDS:
            continue
        if word in COLOURS and colour is None:
            colour = word
        elif word in SIZE_WORDS and size is None:
            size = SIZE_WORDS[word]
        elif word in _KIND_WORDS and kind is None and not generic:
            kind = _KIND_WORDS[word]
        elif (word in GENERIC_NOUNS or word.rstrip("s") in GENERIC_NOUNS) and kind is None:
            generic = True
        else:
            raise PromptError(
                f"prompt {text!r}: expected 'a [small|large] [colour] [shape|<kind>]' with colours "
                f"{tuple(COLOURS)} and kinds {KINDS}, but found {word!r}"
            )
    if colour is None and kind is None and size is None and not generic:
        raise PromptError(f"prompt {text!r} names no colour, size or kind; try 'a red circle'")
    return Query(colour=colour, kind=kind, size=size)


# ----------------------------------------------------------------------------------------------
# Drawing. Each kind is a list of primitives in unit coordinates (x right, y down, centred on 0);
# the longer side of the kind's bounding box has length 1.

# ("poly", pts, role) | ("circle", (cx, cy), r, role, thickness) | ("line", p, q, width, role)
_Prim = tuple


def _regular_star(points: int, outer: float, inner: float) -> np.ndarray:
    angles = np.arange(2 * points) * math.pi / points - math.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _shape_prims(kind: str) -> list[_Prim]:
    if kind == "circle":
        return [("circle", (0.0, 0.0), 0.5, "main", -1)]
    if kind == "ring":
        return [("circle", (0.0, 0.0), 0.42, "main", 0.16)]
    if kind == "square":
        return [("poly", np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]), "main")]
    if kind == "triangle":
        h = math.sqrt(3) / 2
        return [("poly", np.array([[0.0, -h / 2], [0.5, h / 2], [-0.5, h / 2]]), "main")]
    if kind == "star":
        return [("poly", _regular_star(5, 0.5, 0.21) + np.array([0.0, 0.05]), "main")]
    # cross: a plus sign
    t = 0.17
    pts = [[-t, -0.5], [t, -0.5], [t, -t], [0.5, -t], [0.5, t], [t, t], [t, 0.5], [-t, 0.5]]
    pts += [[-t, t], [-0.5, t], [-0.5, -t], [-t, -t]]
    return [("poly", np.array(pts), "main")]


def _object_prims(kind: str) -> list[_Prim]:
    if kind == "car":  # 1.0 x 0.42, facing right
        body = np.array([[-0.5, 0.1], [-0.48, -0.02], [-0.22, -0.04], [-0.12, -0.2], [0.16, -0.2]])
        body = np.concatenate([body, [[0.3, -0.04], [0.48, 0.0], [0.5, 0.1], [-0.5, 0.1]]])
        return [
            ("poly", body, "main"),
            (
                "poly",
                np.array([[-0.1, -0.05], [-0.06, -0.16], [0.01, -0.16], [0.01, -0.05]]),
                "glass",
            ),
            (
                "poly",
                np.array([[0.04, -0.05], [0.04, -0.16], [0.14, -0.16], [0.24, -0.05]]),
                "glass",
            ),
            ("circle", (-0.28, 0.1), 0.11, "tyre", -1),
            ("circle", (0.28, 0.1), 0.11, "tyre", -1),
            ("circle", (-0.28, 0.1), 0.045, "hub", -1),
            ("circle", (0.28, 0.1), 0.045, "hub", -1),
        ]
    if kind == "person":  # 0.38 x 1.0, standing
        return [
            ("line", (-0.05, 0.15), (-0.07, 0.5), 0.1, "main"),
            ("line", (0.05, 0.15), (0.07, 0.5), 0.1, "main"),
            ("poly", np.array([[-0.12, -0.26], [0.12, -0.26], [0.1, 0.18], [-0.1, 0.18]]), "main"),
            ("line", (-0.12, -0.22), (-0.15, 0.08), 0.07, "main"),
            ("line", (0.12, -0.22), (0.15, 0.08), 0.07, "main"),
            ("circle", (0.0, -0.39), 0.11, "skin", -1),
        ]
    if kind == "bicycle":  # 1.0 x 0.6, facing right
        r = 0.2
        back, front = (-0.3, 0.1), (0.3, 0.1)
        crank, seat, head = (-0.02, 0.1), (-0.12, -0.16), (0.2, -0.16)
        frame = [(back, crank), (crank, seat), (seat, back), (seat, head), (head, crank)]
        frame += [(head, front), (seat, (-0.16, -0.2)), (head, (0.16, -0.22))]
        prims: list[_Prim] = [("circle", c, r, "tyre", 0.04) for c in (back, front)]
        prims += [("line", p, q, 0.05, "main") for p, q in frame]
        prims += [("line", (-0.22, -0.2), (-0.1, -0.2), 0.05, "tyre")]
        return prims
    if kind == "tree":  # 0.66 x 1.0
        return [
            ("poly", np.array([[-0.06, 0.5], [-0.05, 0.0], [0.05, 0.0], [0.06, 0.5]]), "trunk"),
            ("circle", (0.0, -0.17), 0.33, "main", -1),
            ("circle", (-0.17, -0.02), 0.16, "main", -1),
            ("circle", (0.17, -0.02), 0.16, "main", -1),
        ]
    # house: 1.0 x 0.9, walls in the object's colour, a darker roof
    return [
        ("poly", np.array([[-0.38, -0.05], [0.38, -0.05], [0.38, 0.45], [-0.38, 0.45]]), "main"),
        ("poly", np.array([[-0.5, -0.03], [0.0, -0.45], [0.5, -0.03]]), "roof"),
        ("poly", np.array([[-0.08, 0.17], [0.08, 0.17], [0.08, 0.45], [-0.08, 0.45]]), "door"),
        ("poly", np.array([[-0.3, 0.05], [-0.16, 0.05], [-0.16, 0.18], [-0.3, 0.18]]), "glass"),
        ("poly", np.array([[0.16, 0.05], [0.3, 0.05], [0.3, 0.18], [0.16, 0.18]]), "glass"),
    ]


@cache
def _unit_prims(kind: str) -> tuple[_Prim, ...]:
    """Primitives of ``kind`` scaled so the longer side of their bounding box is 1, centred."""
    prims = _shape_prims(kind) if kind in SHAPES else _object_prims(kind)
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for p in prims:
        pts, pad = _prim_points(p)
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    centre, scale = (lo + hi) / 2, 1.0 / float((hi - lo).max())
    out = []
    for p in prims:
        if p[0] == "poly":
            out.append(("poly", (p[1] - centre) * scale, p[2]))
        elif p[0] == "circle":
            thick = p[4] * scale if p[4] > 0 else -1
            out.append(("circle", (np.asarray(p[1]) - centre) * scale, p[2] * scale, p[3], thick))
        else:
            a, b = (np.asarray(p[1]) - centre) * scale, (np.asarray(p[2]) - centre) * scale
            out.append(("line", a, b, p[3] * scale, p[4]))
    return tuple(out)


def _prim_points(p: _Prim) -> tuple[np.ndarray, float]:
    """Key points of a primitive and the padding around them that its drawing covers."""
    if p[0] == "poly":
        return np.asarray(p[1], dtype=np.float64), 0.0
    if p[0] == "circle":
        pad = p[2] + (p[4] / 2 if p[4] > 0 else 0.0)
        return np.asarray([p[1]], dtype=np.float64), pad
    return np.asarray([p[1], p[2]], dtype=np.float64), p[3] / 2


def _part_colour(role: str, colour: str) -> tuple[int, int, int]:
    main = COLOURS[colour]
    if role == "main":
        return main
    if role == "roof":
        return tuple(int(c * 0.55) for c in main) if colour != "black" else (70, 70, 70)
    if role == "tyre" and colour == "black":
        return (75, 75, 75)
    return _PART_COLOURS[role]


_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _draw(image: np.ndarray, p: Placement, jitter: np.ndarray | None) -> tuple[float, ...]:
    """Draw one placement onto ``image`` in place; return its unclipped box (x1, y1, x2, y2)."""
    theta = math.radians(p.angle)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    sx = -p.extent if p.flip else p.extent
    centre = np.asarray(p.center, dtype=np.float64)

    def tf(pts: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(pts) * [sx, p.extent]
        return pts @ rot.T + centre

    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for prim in _unit_prims(p.kind):
        colour = _part_colour(
            prim[-1] if prim[0] == "poly" else prim[3 if prim[0] == "circle" else 4], p.colour
        )
        if jitter is not None:
            colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
        if prim[0] == "poly":
            pts = tf(prim[1])
            fixed = np.round(pts * _ONE).astype(np.int32)
            cv2.fillPoly(image, [fixed], colour, cv2.LINE_AA, _SHIFT)
            pad = 0.0
        elif prim[0] == "circle":
            pts = tf(prim[1])
            radius = prim[2] * p.extent
            c = tuple(int(v) for v in np.round(pts[0] * _ONE))
            if prim[4] > 0:
                thick = max(1, round(prim[4] * p.extent))
                r_mid = radius
                cv2.circle(image, c, round(r_mid * _ONE), colour, thick, cv2.LINE_AA, _SHIFT)
                pad = r_mid + thick / 2
            else:
                cv2.circle(image, c, round(radius * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
                pad = radius
        else:
            pts = tf(np.stack([prim[1], prim[2]]))
            thick = max(1, round(prim[3] * p.extent))
            a, b = (tuple(int(v) for v in np.round(q * _ONE)) for q in pts)
            cv2.line(image, a, b, colour, thick, cv2.LINE_AA, _SHIFT)
            pad = thick / 2
        lo = np.minimum(lo, pts.min(0) - pad)
        hi = np.maximum(hi, pts.max(0) + pad)
    # OpenCV puts pixel i's centre at coordinate i; boxes use pixel edges (pixel i spans i..i+1).
    return (float(lo[0]) + 0.5, float(lo[1]) + 0.5, float(hi[0]) + 0.5, float(hi[1]) + 0.5)


def render_scene(
    background: np.ndarray,
    placements: Sequence[Placement],
    *,
    rng: np.random.Generator | None = None,
) -> Scene:
    """Draw ``placements`` (back to front) on a copy of ``background`` (H x W x 3 uint8 BGR).

    With ``rng``, each object's colour is jittered slightly so that no colour is one exact value.
    """
    if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
        raise ValueError(
            "background must be an H x W x 3 uint8 array, "
            f"but got {background.shape} {background.dtype}"
        )
    image = background.copy()
    h, w = image.shape[:2]
    owner = np.full((h, w), -1, dtype=np.int8)
    objects = []
    for i, p in enumerate(placements):
        jitter = rng.integers(-14, 15, size=3) if rng is not None else None
        before = image.copy()
        full = _draw(image, p, jitter)
        x1, y1 = min(max(full[0], 0.0), w), min(max(full[1], 0.0), h)
        x2, y2 = min(max(full[2], 0.0), w), min(max(full[3], 0.0), h)
        # The pixels this object changed (its box, padded for anti-aliasing) are now its own.
        r0, r1 = max(int(y1) - 2, 0), min(math.ceil(y2) + 2, h)
        c0, c1 = max(int(x1) - 2, 0), min(math.ceil(x2) + 2, w)
        changed = (image[r0:r1, c0:c1] != before[r0:r1, c0:c1]).any(axis=2)
        owner[r0:r1, c0:c1][changed] = i
        area = (full[2] - full[0]) * (full[3] - full[1])
        visible = (x2 - x1) * (y2 - y1) / area if area > 0 else 0.0
        objects.append(
            SceneObject(p.kind, p.colour, p.size, (x1, y1, x2, y2), full, float(visible), p)
        )
    return Scene(image=image, objects=tuple(objects), owner=owner)


# ----------------------------------------------------------------------------------------------
# Backgrounds: muted colours (saturation <= 0.45, value 0.25..0.75) so that no background reads as
# a vocabulary colour and every object stands out from it.


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array(
        [[[rng.integers(0, 180), rng.integers(0, 115), rng.integers(64, 192)]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _muted_colour(rng), _muted_colour(rng)
    theta = rng.uniform(0, 2 * math.pi)
    # A linear ramp: computed on an 8x coarser grid and resized, which is exact and 50x cheaper.
    sh, sw = max(2, h // 8), max(2, w // 8)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    t = xs * math.cos(theta) + ys * math.sin(theta)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    small = (a + (b - a) * t[..., None]).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _muted_colour(rng)
    sigma = rng.uniform(6, 30)
    small = rng.normal(0, sigma, size=(max(2, h // 4), max(2, w // 4), 3)).astype(np.float32)
    if rng.random() < 0.5:  # smooth clouds rather than grain
        small = cv2.GaussianBlur(small, (0, 0), rng.uniform(1.5, 6)) * 3
    small = np.clip(small + base, 0, 255).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _muted_colour(rng), _muted_colour(rng)
    # Drawn at half resolution and resized: soft edges, 4x less arithmetic.
    sh, sw = max(2, h // 2), max(2, w // 2)
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    period = rng.uniform(3, 20)
    theta = rng.uniform(0, math.pi)
    u = xs * math.cos(theta) + ys * math.sin(theta)
    v = -xs * math.sin(theta) + ys * math.cos(theta)
    style = rng.integers(0, 3)
    if style == 0:  # stripes
        t = (np.sin(u * (2 * math.pi / period)) > 0).astype(np.float32)
    elif style == 1:  # checkerboard
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    else:  # soft waves
        t = 0.5 + 0.25 * (np.sin(u * (2 * math.pi / period)) + np.sin(v * (1.4 * math.pi / period)))
    t = cv2.resize(t, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.convertScaleAbs(a + (b - a) * t[..., None])


_PHOTO_NAMES: tuple[str, ...] = (
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "moon",
    "immunohistochemistry",
    "hubble_deep_field",
)


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled sample photographs as BGR uint8, loaded once; empty without it."""
    try:
        from skimage import data
    except ImportError:
        return ()
    photos = []
    for name in _PHOTO_NAMES:
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:
            continue
        if img.ndim == 2:
            img = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_GRAY2BGR)
        else:
            img = cv2.cvtColor(img[..., :3].astype(np.uint8), cv2.COLOR_RGB2BGR)
        photos.append(np.ascontiguousarray(img))
    return tuple(photos)


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray | None:
    photos = _photos()
    if not photos:
        return None
    img = photos[rng.integers(len(photos))]
    ph, pw = img.shape[:2]
    scale = max(h / ph, w / pw) * rng.uniform(1.0, 1.6)
    ch, cw = min(ph, math.ceil(h / scale)), min(pw, math.ceil(w / scale))
    y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    out = cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA)
    # Pull the photo's colours towards grey a little so it competes less with the objects.
    grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return cv2.addWeighted(out, 0.7, grey, 0.3, 0)


def _street(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A side view of a street: sky, a row of pale buildings, pavement, road with lane marks."""
    img = np.empty((h, w, 3), np.uint8)
    horizon, kerb = int(h * 0.45), int(h * 0.62)
    sky = _gradient(rng, horizon, w) if horizon > 0 else img[:0]
    img[:horizon] = (sky.astype(np.float32) * 0.4 + np.array([235, 200, 160]) * 0.6).astype(
        np.uint8
    )
    x = 0
    while x < w:  # buildings: muted blocks of random width and height along the horizon
        bw = int(rng.integers(w // 10, w // 4))
        top = int(horizon * rng.uniform(0.25, 0.7))
        colour = (_muted_colour(rng) * 0.5 + 110).astype(np.uint8)
        img[top:horizon, x : x + bw] = colour
        x += bw + int(rng.integers(0, w // 30 + 1))
    img[horizon:kerb] = (175, 178, 182)  # pavement
    img[kerb:] = (88, 88, 92)  # asphalt
    lane = (kerb + h) // 2
    for x0 in range(int(rng.integers(0, 40)), w, 80):
        img[lane - 2 : lane + 2, x0 : x0 + 40] = (230, 230, 230)
    return cv2.GaussianBlur(img, (3, 3), 0)


def random_background(
    rng: np.random.Generator, height: int, width: int, kind: str | None = None
) -> np.ndarray:
    """A background of ``kind`` (one of :data:`BACKGROUNDS`, random if None) as H x W x 3 uint8 BGR.

    "photo" uses scikit-image's sample photographs when it is installed, else falls back to noise.
    """
    kind = kind or str(rng.choice(BACKGROUNDS))
    if kind == "flat":
        return np.broadcast_to(_muted_colour(rng).astype(np.uint8), (height, width, 3)).copy()
    if kind == "gradient":
        return _gradient(rng, height, width)
    if kind == "noise":
        return _noise(rng, height, width)
    if kind == "texture":
        return _texture(rng, height, width)
    if kind == "photo":
        photo = _photo(rng, height, width)
        return photo if photo is not None else _noise(rng, height, width)
    if kind == "street":  # for the demo; not among BACKGROUNDS, so training data stay as they were
        return _street(rng, height, width)
    raise ValueError(f"background kind must be one of {BACKGROUNDS}, but got {kind!r}")


# ----------------------------------------------------------------------------------------------
# Random scenes.


def _aspect(kind: str) -> tuple[float, float]:
    """(width, height) of a kind's unrotated box relative to its extent."""
    lo, hi = np.array([np.inf, np.inf]), np.array([-np.inf, -np.inf])
    for p in _unit_prims(kind):
        pts, pad = _prim_points(p)
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    return float(hi[0] - lo[0]), float(hi[1] - lo[1])


def _approx_box(p: Placement) -> tuple[float, float, float, float]:
    aw, ah = _aspect(p.kind)
    theta = math.radians(p.angle)
    c, s = abs(math.cos(theta)), abs(math.sin(theta))
    bw = p.extent * (aw * c + ah * s)
    bh = p.extent * (aw * s + ah * c)
    return (p.center[0] - bw / 2, p.center[1] - bh / 2, p.center[0] + bw / 2, p.center[1] + bh / 2)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection area over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / small if small > 0 else 0.0


def random_placement(
    rng: np.random.Generator,
    height: int,
    width: int,
    kind: str,
    colour: str,
    size: str,
    *,
    edge_probability: float = 0.15,
) -> Placement:
    """A random position, extent, rotation and mirroring for one object.

    Shapes turn freely; side-view objects tilt at most 15 degrees. With ``edge_probability`` the
    object's centre lies near the frame edge, so that part of it is cut off.
    """
    lo, hi = SIZE_RANGES[size]
    extent = float(rng.uniform(lo, hi) * min(height, width))
    angle = float(rng.uniform(-180, 180) if kind in SHAPES else rng.uniform(-15, 15))
    if rng.random() < edge_probability:
        side = rng.integers(4)
        along = rng.uniform(0, width if side < 2 else height)
        inset = rng.uniform(-0.25, 0.25) * extent
        if side == 0:
            cx, cy = along, inset
        elif side == 1:
            cx, cy = along, height - inset
        elif side == 2:
            cx, cy = inset, along
        else:
            cx, cy = width - inset, along
    else:
        margin = extent / 2
        cx = rng.uniform(margin, max(margin, width - margin))
        cy = rng.uniform(margin, max(margin, height - margin))
    return Placement(
        kind, colour, size, (float(cx), float(cy)), extent, angle, bool(rng.random() < 0.5)
    )


def random_placements(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    n_objects: int | tuple[int, int] = (1, 4),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    sizes: Sequence[str] = SIZES,
    edge_probability: float = 0.15,
    max_overlap: float = 0.3,
) -> list[Placement]:
    """Random placements for a ``height`` x ``width`` frame; see :func:`random_scene`."""
    if isinstance(n_objects, int):
        count = n_objects
    else:
        count = int(rng.integers(n_objects[0], n_objects[1] + 1))
    excluded = [parse_prompt(t) for t in exclude]
    wanted = [
        parse_prompt(t).sample(rng, kinds=kinds, colours=colours, sizes=sizes) for t in include
    ]
    for _ in range(count):
        for _ in range(50):
            k, c, s = Query().sample(rng, kinds=kinds, colours=colours, sizes=sizes)
            if not any(q.matches_attributes(k, c, s) for q in excluded):
                wanted.append((k, c, s))
                break
    placements: list[Placement] = []
    boxes: list[tuple[float, ...]] = []
    for i in rng.permutation(len(wanted)):
        kind, colour, size = wanted[i]
        for attempt in range(20):
            p = random_placement(
                rng, height, width, kind, colour, size, edge_probability=edge_probability
            )
            box = _approx_box(p)
            if attempt == 19 or all(_overlap(box, b) <= max_overlap for b in boxes):
                break
        placements.append(p)
        boxes.append(box)
    return placements


def random_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    n_objects: int | tuple[int, int] = (1, 4),
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    colours: Sequence[str] = tuple(COLOURS),
    sizes: Sequence[str] = SIZES,
    background: str | None = None,
    edge_probability: float = 0.15,
    max_overlap: float = 0.3,
) -> Scene:
    """A random scene of ``height`` x ``width`` pixels.

    ``include`` lists prompts ("a red circle", "a star") each of which adds one object it matches,
    on top of ``n_objects`` (a count, or an inclusive (low, high) range) random ones drawn from
    ``kinds`` x ``colours`` x ``sizes``. No random object matches any prompt in ``exclude``, which
    makes frames without the target and colour-only or shape-only distractors easy to ask for:
    ``include=["a red square", "a blue circle"], exclude=["a red circle"]``. Objects overlap by at
    most ``max_overlap`` of the smaller box (a best effort: after 20 tries one is placed anyway).
    With probability ``edge_probability`` an object straddles the frame edge. ``background`` is one
    of :data:`BACKGROUNDS`, random when None.
    """
    placements = random_placements(
        rng,
        height,
        width,
        n_objects=n_objects,
        include=include,
        exclude=exclude,
        kinds=kinds,
        colours=colours,
        sizes=sizes,
        edge_probability=edge_probability,
        max_overlap=max_overlap,
    )
    bg = random_background(rng, height, width, background)
    return render_scene(bg, placements, rng=rng)


def moving_video(
    rng: np.random.Generator,
    n_frames: int,
    height: int,
    width: int,
    *,
    speed: float = 3.0,
    background: str | None = None,
    **placement_kwargs: object,
) -> list[Scene]:
    """Frames of one random scene whose objects drift smoothly, for temporal-stability tests.

    Each object moves ``speed`` pixels per frame in a random direction, bouncing off the frame
    edges, and shapes turn slowly; the background stays still and each object keeps its colour.
    ``placement_kwargs`` (``n_objects``, ``include``, ``exclude``, ...) are those of
    :func:`random_scene`.
    """
    placement_kwargs.setdefault("edge_probability", 0.0)
    placements = random_placements(rng, height, width, **placement_kwargs)  # type: ignore[arg-type]
    bg = random_background(rng, height, width, background)
    directions = rng.uniform(0, 2 * math.pi, size=len(placements))
    velocities = np.stack([np.cos(directions), np.sin(directions)], axis=1) * speed
    spins = rng.uniform(-2, 2, size=len(placements))
    jitter_seed = int(rng.integers(2**31))
    frames = []
    for _ in range(n_frames):
        frames.append(render_scene(bg, placements, rng=np.random.default_rng(jitter_seed)))
        moved = []
        for j, p in enumerate(placements):
            x, y = p.center[0] + velocities[j, 0], p.center[1] + velocities[j, 1]
            half = p.extent / 2
            if not half <= x <= width - half:
                velocities[j, 0] *= -1
            if not half <= y <= height - half:
                velocities[j, 1] *= -1
            angle = p.angle + (spins[j] if p.kind in SHAPES else 0.0)
            moved.append(replace(p, center=(float(x), float(y)), angle=float(angle)))
        placements = moved
    return frames
