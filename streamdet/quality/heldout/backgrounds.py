"""Natural-looking backgrounds of the held-out generator, procedural and never used in training.

Terrain seen from above, sky with clouds, foliage, asphalt, brick walls and water, from fractal
value noise (octaves of smoothly upsampled random grids) with colour ramps, shading and texture.
The training generator's backgrounds are flat colours, gradients, noise, stripes/checkers/waves,
scikit-image's sample photographs and (for the demo) a drawn street; none of these kinds. Colours
stay natural and muted (saturation at most 0.5), as in photographs, so a wall of bricks is not "a
red shape" and a sky is not "a blue shape".

The real clips in ``../shared/media`` are not used: they show real cars and people that the
vocabulary names but nobody labelled, so a box on them would count as false. Frames are RGB
float32 (0-255) here; :mod:`streamdet.quality.heldout.scenes` converts to BGR ``uint8``.
"""

from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

BACKGROUNDS: tuple[str, ...] = ("terrain", "sky", "foliage", "asphalt", "brick", "water")


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """RGB (0-255 floats) of a hue in degrees and saturation, value in 0..1."""
    return np.asarray(colorsys.hsv_to_rgb((h % 360.0) / 360.0, s, v), np.float32) * 255.0


def fbm(
    rng: np.random.Generator,
    h: int,
    w: int,
    cells: float = 4.0,
    octaves: int = 5,
    persistence: float = 0.5,
) -> np.ndarray:
    """Fractal value noise in 0..1: octaves of random grids, each twice as fine, upsampled."""
    out = np.zeros((h, w), np.float32)
    amplitude, total = 1.0, 0.0
    for k in range(octaves):
        n = cells * 2**k
        gh, gw = max(2, math.ceil(n * h / max(h, w)) + 1), max(2, math.ceil(n * w / max(h, w)) + 1)
        grid = rng.random((gh, gw)).astype(np.float32)
        out += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= persistence
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _ramp(t: np.ndarray, colours: list[np.ndarray]) -> np.ndarray:
    """Colours spread evenly over t in 0..1, linearly interpolated."""
    stops = np.linspace(0.0, 1.0, len(colours))
    return np.stack(
        [np.interp(t, stops, [c[ch] for c in colours]) for ch in range(3)], axis=-1
    ).astype(np.float32)


def _shading(height: np.ndarray, strength: float) -> np.ndarray:
    """Hill shading of a height field lit from the top left: 1 +- strength."""
    gy, gx = np.gradient(height * 40.0)
    light = -(gx + gy) / math.sqrt(2)
    return 1.0 + strength * np.tanh(light)


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    height = fbm(rng, h, w, rng.uniform(2.0, 5.0), 6, 0.55)
    colours = [
        hsv(rng.uniform(25, 45), rng.uniform(0.25, 0.45), rng.uniform(0.28, 0.45)),
        hsv(rng.uniform(55, 90), rng.uniform(0.22, 0.42), rng.uniform(0.32, 0.5)),
        hsv(rng.uniform(30, 50), rng.uniform(0.15, 0.3), rng.uniform(0.45, 0.6)),
        hsv(0.0, rng.uniform(0.0, 0.08), rng.uniform(0.5, 0.65)),
    ]
    img = _ramp(height, colours) * _shading(height, 0.25)[..., None]
    return img + (fbm(rng, h, w, 40.0, 2)[..., None] - 0.5) * 30.0


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None].repeat(w, axis=1)
    hue = rng.uniform(198, 222)
    top = hsv(hue, rng.uniform(0.3, 0.45), rng.uniform(0.55, 0.75))
    horizon = hsv(hue + rng.uniform(-10, 10), rng.uniform(0.05, 0.18), rng.uniform(0.78, 0.9))
    img = _ramp(t, [top, horizon])
    clouds = fbm(rng, h, w, rng.uniform(2.0, 4.0), 6, 0.55)
    cover = rng.uniform(0.35, 0.65)
    alpha = np.clip((clouds - cover) / 0.25, 0.0, 0.85)[..., None]
    shade = 0.85 + 0.15 * fbm(rng, h, w, 6.0, 3)[..., None]
    cloud = hsv(hue, 0.03, rng.uniform(0.82, 0.94)) * shade
    img = img * (1 - alpha) + cloud * alpha
    if rng.random() < 0.5:  # distant ground along the bottom
        ground = int(h * rng.uniform(0.75, 0.9))
        ridge = (ground + (fbm(rng, 1, w, 6.0, 4)[0] - 0.5) * h * 0.12).astype(int)
        rows = np.arange(h)[:, None] >= ridge[None, :]
        land = hsv(rng.uniform(60, 110), rng.uniform(0.2, 0.35), rng.uniform(0.2, 0.35))
        img[rows] = land * (0.8 + 0.4 * fbm(rng, h, w, 30.0, 2))[rows][:, None]
    return img


def _foliage(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    leaves = fbm(rng, h, w, rng.uniform(10.0, 18.0), 4, 0.6)
    light = fbm(rng, h, w, rng.uniform(2.0, 4.0), 4, 0.5)
    hue = rng.uniform(70, 125)
    dark = hsv(hue, rng.uniform(0.35, 0.5), rng.uniform(0.1, 0.18))
    mid = hsv(hue + rng.uniform(-10, 10), rng.uniform(0.35, 0.5), rng.uniform(0.25, 0.38))
    lit = hsv(hue - rng.uniform(5, 25), rng.uniform(0.3, 0.45), rng.uniform(0.4, 0.5))
    img = _ramp(np.clip(leaves * 0.7 + light * 0.5 - 0.1, 0, 1), [dark, mid, lit])
    return img * _shading(leaves, 0.3)[..., None]


def _asphalt(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.06), rng.uniform(0.25, 0.42))
    img = base * (0.85 + 0.3 * fbm(rng, h, w, 3.0, 4))[..., None]
    img = img + rng.normal(0.0, rng.uniform(4, 9), (h, w, 1)).astype(np.float32)
    speckle = rng.random((h, w)) < 0.03
    img[speckle] *= 1.35
    cracks = np.abs(fbm(rng, h, w, rng.uniform(3.0, 6.0), 5) - 0.5) < 0.012
    img[cracks] *= 0.55
    if rng.random() < 0.6:  # a worn painted line along the road
        y = int(rng.uniform(0.2, 0.8) * h)
        half = int(rng.uniform(3, 7))
        wear = np.clip(fbm(rng, 2 * half, w, 12.0, 3) * 1.6 - 0.3, 0.0, 0.75)[..., None]
        band = img[max(y - half, 0) : y + half]
        paint = hsv(rng.uniform(40, 55), rng.uniform(0.0, 0.25), 0.72)
        img[max(y - half, 0) : y + half] = (
            band * (1 - wear[: len(band)]) + paint * wear[: len(band)]
        )
    return img


def _brick(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    row = rng.uniform(14, 26)
    length = row * rng.uniform(2.0, 2.7)
    mortar = rng.uniform(1.5, 3.0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.floor(ys / row)
    shifted = xs + (r % 2) * length / 2
    c = np.floor(shifted / length)
    in_mortar = ((ys % row) < mortar) | ((shifted % length) < mortar)
    hue, sat, val = rng.uniform(5, 28), rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5)
    ids = (r * 997 + c).astype(np.int64) % 4096
    # bricks differ in brightness and a little in hue, as fired clay does
    light = rng.uniform(0.8, 1.2, 4096).astype(np.float32)
    warm = rng.uniform(-6.0, 6.0, 4096).astype(np.float32)
    brick = hsv(hue, sat, val) * light[ids][..., None]
    brick[..., 0] += warm[ids]
    brick[..., 2] -= warm[ids]
    img = brick * (0.8 + 0.35 * fbm(rng, h, w, 24.0, 3))[..., None]
    img[in_mortar] = hsv(40, 0.08, rng.uniform(0.5, 0.65)) * (
        0.85 + 0.3 * rng.random((int(in_mortar.sum()), 1))
    )
    return img * (0.85 + 0.3 * fbm(rng, h, w, 2.0, 3))[..., None]


def _water(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = fbm(rng, h, w, 4.0, 4) * rng.uniform(20, 45)
    period = rng.uniform(8, 18)
    ripple = 0.5 + 0.5 * np.sin((ys + warp) * (2 * math.pi / period) + xs * 0.02)
    hue = rng.uniform(175, 210)
    deep = hsv(hue, rng.uniform(0.25, 0.4), rng.uniform(0.22, 0.35))
    light = hsv(hue - 10, rng.uniform(0.15, 0.3), rng.uniform(0.45, 0.6))
    t = np.clip(0.3 * ripple + 0.8 * fbm(rng, h, w, 3.0, 4) - 0.1, 0, 1)
    img = _ramp(t, [deep, light])
    glint = (ripple > 0.97) & (fbm(rng, h, w, 8.0, 3) > 0.6)
    img[glint] = img[glint] * 0.4 + 0.6 * hsv(hue, 0.05, 0.85)
    return img


_MAKERS = {
    "terrain": _terrain,
    "sky": _sky,
    "foliage": _foliage,
    "asphalt": _asphalt,
    "brick": _brick,
    "water": _water,
}


def background(rng: np.random.Generator, height: int, width: int, kind: str) -> np.ndarray:
    """A background of ``kind`` (one of :data:`BACKGROUNDS`): H x W x 3 float32 RGB, 0-255."""
    if kind not in _MAKERS:
        raise ValueError(f"held-out background must be one of {BACKGROUNDS}, but got {kind!r}")
    return np.clip(_MAKERS[kind](rng, height, width), 0.0, 255.0).astype(np.float32)
