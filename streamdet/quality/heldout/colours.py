"""Colour shades of the held-out generator: each colour name is a region of HSV, sampled anew per
object, never the training palette.

The training generator paints each colour name as one BGR value (``synth.vocabulary.COLOURS``)
jittered by at most 14 per channel. Here a name is a range of hue, saturation and value that
people would still call that name (dark and light reds, yellowish and bluish greens, violet and
magenta-ish purples), and a sampled shade within ``PALETTE_MARGIN`` per channel (black: 16)
of the training value is drawn again, so no held-out object has a colour the model was trained
on. The ranges keep gaps between neighbouring names (red/orange/yellow, blue/purple), so a shade
is never ambiguous.

Only the colour NAMES come from the training side (``synth.vocabulary``); the shades are ours.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from streamdet.synth.vocabulary import COLOURS

#: A held-out shade differs from the training colour of its name by more than this in some
#: channel (0-255): beyond the training generator's +-14 jitter.
PALETTE_MARGIN = 24
#: Black has little room (any black is near (22, 22, 22)): just beyond the jitter, which makes
#: held-out blacks tinted (brown, blue, green blacks) or a little lighter.
MARGINS: dict[str, int] = {"black": 16}


@dataclass(frozen=True)
class ShadeRange:
    """Hue (degrees; ``hue[0] > hue[1]`` wraps through 0), saturation and value ranges (0-1)."""

    hue: tuple[float, float]
    saturation: tuple[float, float]
    value: tuple[float, float]


SHADES: dict[str, ShadeRange] = {
    "red": ShadeRange((346.0, 8.0), (0.62, 1.0), (0.50, 0.95)),
    "orange": ShadeRange((19.0, 34.0), (0.75, 1.0), (0.80, 1.0)),
    "yellow": ShadeRange((47.0, 60.0), (0.60, 1.0), (0.80, 1.0)),
    "green": ShadeRange((92.0, 150.0), (0.50, 0.95), (0.40, 0.85)),
    "blue": ShadeRange((203.0, 236.0), (0.60, 1.0), (0.45, 0.95)),
    "purple": ShadeRange((268.0, 302.0), (0.45, 0.85), (0.38, 0.80)),
    "white": ShadeRange((0.0, 360.0), (0.0, 0.07), (0.87, 1.0)),
    "black": ShadeRange((0.0, 360.0), (0.0, 0.35), (0.03, 0.21)),
}
assert set(SHADES) == set(COLOURS), "every vocabulary colour needs a held-out shade range"


def training_rgb(name: str) -> np.ndarray:
    """The training generator's colour of ``name`` as RGB (its palette is BGR)."""
    return np.asarray(COLOURS[name][::-1], np.float64)


def margin(name: str) -> int:
    """How far (max over channels) a shade of ``name`` stays from the training colour."""
    return MARGINS.get(name, PALETTE_MARGIN)


def _hue(rng: np.random.Generator, lo: float, hi: float) -> float:
    span = (hi - lo) % 360.0 or 360.0
    return float((lo + rng.uniform(0.0, span)) % 360.0)


def sample_shade(rng: np.random.Generator, name: str) -> np.ndarray:
    """An RGB shade (3 floats, 0-255) of colour ``name``, away from the training palette."""
    r = SHADES[name]
    train = training_rgb(name)
    rgb = train
    for _ in range(100):
        h = _hue(rng, *r.hue) / 360.0
        s, v = rng.uniform(*r.saturation), rng.uniform(*r.value)
        rgb = np.asarray(colorsys.hsv_to_rgb(h, s, v), np.float64) * 255.0
        if np.abs(rgb - train).max() > margin(name):
            break
    return rgb


def is_named(rgb: np.ndarray, name: str) -> bool:
    """Whether an RGB shade (0-255) lies in the range of colour ``name`` (for tests)."""
    r = SHADES[name]
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, np.float64) / 255.0))
    h *= 360.0
    lo, hi = r.hue
    in_hue = (lo <= h <= hi) if lo <= hi else (h >= lo or h <= hi)
    eps = 1e-6
    return (
        in_hue
        and r.saturation[0] - eps <= s <= r.saturation[1] + eps
        and r.value[0] - eps <= v <= r.value[1] + eps
    )
