"""Where training crops are cut, and how: the square crops of ``data.make_batch``.

Three sorts (:func:`crop_box`): around an object, around part of one, or anywhere, like the
windows a detector runs; and verification views (:func:`view_box`), centred on one object at the
margins :mod:`streamdet.detect.verify` uses. :func:`cut` takes a crop out of a frame, padding
what lies past its edge; :func:`resize_crop` resizes it as a detector might.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamdet.clip.export import CLIP_MEAN
from streamdet.config.settings import VerifyConfig

# Verification views (``make_batch``'s ``verify_crops``): square crops centred on one object at
# these multiples of its longer side, the views :mod:`streamdet.detect.verify` scores by default
# (the built-in model's dense method scores the 1.5x view alone, its windows method both).
VIEW_MARGINS: tuple[float, ...] = VerifyConfig.margins
# What a crop shows past the frame's edge (RGB): the model's mean colour, the detector's fill.
PAD_RGB: tuple[int, int, int] = tuple(round(255 * m) for m in CLIP_MEAN)  # type: ignore[assignment]


def crop_box(
    rng: np.random.Generator, h: int, w: int, boxes: np.ndarray, *, easy: bool = False
) -> tuple[int, int, int]:
    """A square crop (x, y, side) inside the frame, of one of three sorts: around an object,
    around part of an object, or anywhere. ``easy`` crops frame a whole object at 1.2x to 2.5x."""
    short = min(h, w)
    if easy and len(boxes):
        b = boxes[rng.integers(len(boxes))]
        extent = max(b[2] - b[0], b[3] - b[1], 4.0)
        side = extent * rng.uniform(1.2, 2.5)
        slack = (side - extent) / 2
        cx = (b[0] + b[2]) / 2 + rng.uniform(-slack, slack)
        cy = (b[1] + b[3]) / 2 + rng.uniform(-slack, slack)
        side = round(min(max(side, 12.0), short))
        x = round(min(max(cx - side / 2, 0), w - side))
        y = round(min(max(cy - side / 2, 0), h - side))
        return x, y, side
    mode = rng.random()
    if len(boxes) and mode < 0.75:
        b = boxes[rng.integers(len(boxes))]
        extent = max(b[2] - b[0], b[3] - b[1], 4.0)
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if mode < 0.6:  # the whole object, 1.1x to 4.5x its size
            side = extent * math.exp(rng.uniform(math.log(1.1), math.log(4.5)))
            slack = max(0.0, side - extent) / 2
            cx += rng.uniform(-slack, slack)
            cy += rng.uniform(-slack, slack)
        else:  # part of it
            side = extent * math.exp(rng.uniform(math.log(0.6), math.log(2.5)))
            cx += rng.uniform(-0.6, 0.6) * side
            cy += rng.uniform(-0.6, 0.6) * side
    else:
        side = short * math.exp(rng.uniform(math.log(0.12), math.log(0.9)))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    side = round(min(max(side, 12.0), short))
    x = round(min(max(cx - side / 2, 0), w - side))
    y = round(min(max(cy - side / 2, 0), h - side))
    return x, y, side


def view_box(
    rng: np.random.Generator, h: int, w: int, boxes: np.ndarray, *, pad: bool = False
) -> tuple[int, int, int]:
    """A verification view (x, y, side): a square centred on one object's visible box, one of
    :data:`VIEW_MARGINS` x its longer side. Where it would hang over the frame's edge it moves
    inside the frame, or with ``pad`` stays centred and may reach past the edge (the caller pads
    there with the model's mean colour, as :func:`streamdet.detect.verify.box_views` does)."""
    b = boxes[rng.integers(len(boxes))]
    extent = max(b[2] - b[0], b[3] - b[1], 4.0)
    side = extent * VIEW_MARGINS[int(rng.integers(len(VIEW_MARGINS)))]
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    if pad:
        side = round(max(side, 12.0))
        return round(cx - side / 2), round(cy - side / 2), side
    side = round(min(max(side, 12.0), min(h, w)))
    x = round(min(max(cx - side / 2, 0), w - side))
    y = round(min(max(cy - side / 2, 0), h - side))
    return x, y, side


def cut(image: np.ndarray, crop: tuple[int, int, int], fill: object) -> np.ndarray:
    """The square ``crop`` (x, y, side) of ``image``; parts past its edges are ``fill``."""
    x, y, side = crop
    h, w = image.shape[:2]
    if x >= 0 and y >= 0 and x + side <= w and y + side <= h:
        return image[y : y + side, x : x + side]
    out = np.empty((side, side, *image.shape[2:]), image.dtype)
    out[...] = fill
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 > x0 and y1 > y0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
    return out


def resize_crop(rng: np.random.Generator, crop: np.ndarray, size: int) -> np.ndarray:
    """Resize like a detector might: area averaging or bilinear, picked at random."""
    interp = cv2.INTER_AREA if rng.random() < 0.6 else cv2.INTER_LINEAR
    if crop.shape[0] < size:
        interp = cv2.INTER_LINEAR if rng.random() < 0.7 else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


__all__ = ["PAD_RGB", "VIEW_MARGINS", "crop_box", "cut", "resize_crop", "view_box"]
