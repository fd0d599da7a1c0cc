"""Zero-shot classification of a whole image or frame against text labels.

The image is prepared the way CLIP was trained: the short side resized to the model input and the
centre cropped (``crop="center"``), or the whole frame letterboxed into a square with the model's
mean colour (``crop="pad"``) so nothing at the edges is lost. Probabilities are a softmax over the
labels of the CLIP logits; labels can be ensembled over templates (``IMAGENET_TEMPLATES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamdet.config import SETTINGS, resolve_config
from streamdet.detect.frames import as_bgr
from streamdet.detect.imagenet import IMAGENET_CLASSES, IMAGENET_TEMPLATES
from streamdet.detect.model import DEFAULT_MODEL, LoadedModel
from streamdet.detect.occlusion import letterbox_square
from streamdet.detect.prompts import normalise_prompts
from streamdet.detect.scoring import window_logits
from streamdet.errors import ConfigError, PromptError

CROPS = ("center", "pad")
#: Labels per classification (ImageNet has 1000).
MAX_LABELS = 10_000


@dataclass(frozen=True)
class Prediction:
    """One label with its probability among the labels asked about."""

    label: str
    index: int
    probability: float


def center_crop_square(frame: np.ndarray, size: int) -> np.ndarray:
    """CLIP's own preparation: resize the short side to ``size``, crop the centre. float32."""
    h, w = frame.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(frame, (nw, nh), interpolation=interp).astype(np.float32)
    top, left = (nh - size) // 2, (nw - size) // 2
    return resized[top : top + size, left : left + size]


class Classifier:
    """Zero-shot classifier: ``Classifier(model).classify(image, labels)``."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, **runtime: Any) -> None:
        """runtime: the runtime settings of ``streamdet.config.RuntimeConfig`` by name (device,
        backend, precision, allow_fallback, threads, max_batch, cache_dir); the detector's other
        settings mean nothing to a classifier and are refused."""
        other = sorted(k for k in runtime if SETTINGS.get(k, ("runtime",))[0] != "runtime")
        if other:
            raise ConfigError(
                f"a Classifier takes runtime settings only (device, backend, precision, ...), "
                f"not {', '.join(other)}"
            )
        self.model = LoadedModel.open(model, resolve_config(runtime).runtime)

    def embed_image(self, image: np.ndarray, crop: str = "center") -> np.ndarray:
        """(D,) embedding of one HxWx3 uint8 BGR image."""
        if crop not in CROPS:
            raise ConfigError(f"crop must be one of {', '.join(CROPS)}, but got {crop!r}")
        frame = as_bgr(image)
        size = self.model.image_size
        if crop == "center":
            pixels = center_crop_square(frame, size)
        else:
            pixels = letterbox_square(frame, size, self.model.fill)[0]
        return self.model.embed_images(pixels[None])[0]

    def classify(
        self,
        image: np.ndarray,
        labels: Iterable[str],
        *,
        templates: Sequence[str] = ("{}",),
        top_k: int = 5,
        crop: str = "center",
    ) -> list[Prediction]:
        """The ``top_k`` most probable labels for the image, most probable first."""
        names = normalise_prompts(labels, max_count=MAX_LABELS)
        if len(names) < 2:
            raise PromptError("give at least two labels to choose between, e.g. 'a cat,a dog'")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a positive whole number, but got {top_k!r}")
        text = self.model.texts.embed_templated(names, templates)  # (K, D)
        image_emb = self.embed_image(image, crop)  # (D,)
        logits = window_logits(image_emb[None], text, self.model.logit_scale)[0]  # (K,)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")[:top_k]
        return [Prediction(names[i], int(i), float(probs[i])) for i in order]

    def classify_imagenet(
        self, image: np.ndarray, *, top_k: int = 5, ensemble: bool = False, crop: str = "center"
    ) -> list[Prediction]:
        """Top-k of the 1000 ImageNet classes ("a photo of a {}." or the 7-template ensemble)."""
        templates = IMAGENET_TEMPLATES if ensemble else ("a photo of a {}.",)
        return self.classify(image, IMAGENET_CLASSES, templates=templates, top_k=top_k, crop=crop)
