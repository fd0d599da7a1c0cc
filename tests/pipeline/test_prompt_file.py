"""Prompt files: comments and blanks ignored, re-read only when changed, bad edits ignored."""

from __future__ import annotations

import logging

import pytest

from streamdet.errors import PromptError
from streamdet.pipeline.prompt_file import PromptFile, read_prompt_file


def test_reads_one_prompt_per_line_skipping_comments_and_blanks(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# what to find\na red car\n\n  a person  \n# a dog\n")
    assert read_prompt_file(path) == ("a red car", "a person")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_a_file_without_prompts_is_refused(tmp_path, text):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(PromptError, match="has no prompts"):
        read_prompt_file(path)


def test_a_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(PromptError, match="does not exist"):
        PromptFile(tmp_path / "nope.txt")


def test_poll_reports_changes_only_and_keeps_old_prompts_after_a_bad_edit(tmp_path, caplog):
    now = [0.0]
    path = tmp_path / "p.txt"
    path.write_text("a red car\n")
    watch = PromptFile(path, interval=1.0, clock=lambda: now[0])
    assert watch.prompts == ("a red car",)
    now[0] = 2.0
    assert watch.poll() is None  # unchanged
    path.write_text("a red car\na person\n")
    now[0] = 2.5
    assert watch.poll() is None  # not yet time to look
    now[0] = 3.5
    assert watch.poll() == ("a red car", "a person")
    path.write_text("\n")  # an editor's half-saved state
    now[0] = 5.0
    with caplog.at_level(logging.WARNING, logger="streamdet.prompts"):
        assert watch.poll() is None
    assert "keeping the prompts" in caplog.text
    assert watch.prompts == ("a red car", "a person")
    path.write_text("a dog\n")
    now[0] = 7.0
    assert watch.poll() == ("a dog",)
