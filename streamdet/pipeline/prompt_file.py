"""Prompts read from a text file that is re-read when it changes, so that a live run's prompts can
be edited without a restart.

Format: one prompt per line; blank lines and lines starting with ``#`` are ignored. The file is
looked at (one ``stat``) at most every ``interval`` seconds, between frames. A change that leaves
no valid prompt (an empty file, an editor's half-saved state, an over-long line) is logged and
ignored: the run keeps its previous prompts rather than stopping.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from streamdet.detect.prompts import normalise_prompts
from streamdet.errors import PromptError

_log = logging.getLogger("streamdet.prompts")


def read_prompt_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The prompts in ``path``; ``PromptError`` if it is unreadable or has none."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"prompt file '{p}' does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PromptError(f"cannot read prompt file '{p}': {err}") from None
    lines = [ln.strip() for ln in text.splitlines()]
    prompts = normalise_prompts([ln for ln in lines if ln and not ln.startswith("#")])
    if not prompts:
        raise PromptError(f"prompt file '{p}' has no prompts; write one per line, e.g. 'a red car'")
    return prompts


class PromptFile:
    """Watches a prompt file; ``poll()`` returns the new prompts when they changed, else None."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self._clock = clock
        self.prompts = read_prompt_file(self.path)
        self._stamp = self._stat()
        self._next_check = clock() + interval

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> tuple[str, ...] | None:
        now = self._clock()
        if now < self._next_check:
            return None
        self._next_check = now + self.interval
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            prompts = read_prompt_file(self.path)
        except PromptError as err:
            _log.warning("%s; keeping the prompts %s", err, list(self.prompts))
            return None
        if prompts == self.prompts:
            return None
        _log.info("prompts changed in %s: %s", self.path, list(prompts))
        self.prompts = prompts
        return prompts
