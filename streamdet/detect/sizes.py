"""Size words in prompts ("a small yellow square", "a large truck") read as sizes in the frame.

A window classifier cannot tell how large an object is in the frame: it sees one window, resized
to the model's input, so a small object in a small window looks exactly like a large object in a
large one, and CLIP-style models judge "small" relative to what they see. The detector does know
the frame, so it takes the size word out of the prompt, scores the rest ("a yellow square"), and
keeps only the boxes whose size matches: the longer side of the box against the frame's shorter
side, at most :data:`SMALL_MAX` for "small", at least :data:`LARGE_MIN` for "large". A turned
object's box is longer than the object (up to 1.41x for a square), so "small" reaches a little
past the size small objects are drawn at. Prompts without a leading size word are scored as they
are and keep every box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamdet.types import Detections

#: Longest box side over the frame's shorter side: "small" boxes are at most this ... An
#: object's size is its extent before it turns (small: up to 0.15 of the frame's shorter side in
#: both scene generators), and a square turned by 45 degrees has a box 1.41x as long: 0.21. At
#: 0.2 those boxes were dropped (docs/benchmarks.md, "Size words").
SMALL_MAX = 0.22
#: ... and "large" ones at least this (they overlap: boxes are found to a few pixels).
LARGE_MIN = 0.17

#: Size words understood at the start of a prompt (after "a"/"an"/"the"), by the size they mean.
SIZE_WORDS: dict[str, str] = {
    "small": "small",
    "tiny": "small",
    "little": "small",
    "large": "large",
    "big": "large",
    "huge": "large",
}

_ARTICLES = ("a", "an", "the")


@dataclass(frozen=True)
class SizedPrompt:
    """A prompt split into the text the model scores and the frame size its boxes must have."""

    text: str  # what the model scores: the prompt without its size word
    size: str | None  # "small", "large", or None (any size)

    @property
    def extent_range(self) -> tuple[float, float]:
        """(min, max) of a box's longer side over the frame's shorter side."""
        if self.size == "small":
            return 0.0, SMALL_MAX
        if self.size == "large":
            return LARGE_MIN, np.inf
        return 0.0, np.inf


def split_size(prompt: str) -> SizedPrompt:
    """Split off a leading size word: "a small yellow square" -> ("a yellow square", "small"),
    "a big orange car" -> ("an orange car", "large"). Prompts without a leading size word, or with
    nothing after it, are left alone."""
    words = prompt.split()
    start = 1 if words and words[0].lower() in _ARTICLES else 0
    if len(words) <= start + 1 or words[start].lower() not in SIZE_WORDS:
        return SizedPrompt(prompt, None)
    rest = words[start + 1 :]
    if start:  # the article follows the next word: "a large orange" -> "an orange"
        article = words[0].lower()
        if article != "the":
            article = "an" if rest[0][0].lower() in "aeiou" else "a"
        rest = [article, *rest]
    return SizedPrompt(" ".join(rest), SIZE_WORDS[words[start].lower()])


def keep_sized(
    detections: Detections, prompts: tuple[SizedPrompt, ...], frame_hw: tuple[int, int]
) -> Detections:
    """The detections whose box size matches their prompt's size word (all, when none has one)."""
    if not len(detections) or all(p.size is None for p in prompts):
        return detections
    ranges = np.array([p.extent_range for p in prompts], dtype=np.float64)  # (K, 2)
    sides = detections.xyxy[:, 2:] - detections.xyxy[:, :2]
    extent = sides.max(axis=1) / max(1, min(frame_hw))
    lo, hi = ranges[detections.class_id].T
    return detections[(extent >= lo) & (extent <= hi)]


__all__ = ["LARGE_MIN", "SIZE_WORDS", "SMALL_MAX", "SizedPrompt", "keep_sized", "split_size"]
