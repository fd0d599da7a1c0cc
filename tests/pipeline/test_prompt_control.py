"""Prompt changes from several places, checked at their source and applied between frames."""

from __future__ import annotations

import logging
import threading

import pytest
from fakes import FakeDetector, FakeSource, ListSink

from streamdet.errors import ConfigError, PromptError
from streamdet.pipeline.prompt_control import (
    PromptMailbox,
    PromptSources,
    PromptUpdate,
    apply_update,
    check_update,
)
from streamdet.pipeline.runner import run


def test_check_update_normalises_and_keeps_thresholds():
    update = check_update(["  a   red car ", "a dog"], {"a red  car": 0.25, "a dog": 1})
    assert update.prompts == ("a red car", "a dog")
    assert dict(update.thresholds) == {"a red car": 0.25, "a dog": 1.0}
    assert check_update(["a dog"]).thresholds is None


@pytest.mark.parametrize(
    ("prompts", "thresholds", "words"),
    [
        ("a dog", None, "must be a list"),
        ([], None, "at least one"),
        (["a dog", "a dog"], None, "given twice"),
        ([""], None, "empty or blank"),
        ([3], None, "must be a string"),
        (["x" * 301], None, "characters long"),
        (["a dog"], {"a dog": 1.5}, "between 0 and 1"),
        (["a dog"], {"a dog": "0.3"}, "between 0 and 1"),
        (["a dog"], {"a dog": True}, "between 0 and 1"),
        (["a dog"], {"a cat": 0.3}, "not one of the prompts"),
        (["a dog"], [0.3], "must map prompts"),
    ],
)
def test_bad_updates_are_one_line_errors(prompts, thresholds, words):
    with pytest.raises((ConfigError, PromptError), match=words) as info:
        check_update(prompts, thresholds)
    assert "\n" not in str(info.value)


def test_the_mailbox_keeps_the_last_post_until_polled():
    box = PromptMailbox()
    assert box.poll() is None
    box.post(PromptUpdate(("a",)))
    box.post(PromptUpdate(("b",)))
    assert box.poll() == PromptUpdate(("b",))
    assert box.poll() is None


def test_several_sources_poll_as_one_and_the_last_listed_wins():
    first, second = PromptMailbox(), PromptMailbox()
    sources = PromptSources([first, None, second])
    first.post(PromptUpdate(("a",)))
    assert sources.poll() == PromptUpdate(("a",))
    first.post(PromptUpdate(("a",)))
    second.post(PromptUpdate(("b",)))
    assert sources.poll() == PromptUpdate(("b",))
    assert sources.poll() is None


def test_a_refused_change_is_logged_and_the_prompts_stay(caplog):
    class Picky(FakeDetector):
        def set_prompts(self, prompts, thresholds=None):
            raise PromptError("the text tower cannot take that")

    det = Picky()
    with caplog.at_level(logging.WARNING, "streamdet.prompts"):
        assert apply_update(det, PromptUpdate(("a cat",), {"a cat": 0.2})) is False
    assert det.prompts == ("a thing",) and "cannot take that" in caplog.text


def test_the_runner_applies_posted_changes_between_frames():
    det = FakeDetector()
    box = PromptMailbox()
    stop = threading.Event()

    def on_write(n: int) -> None:
        if n == 3:
            box.post(PromptUpdate(("a cat", "a dog"), {"a dog": 0.2}))
        if n == 12:
            stop.set()

    sink = ListSink(on_write=on_write)
    run(FakeSource(None, live=True, fps=200), det, [sink], prompts=box, stop=stop)
    seen = [prompts for _, prompts in sink.items]
    assert seen[0] == ("a thing",) and seen[-1] == ("a cat", "a dog")
    switch = seen.index(("a cat", "a dog"))
    assert all(p == ("a thing",) for p in seen[:switch])  # one clean switch, between frames
    assert all(p == ("a cat", "a dog") for p in seen[switch:])
    assert det.thresholds == {"a dog": 0.2}
