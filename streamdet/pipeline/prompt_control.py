"""Prompt changes during a run, from any number of places (a prompt file, the live web view).

The inference worker polls a ``PromptSource`` between frames; whatever it returns is applied
before the next frame, so a frame is never detected with half a change. Two kinds of source exist:
``PromptFile`` (re-read when the file changes; ``poll`` gives the new prompts) and
``PromptMailbox`` (a one-slot mailbox another thread, e.g. the web server, posts checked changes
into; ``poll`` gives a ``PromptUpdate`` with optional per-prompt thresholds). ``PromptSources``
polls several as one. Changes are checked when they are made (``check_update``), so a bad edit is
refused at its source with a one-line reason and the run never sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from streamdet.config.checks import fraction
from streamdet.detect.prompts import normalise_prompts
from streamdet.errors import ConfigError, StreamdetError

_log = logging.getLogger("streamdet.prompts")


@dataclass(frozen=True)
class PromptUpdate:
    """New prompts, and thresholds for some of them (None: keep the detector's thresholds)."""

    prompts: tuple[str, ...]
    thresholds: Mapping[str, float] | None = field(default=None, hash=False)


class PromptSource(Protocol):
    """Anything the inference worker can ask for a prompt change between frames."""

    def poll(self) -> Sequence[str] | PromptUpdate | None:
        """The change since the last call (prompts, or a ``PromptUpdate``), or None."""
        ...


def check_update(prompts: Any, thresholds: Any = None) -> PromptUpdate:
    """A checked ``PromptUpdate`` from untrusted input (JSON from the web view).

    prompts: a list of strings (normalised as everywhere: trimmed, one space, no duplicates).
    thresholds: None or a mapping {prompt: number in 0..1}, naming only prompts of the list.
    Raises ``PromptError`` / ``ConfigError`` with a one-line reason; nothing is changed then.
    """
    if isinstance(prompts, str) or not isinstance(prompts, list | tuple):
        raise ConfigError(f"prompts must be a list of strings, but got {type(prompts).__name__}")
    texts = normalise_prompts(prompts)
    if not texts:
        raise ConfigError("prompts must hold at least one prompt, e.g. ['a red car']")
    if thresholds is None:
        return PromptUpdate(texts, None)
    if not isinstance(thresholds, Mapping):
        raise ConfigError(
            f"thresholds must map prompts to numbers, but got {type(thresholds).__name__}"
        )
    out: dict[str, float] = {}
    for key, value in thresholds.items():
        name = " ".join(key.split()) if isinstance(key, str) else key
        if name not in texts:
            raise ConfigError(f"thresholds names {key!r}, which is not one of the prompts")
        out[name] = fraction(f"the threshold of '{name}'", value)
    return PromptUpdate(texts, MappingProxyType(out))


def as_update(change: Sequence[str] | PromptUpdate) -> PromptUpdate:
    """A source's change as a ``PromptUpdate`` (bare prompts keep the thresholds)."""
    if isinstance(change, PromptUpdate):
        return change
    return PromptUpdate(tuple(change), None)


def apply_update(detector: Any, change: Sequence[str] | PromptUpdate) -> bool:
    """Apply a change to ``detector`` between frames; False (logged, prompts kept) if refused.

    A change that the detector refuses (a ``StreamdetError``: e.g. a threshold it cannot take)
    must not end a live run: it is logged and the previous prompts stay.
    """
    update = as_update(change)
    try:
        if update.thresholds is None:
            detector.set_prompts(update.prompts)
        else:
            detector.set_prompts(update.prompts, thresholds=dict(update.thresholds))
    except StreamdetError as err:
        _log.warning("prompt change refused: %s; keeping the previous prompts", err)
        return False
    _log.info("prompts now %s", list(update.prompts))
    return True


class PromptMailbox:
    """A one-slot, thread-safe mailbox of prompt changes: ``post`` from any thread, ``poll``
    from the inference worker. A newer post replaces one not yet polled (the last edit wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: PromptUpdate | None = None

    def post(self, update: PromptUpdate) -> None:
        with self._lock:
            self._pending = update

    def poll(self) -> PromptUpdate | None:
        with self._lock:
            update, self._pending = self._pending, None
        return update


class PromptSources:
    """Several prompt sources polled as one; when more than one changed, the last one listed
    wins (the others' changes are superseded, as two edits in a row would be)."""

    def __init__(self, sources: Iterable[PromptSource | None]) -> None:
        self.sources = tuple(s for s in sources if s is not None)

    def poll(self) -> Sequence[str] | PromptUpdate | None:
        found = None
        for source in self.sources:
            change = source.poll()
            if change is not None:
                found = change
        return found
