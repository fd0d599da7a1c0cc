"""Prompt validation and the text-embedding cache.

Text embeddings depend only on the model and the prompt text, so each is computed once: kept in
memory, and on disk under ``<cache_dir>/text/<model checksum>/`` so the next run starts without
touching the text tower. Changing prompts between frames costs one dictionary lookup per prompt
already seen.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from streamdet.errors import PromptError

log = logging.getLogger("streamdet")

#: Characters allowed in one prompt; the token limit of the model is checked by the tokenizer.
MAX_PROMPT_CHARS = 300
#: Prompts per detector; each costs a column of scores, not a model pass, but a limit catches
#: a file of prompts passed by mistake.
MAX_PROMPTS = 256


def normalise_prompts(
    prompts: str | Iterable[str], *, max_count: int = MAX_PROMPTS
) -> tuple[str, ...]:
    """Validate prompts and return them stripped, as a tuple. A single string is one prompt."""
    if isinstance(prompts, str):
        prompts = [prompts]
    try:
        items = list(prompts)
    except TypeError:
        raise PromptError(
            f"prompts must be a list of strings, but got {type(prompts).__name__}"
        ) from None
    out: list[str] = []
    for i, p in enumerate(items):
        if not isinstance(p, str):
            raise PromptError(f"prompt {i} must be a string, but got {type(p).__name__}")
        text = " ".join(p.split())
        if not text:
            raise PromptError(f"prompt {i} is empty or blank; give text such as 'a red car'")
        if len(text) > MAX_PROMPT_CHARS:
            raise PromptError(
                f"prompt {i} is {len(text)} characters long (at most {MAX_PROMPT_CHARS}); "
                "describe the object in a short phrase"
            )
        if text in out:
            raise PromptError(f"prompt '{text}' is given twice; give each prompt once")
        out.append(text)
    if len(out) > max_count:
        raise PromptError(f"{len(out)} prompts given, at most {max_count} are allowed")
    return tuple(out)


class TextEmbeddingCache:
    """Embeddings of prompt texts for one model, in memory and on disk.

    ``encode`` is the model's text tower: a list of texts -> (K, D) L2-normalised float32.
    ``model_id`` identifies the model (its checksum); it names the disk folder.
    """

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        model_id: str,
        cache_dir: Path | None,
    ) -> None:
        self._encode = encode
        self._memory: dict[str, np.ndarray] = {}
        self._dir = Path(cache_dir) / "text" / model_id[:32] if cache_dir else None
        self._disk_ok = self._dir is not None
        self.computed = 0  # texts that went through the text tower (for tests and stats)

    def _path(self, text: str) -> Path:
        assert self._dir is not None
        return self._dir / (hashlib.sha256(text.encode("utf-8")).hexdigest()[:40] + ".npy")

    def _load(self, text: str) -> np.ndarray | None:
        if not self._disk_ok:
            return None
        try:
            emb = np.load(self._path(text), allow_pickle=False)
        except (OSError, ValueError):
            return None
        # A damaged or foreign file is recomputed, never trusted: one finite vector per text.
        if emb.ndim != 1 or emb.dtype.kind != "f" or not np.isfinite(emb).all():
            return None
        return emb

    def _store(self, text: str, emb: np.ndarray) -> None:
        if not self._disk_ok:
            return
        try:
            assert self._dir is not None
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, emb, allow_pickle=False)
            os.replace(tmp, self._path(text))
        except OSError as exc:  # a read-only cache must not stop detection
            log.warning(
                "text embedding cache %s is not writable (%s); using memory only", self._dir, exc
            )
            self._disk_ok = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(K, D) embeddings of ``texts`` in order; only unseen texts reach the text tower."""
        missing = []
        for t in texts:
            if t not in self._memory:
                cached = self._load(t)
                if cached is not None:
                    self._memory[t] = cached
                else:
                    missing.append(t)
        missing = list(dict.fromkeys(missing))
        if missing:
            fresh = np.asarray(self._encode(missing), np.float32)
            self.computed += len(missing)
            for t, e in zip(missing, fresh, strict=True):
                self._memory[t] = e
                self._store(t, e)
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([self._memory[t] for t in texts])

    def embed_templated(self, texts: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """Prompt ensembling: mean of the L2-normalised embeddings of every template, renormalised.

        With the single template "{}" this is ``embed(texts)``.
        """
        if tuple(templates) == ("{}",):
            return self.embed(texts)
        filled = [tpl.format(t) for t in texts for tpl in templates]
        emb = self.embed(filled).reshape(len(texts), len(templates), -1).mean(axis=1)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)
