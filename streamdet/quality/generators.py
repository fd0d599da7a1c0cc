"""The scene generators the quality benchmark runs, by name.

``train``: ``streamdet.synth.scenes``, the generator the built-in model was trained on
(``streamdet.quality.dataset.build_dataset``). ``heldout``: ``streamdet.quality.heldout``, drawn
independently and never used for training or for choosing settings: the gap between the two
says how much of the training generator's score is memory of it.
"""

from __future__ import annotations

from collections.abc import Callable

from streamdet.quality.dataset import Dataset, build_dataset
from streamdet.quality.heldout import build_heldout_dataset

#: Generator name -> dataset builder (both take the same arguments).
GENERATORS: dict[str, Callable[..., Dataset]] = {
    "train": build_dataset,
    "heldout": build_heldout_dataset,
}
#: ``--generator`` choices: one generator, or ``both`` side by side.
GENERATOR_CHOICES: dict[str, tuple[str, ...]] = {
    "both": ("train", "heldout"),
    "train": ("train",),
    "heldout": ("heldout",),
}
