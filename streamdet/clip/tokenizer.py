"""CLIP prompt tokenisation with the `tokenizers` library alone (no transformers at run time).

The exported folder carries the Hugging Face ``tokenizer.json``; it already adds the start and end
tokens and lower-cases, so this module only pads to the fixed context length of the text graph
and refuses prompts the model cannot read whole (truncating would silently change their meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamdet.errors import ModelFormatError, PromptError


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ClipTokenizer:
    """Turns prompts into the ``input_ids``/``attention_mask`` pair of the text graph."""

    def __init__(self, tokenizer_file: Path, *, context_length: int, pad_id: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as error:  # tokenizers raises a bare Exception for bad files
            raise ModelFormatError(
                f"cannot read tokenizer {tokenizer_file} ({error}); re-export the model"
            ) from None
        # The file may carry padding/truncation settings of its own: we do both explicitly.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.context_length = context_length
        self.pad_id = pad_id

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, both (K, context_length) int64.

        Raises PromptError for a non-string, blank or over-long prompt.
        """
        if isinstance(texts, str):
            raise PromptError(
                f"prompts must be a sequence of strings, but got one string '{_shorten(texts)}'; "
                "wrap it in a list"
            )
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise PromptError(f"prompt {i} must be a string, but got {type(text).__name__}")
            if not text.strip():
                raise PromptError(f"prompt {i} is blank; give every prompt some words")
        length = self.context_length
        ids = np.full((len(texts), length), self.pad_id, dtype=np.int64)  # (K, L)
        mask = np.zeros((len(texts), length), dtype=np.int64)  # (K, L)
        if not texts:
            return ids, mask
        for row, (text, encoding) in enumerate(
            zip(texts, self._tokenizer.encode_batch(texts), strict=True)
        ):
            tokens = encoding.ids
            if len(tokens) > length:
                raise PromptError(
                    f"prompt '{_shorten(text)}' is {len(tokens)} tokens; the model reads at most "
                    f"{length}: shorten it"
                )
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return ids, mask
