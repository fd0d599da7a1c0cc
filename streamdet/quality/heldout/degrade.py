"""What a camera and a codec do to a held-out frame: lighting, blur, sensor noise, compression.

The training generator renders clean frames (anti-aliased shapes, no noise, no compression).
Real video is darker or brighter, tinted, unevenly lit, a little out of focus or smeared by
motion, noisy, and compressed: stills here go through JPEG at quality 25-75 and videos through
H.264 (libx264 by PyAV, CRF 28-36) with a slow flicker of the light. Every parameter is drawn
from the frame's random generator, so a seed gives the same frame.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Camera:
    """One frame's (or video's) lighting, optics, sensor and compression.

    gain, gamma: overall brightness and tone curve; tint: red and blue channel factors (colour
    temperature); falloff: strength (0..0.35) and direction (radians) of uneven light across the
    frame; blur: Gaussian sigma in pixels (0: sharp); motion: length in pixels of a motion smear
    (0: none) and its direction; noise: sensor noise sigma (0-255 scale); quality: JPEG quality
    for stills, crf: H.264 constant rate factor for videos.
    """

    gain: float = 1.0
    gamma: float = 1.0
    tint: tuple[float, float] = (1.0, 1.0)
    falloff: tuple[float, float] = (0.0, 0.0)
    blur: float = 0.0
    motion: tuple[int, float] = (0, 0.0)
    noise: float = 0.0
    quality: int | None = None
    crf: int = 30


def sample_camera(rng: np.random.Generator) -> Camera:
    """A random camera: most frames get some of everything, a few are nearly clean."""
    warm = float(rng.uniform(-0.08, 0.08))
    return Camera(
        gain=float(rng.uniform(0.65, 1.25)),
        gamma=float(rng.uniform(0.8, 1.25)),
        tint=(1.0 + warm, 1.0 - warm),
        falloff=(float(rng.uniform(0.0, 0.35)), float(rng.uniform(0, 2 * math.pi))),
        blur=float(rng.uniform(0.4, 1.4)) if rng.random() < 0.5 else 0.0,
        motion=(int(rng.integers(3, 9)), float(rng.uniform(0, math.pi)))
        if rng.random() < 0.2
        else (0, 0.0),
        noise=float(rng.uniform(1.5, 7.0)) if rng.random() < 0.7 else 0.0,
        quality=int(rng.integers(25, 76)) if rng.random() < 0.85 else None,
        crf=int(rng.integers(28, 37)),
    )


def light(image: np.ndarray, camera: Camera, flicker: float = 1.0) -> np.ndarray:
    """Lighting on an RGB float32 frame (0-255): gain (times ``flicker``), uneven light, tint,
    tone curve."""
    h, w = image.shape[:2]
    strength, angle = camera.falloff
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xs / w - 0.5) * math.cos(angle) + (ys / h - 0.5) * math.sin(angle)) * 2.0
    field = camera.gain * flicker * (1.0 + strength * ramp)
    out = image * field[..., None]
    out[..., 0] *= camera.tint[0]
    out[..., 2] *= camera.tint[1]
    out = np.clip(out / 255.0, 0.0, 1.0) ** camera.gamma * 255.0
    return out.astype(np.float32)


def optics(image: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Blur, motion smear and sensor noise on a float32 frame; returns uint8 (same channels)."""
    out = image
    if camera.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), camera.blur)
    length, angle = camera.motion
    if length > 1:
        kernel = np.zeros((length, length), np.float32)
        c = (length - 1) / 2
        for t in np.linspace(-c, c, 4 * length):
            x, y = round(c + t * math.cos(angle)), round(c + t * math.sin(angle))
            kernel[y, x] = 1.0
        out = cv2.filter2D(out, -1, kernel / kernel.sum())
    if camera.noise > 0:
        out = out + rng.normal(0.0, camera.noise, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int | None) -> np.ndarray:
    """The frame after a JPEG round trip at ``quality`` (None: unchanged); uint8 BGR."""
    if quality is None:
        return image
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always has a JPEG encoder
        return image
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def h264(frames: list[np.ndarray], crf: int) -> tuple[list[np.ndarray], str]:
    """The frames (uint8 BGR, one size) after an H.264 round trip, and the codec used.

    Falls back to JPEG per frame at a matching quality when PyAV has no libx264 or the size is
    odd (4:2:0 needs even sides); the codec name says which happened.
    """
    if not frames:
        return [], "none"
    h, w = frames[0].shape[:2]
    try:
        import av

        if h % 2 or w % 2 or "libx264" not in av.codecs_available:
            raise RuntimeError("no H.264 for this size")
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="matroska") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            for f in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
            out.mux(stream.encode())
        buffer.seek(0)
        with av.open(buffer) as src:
            decoded = [f.to_ndarray(format="bgr24") for f in src.decode(video=0)]
        if len(decoded) != len(frames):
            raise RuntimeError("the codec dropped frames")
        return decoded, "h264"
    except Exception:  # any codec failure: the JPEG fallback, named in the result
        quality = max(20, 100 - 2 * crf)
        return [jpeg(f, quality) for f in frames], "jpeg"
