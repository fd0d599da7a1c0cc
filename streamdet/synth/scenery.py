"""Backgrounds and surface textures for domain-randomised training scenes.

The scene generator's own backgrounds (:mod:`streamdet.synth.backgrounds`: flat, gradient,
noise, stripes, a few photographs) are few enough for a model to learn by heart; a detector that
only ever saw them fails on others (issue 18). These are more, and closer to what video shows:
fractal terrain, skies with clouds, foliage, asphalt, brick walls, tiled floors, water and blurred,
recoloured photo crops. Each is procedural (its own code, drawn from the given random generator),
H x W x 3 ``uint8`` BGR and muted (saturation at most about 0.5), so that no background area
reads as a vocabulary colour on its own; :func:`luminance_map` gives the texture that modulates
an object's brightness (keeping its hue) when objects are textured.

Only the training data use this module (``randomise`` share > 0); the benchmark's ``train``
generator is :mod:`streamdet.synth.scenes`, unchanged.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamdet.synth.backgrounds import _photos, photo_crop, random_background

#: The new background kinds, drawn with :func:`varied_background`.
SCENERY: tuple[str, ...] = (
    "terrain",
    "sky",
    "foliage",
    "asphalt",
    "brick",
    "tiles",
    "water",
    "blurred",
)


def _hsv_colour(
    rng: np.random.Generator,
    hue: tuple[float, float],
    sat: tuple[float, float],
    val: tuple[float, float],
) -> np.ndarray:
    """One BGR float32 colour from ranges of OpenCV hue (0..180), saturation and value (0..1)."""
    hsv = np.array(
        [[[rng.uniform(*hue) % 180, rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def value_noise(
    rng: np.random.Generator,
    h: int,
    w: int,
    *,
    octaves: int = 4,
    base: float = 4.0,
    persistence: float = 0.55,
) -> np.ndarray:
    """Fractal value noise in 0..1, (h, w) float32: random grids of increasing resolution, each
    resized smoothly and weighted by ``persistence`` per octave."""
    out = np.zeros((h, w), np.float32)
    weight, total = 1.0, 0.0
    for octave in range(octaves):
        cells = base * (2**octave)
        gh, gw = max(2, int(cells * h / max(h, w)) + 2), max(2, int(cells * w / max(h, w)) + 2)
        grid = rng.random((gh, gw)).astype(np.float32)
        out += weight * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += weight
        weight *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _blend(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a + (b - a) * t per pixel, as uint8 (a, b: BGR colours; t: (h, w) 0..1)."""
    return np.clip(a + (b - a) * t[..., None], 0, 255).astype(np.uint8)


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fields, earth and rock seen from above or afar: fractal noise between earthy colours."""
    low = _hsv_colour(rng, (8, 40), (0.15, 0.5), (0.2, 0.5))
    high = _hsv_colour(rng, (10, 60), (0.05, 0.4), (0.45, 0.8))
    t = value_noise(rng, h, w, octaves=5, base=rng.uniform(2, 6))
    return _blend(low, high, t)


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A sky: a vertical gradient from a pale blue-grey horizon up, with soft white clouds."""
    top = _hsv_colour(rng, (95, 115), (0.2, 0.5), (0.55, 0.85))
    bottom = _hsv_colour(rng, (90, 120), (0.02, 0.25), (0.7, 0.95))
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None].repeat(w, axis=1)
    img = _blend(top, bottom, ramp ** rng.uniform(0.6, 1.5)).astype(np.float32)
    clouds = value_noise(rng, h, w, octaves=4, base=rng.uniform(2, 5))
    cover = np.clip((clouds - rng.uniform(0.45, 0.7)) * 3.0, 0, 1)
    white = np.float32(rng.uniform(205, 240))
    img = img + (white - img) * cover[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _foliage(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Leaves and bushes: many overlapping muted green-to-olive blobs over a dark base."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _hsv_colour(rng, (30, 75), (0.2, 0.5), (0.1, 0.3)).astype(np.uint8)
    count = int(h * w / rng.uniform(150, 600))
    for _ in range(count):
        colour = _hsv_colour(rng, (28, 80), (0.15, 0.5), (0.15, 0.55))
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(2, 10)), int(rng.integers(2, 7)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(img, centre, axes, angle, 0, 360, colour.tolist(), -1, cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))


def _asphalt(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Road or pavement: grey grain, darker patches and now and then a pale marking."""
    grey = rng.uniform(60, 140)
    grain = rng.normal(0, rng.uniform(5, 14), (h, w)).astype(np.float32)
    patches = (value_noise(rng, h, w, octaves=3, base=3) - 0.5) * rng.uniform(10, 40)
    base = np.clip(grey + grain + patches, 0, 255)
    tint = rng.uniform(-6, 6, size=3).astype(np.float32)
    img = np.clip(base[..., None] + tint, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        y = int(rng.integers(0, h))
        thick = int(rng.integers(2, 8))
        for x0 in range(int(rng.integers(0, 60)), w, int(rng.integers(60, 140))):
            x1 = x0 + int(rng.integers(20, 60))
            cv2.rectangle(img, (x0, y), (x1, y + thick), (205, 205, 210), -1)
    return img


def _brick(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A brick wall: staggered rows of muted brick colours with mortar lines."""
    mortar = _hsv_colour(rng, (10, 30), (0.0, 0.2), (0.55, 0.8))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = mortar.astype(np.uint8)
    bh = int(rng.integers(6, 22))
    bw = int(bh * rng.uniform(1.8, 3.2))
    gap = max(1, bh // 6)
    hue = (rng.uniform(0, 25), 0.0)
    for row, y in enumerate(range(0, h, bh)):
        offset = (bw // 2) * (row % 2)
        for x in range(-offset, w, bw):
            colour = _hsv_colour(rng, (hue[0] - 3, hue[0] + 3), (0.25, 0.5), (0.3, 0.6))
            cv2.rectangle(img, (x + gap, y + gap), (x + bw - 1, y + bh - 1), colour.tolist(), -1)
    grain = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)


def _tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A tiled floor or wall: square tiles of one or two muted colours with grout, in perspective
    now and then (a vertical squeeze)."""
    a = _hsv_colour(rng, (0, 180), (0.0, 0.3), (0.35, 0.85))
    b = a if rng.random() < 0.5 else _hsv_colour(rng, (0, 180), (0.0, 0.3), (0.35, 0.85))
    grout = _hsv_colour(rng, (0, 180), (0.0, 0.15), (0.2, 0.7))
    side = int(rng.integers(10, 48))
    big = max(h, w) * 2
    tile = np.empty((big, big, 3), np.uint8)
    tile[:] = grout.astype(np.uint8)
    g = max(1, side // 12)
    for i, y in enumerate(range(0, big, side)):
        for j, x in enumerate(range(0, big, side)):
            colour = a if (i + j) % 2 == 0 else b
            cv2.rectangle(tile, (x + g, y + g), (x + side - 1, y + side - 1), colour.tolist(), -1)
    angle = float(rng.uniform(-30, 30))
    rot = cv2.getRotationMatrix2D((big / 2, big / 2), angle, 1.0)
    squeeze = rng.uniform(0.5, 1.0)
    rot[1] *= squeeze
    rot[0, 2] += w / 2 - big / 2  # the pattern's centre to the frame's centre
    rot[1, 2] += h / 2 - squeeze * big / 2
    return cv2.warpAffine(tile, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _water(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A lake or sea surface: a muted blue-green to grey base, horizontal ripples that grow
    towards the bottom (nearer the camera) and small bright glints."""
    deep = _hsv_colour(rng, (80, 115), (0.15, 0.5), (0.2, 0.45))
    light = _hsv_colour(rng, (85, 115), (0.05, 0.35), (0.45, 0.75))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = 0.3 + 0.7 * ys / max(h - 1, 1)
    wobble = value_noise(rng, h, w, octaves=3, base=3) * rng.uniform(4, 20)
    period = rng.uniform(3, 9)
    ripples = np.sin((ys / depth + wobble) * 2 * math.pi / period + xs * rng.uniform(0, 0.05))
    t = np.clip(0.5 + 0.35 * ripples * depth + 0.25 * (value_noise(rng, h, w) - 0.5), 0, 1)
    img = _blend(deep, light, t).astype(np.float32)
    glints = (rng.random((h, w)) < rng.uniform(0.0005, 0.004)) & (ripples > 0.6)
    img[glints] = 235.0
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 0.7)


def _blurred_photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A crop of a sample photograph, maybe mirrored, blurred like an out-of-focus backdrop and
    recoloured (hue turned, saturation lowered); noise where no photographs are installed."""
    out = photo_crop(rng, h, w, 2.5, cv2.INTER_LINEAR)
    if out is None:
        return _terrain(rng, h, w)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 4.0))
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 180)) % 180
    hsv[..., 1] *= rng.uniform(0.2, 0.6)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


_DRAWERS = {
    "terrain": _terrain,
    "sky": _sky,
    "foliage": _foliage,
    "asphalt": _asphalt,
    "brick": _brick,
    "tiles": _tiles,
    "water": _water,
    "blurred": _blurred_photo,
}


def varied_background(
    rng: np.random.Generator, height: int, width: int, *, old_share: float = 0.3
) -> np.ndarray:
    """A background for a randomised scene: with probability ``old_share`` one of the scene
    generator's own kinds (so that they are not forgotten), else one of :data:`SCENERY`."""
    if rng.random() < old_share:
        return random_background(rng, height, width)
    kind = SCENERY[int(rng.integers(len(SCENERY)))]
    return np.ascontiguousarray(_DRAWERS[kind](rng, height, width))


def luminance_map(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) float32 brightness factors around 1 for texturing an object: fractal noise,
    stripes or a photograph's grey levels; multiplying all three channels by it keeps the hue."""
    amplitude = rng.uniform(0.08, 0.3)
    style = rng.random()
    photos = _photos()
    if style < 0.4 or not photos:
        t = value_noise(rng, h, w, octaves=3, base=rng.uniform(2, 8))
    elif style < 0.7:
        period = rng.uniform(3, 12)
        theta = rng.uniform(0, math.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = 0.5 + 0.5 * np.sin((xs * math.cos(theta) + ys * math.sin(theta)) * 2 * math.pi / period)
    else:
        img = photos[rng.integers(len(photos))]
        ph, pw = img.shape[:2]
        y, x = int(rng.integers(0, max(1, ph - h))), int(rng.integers(0, max(1, pw - w)))
        crop = img[y : y + h, x : x + w]
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_LINEAR)
        t = (grey - grey.min()) / max(float(grey.max() - grey.min()), 1e-6)
    return (1.0 + amplitude * (2.0 * t.astype(np.float32) - 1.0)).astype(np.float32)


__all__ = ["SCENERY", "luminance_map", "value_noise", "varied_background"]
