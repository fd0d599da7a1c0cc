"""The scene generator's vocabulary and what a prompt means in it.

Scenes hold objects of a known vocabulary: eight colours, six flat shapes and five side-view
everyday objects, each small or large. :func:`parse_prompt` turns phrasings like "a small red
circle", "a triangle" or "a green shape" into a :class:`Query`, which says which objects a prompt
means; the quality benchmark and the built-in model's training labels rest on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from streamdet.detect.sizes import SIZE_WORDS
from streamdet.errors import PromptError

if TYPE_CHECKING:
    from streamdet.synth.scenes import SceneObject

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
