"""Camera and codec effects for domain-randomised training frames.

Video frames are never the clean, anti-aliased drawings of the scene generator: light changes
(gain, gamma, a colour cast, a brightness gradient, shadows), lenses and motion blur, sensors add
noise, and codecs leave JPEG ringing, 8 x 8 blocks, soft chroma (4:2:0) and up-scaled low
resolution. :func:`degrade` applies a random selection of these to a whole rendered frame,
after the objects are drawn, so that crops and tokens are learnt from what a detector would
see. The effects keep each object's colour name (casts and gains are mild) and never move
pixels (owner maps stay valid); blur is held back on frames with small objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Camera:
    """How hard :func:`degrade` hits a frame: the gain range, the share of frames blurred, the
    largest Gaussian blur (sigma) and motion blur (pixels), the object size from which blur is
    at full strength (a smaller smallest object gets its share of it, but at least
    ``least_blur``), the strongest sensor noise and down-scaling."""

    gain: tuple[float, float] = (0.7, 1.25)
    blur_chance: float = 0.4
    sigma: float = 1.6
    motion: float = 8.0
    full_blur_from: float = 16.0
    least_blur: float = 0.4
    noise: float = 9.0
    downscale: float = 2.5


#: The recipe's camera effects (stages 5 to 7).
MILD = Camera()
#: Dim light, strong defocus and motion blur and low bit-rates, as dashcams at dusk show them
#: (``--hard-camera``); blur is scaled down for objects under 40 pixels so that they stay
#: recognisable (a 12-pixel object gets at most 0.3 of it).
HARD = Camera(
    gain=(0.5, 1.3),
    blur_chance=0.6,
    sigma=3.5,
    motion=20.0,
    full_blur_from=40.0,
    least_blur=0.3,
    noise=14.0,
    downscale=3.5,
)


def _lighting(rng: np.random.Generator, img: np.ndarray, camera: Camera) -> np.ndarray:
    """Gain, gamma, a mild colour cast and a linear brightness gradient, on float 0..255."""
    h, w = img.shape[:2]
    out = img * rng.uniform(*camera.gain)
    cast = 1.0 + rng.uniform(-0.07, 0.07, size=3)
    out = out * cast.astype(np.float32)
    if rng.random() < 0.5:
        theta = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xs * math.cos(theta) + ys * math.sin(theta)) / max(h, w)
        t = t - t.mean()
        out = out * (1.0 + rng.uniform(0.1, 0.4) * t)[..., None]
    gamma = rng.uniform(0.75, 1.35)
    out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** gamma
    return out


def _shadow(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A soft shadow: a random polygon darkened by 20 to 45 percent, edges blurred."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    k = int(rng.integers(3, 7))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    radius = rng.uniform(0.2, 0.6) * max(h, w)
    angles = np.sort(rng.uniform(0, 2 * math.pi, k))
    radii = radius * rng.uniform(0.5, 1.0, k)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(2, 12))
    return img * (1.0 - rng.uniform(0.2, 0.45) * mask)[..., None]


def _blur(rng: np.random.Generator, img: np.ndarray, smallest: float, camera: Camera) -> np.ndarray:
    """Gaussian (defocus) or linear motion blur, weaker when the smallest object is small."""
    limit = float(np.clip(smallest / camera.full_blur_from, camera.least_blur, 1.0))
    if rng.random() < 0.5:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, camera.sigma) * limit)
    length = max(2, round(rng.uniform(2, camera.motion) * limit))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0 / length
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel)


def _jpeg(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """JPEG re-encoding at a random quality (ringing and 8 x 8 blocks)."""
    quality = int(rng.integers(15, 90))
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else img


def _chroma_420(img: np.ndarray) -> np.ndarray:
    """Chroma at half resolution, as 4:2:0 video stores it: colour edges go soft."""
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    h, w = img.shape[:2]
    small = cv2.resize(ycc[..., 1:], (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    ycc[..., 1:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)


def _low_resolution(
    rng: np.random.Generator, img: np.ndarray, smallest: float, camera: Camera
) -> np.ndarray:
    """Down-scale and up-scale again (a low bit-rate stream resized for display)."""
    h, w = img.shape[:2]
    factor = rng.uniform(1.3, camera.downscale if smallest >= 24 else 1.6)
    small = cv2.resize(
        img, (max(8, round(w / factor)), max(8, round(h / factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def degrade(
    rng: np.random.Generator, image: np.ndarray, *, smallest: float = 64.0, camera: Camera = MILD
) -> np.ndarray:
    """A copy of ``image`` (H x W x 3 uint8 BGR) with random camera and codec effects.

    ``smallest`` is the smallest object's extent in pixels: blur and down-scaling are milder
    when it is small, so that a 12-pixel object stays visible (and its labels stay true).
    ``camera`` says how strong the effects may be (:data:`MILD`, :data:`HARD`); :data:`MILD`
    draws the random numbers it drew before :class:`Camera` existed (the recipe is unchanged).
    """
    out = image.astype(np.float32)
    if rng.random() < 0.7:
        out = _lighting(rng, out, camera)
    if rng.random() < 0.25:
        out = _shadow(rng, out)
    if rng.random() < camera.blur_chance:
        out = _blur(rng, out, smallest, camera)
    if rng.random() < 0.4:
        out = out + rng.normal(0, rng.uniform(2, camera.noise), out.shape).astype(np.float32)
    img = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        img = _low_resolution(rng, img, smallest, camera)
    if rng.random() < 0.3:
        img = _chroma_420(img)
    if rng.random() < 0.5:
        img = _jpeg(rng, img)
    return img


__all__ = ["HARD", "MILD", "Camera", "degrade"]
