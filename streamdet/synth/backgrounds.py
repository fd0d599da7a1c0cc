"""Backgrounds for synthetic scenes: flat, gradient, noise, texture, photo and street.

Muted colours (saturation <= 0.45, value 0.25..0.75), so that no background reads as a vocabulary
colour and every object stands out from it. All are H x W x 3 ``uint8`` BGR and drawn from the
given random generator, so a seed gives the same background.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "texture", "photo")


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    hsv = np.array(
        [[[rng.integers(0, 180), rng.integers(0, 115), rng.integers(64, 192)]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _muted_colour(rng), _muted_colour(rng)
    theta = rng.uniform(0, 2 * math.pi)
    # A linear ramp: computed on an 8x coarser grid and resized, which is exact and much cheaper.
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


def photo_crop(
    rng: np.random.Generator, h: int, w: int, max_zoom: float, interpolation: int
) -> np.ndarray | None:
    """A random crop of a random sample photograph resized to h x w (zoomed in up to
    ``max_zoom`` beyond covering the frame); None when no photographs are installed."""
    photos = _photos()
    if not photos:
        return None
    img = photos[rng.integers(len(photos))]
    ph, pw = img.shape[:2]
    scale = max(h / ph, w / pw) * rng.uniform(1.0, max_zoom)
    ch, cw = min(ph, math.ceil(h / scale)), min(pw, math.ceil(w / scale))
    y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    return cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=interpolation)


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray | None:
    out = photo_crop(rng, h, w, 1.6, cv2.INTER_AREA)
    if out is None:
        return None
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
