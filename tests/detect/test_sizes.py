"""Size words read as sizes in the frame: the model scores the rest, boxes are kept by size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.clip.hub import BUILTIN_MODELS
from streamdet.detect.sizes import (
    LARGE_MIN,
    SMALL_MAX,
    SizedPrompt,
    keep_sized,
    split_size,
)
from streamdet.types import Detections


@pytest.mark.parametrize(
    ("prompt", "text", "size"),
    [
        ("a small yellow square", "a yellow square", "small"),
        ("a large white cross", "a white cross", "large"),
        ("a big orange car", "an orange car", "large"),  # the article follows the next word
        ("an tiny apple", "an apple", "small"),
        ("the huge tree", "the tree", "large"),
        ("little red car", "red car", "small"),
        ("A Large person", "a person", "large"),
        ("a red car", "a red car", None),
        ("a car, small", "a car, small", None),  # only a leading size word is read
        ("a small", "a small", None),  # nothing left to score: left as it is
        ("big", "big", None),
    ],
)
def test_split_size(prompt: str, text: str, size: str | None) -> None:
    assert split_size(prompt) == SizedPrompt(text, size)


def _dets(boxes: list[list[float]], classes: list[int]) -> Detections:
    n = len(boxes)
    return Detections(
        np.asarray(boxes, np.float32).reshape(n, 4),
        np.linspace(0.9, 0.99, n).astype(np.float32),
        np.asarray(classes, np.int64),
    )


def test_keep_sized_keeps_boxes_of_the_named_size_only() -> None:
    short = 360
    small = 0.1 * short  # an object a tenth of the frame's height
    large = 0.3 * short
    boxes = [[10, 10, 10 + small, 10 + small / 2], [100, 50, 100 + large, 50 + large]]
    prompts = (SizedPrompt("a square", "small"), SizedPrompt("a square", "large"))
    # both boxes under each prompt: each prompt keeps the one of its size
    dets = _dets(boxes * 2, [0, 0, 1, 1])
    kept = keep_sized(dets, prompts, (short, 640))
    assert kept.class_id.tolist() == [0, 1]
    assert kept.xyxy[0, 2] - kept.xyxy[0, 0] == pytest.approx(small)
    assert kept.xyxy[1, 2] - kept.xyxy[1, 0] == pytest.approx(large)
    # a prompt without a size word keeps every box; the longer side is what counts
    anything = (SizedPrompt("a square", None),)
    assert len(keep_sized(_dets(boxes, [0, 0]), anything, (short, 640))) == 2
    tall = _dets([[0, 0, 5, LARGE_MIN * short + 1]], [0])
    assert len(keep_sized(tall, (SizedPrompt("x", "large"),), (short, 640))) == 1
    assert len(keep_sized(tall, (SizedPrompt("x", "small"),), (short, 640))) == (
        LARGE_MIN * short + 1 <= SMALL_MAX * short
    )


def test_a_turned_small_square_is_still_small() -> None:
    """A small square (extent up to 0.15 of the frame's shorter side) turned by 45 degrees has a
    box 1.41x as long; it stays "small", while a large object's box (0.22 of the side or more,
    here found a little long) is not taken for a small one."""
    short = 360
    side = 0.15 * short * np.sqrt(2.0)  # 76 pixels: the turned square's box
    turned = _dets([[100, 100, 100 + side, 100 + side]], [0])
    assert len(keep_sized(turned, (SizedPrompt("a square", "small"),), (short, 640))) == 1
    large = 0.24 * short  # a large object (0.22 or more) with its box found a little long
    big = _dets([[100, 100, 100 + large, 100 + 0.5 * large]], [0])
    assert len(keep_sized(big, (SizedPrompt("a square", "small"),), (short, 640))) == 0
    assert len(keep_sized(big, (SizedPrompt("a square", "large"),), (short, 640))) == 1


def test_keep_sized_on_no_detections() -> None:
    empty = Detections.empty()
    assert len(keep_sized(empty, (SizedPrompt("x", "small"),), (360, 640))) == 0


needs_builtin = pytest.mark.skipif(
    not (BUILTIN_MODELS["streamdet/scenes-clip"] / "meta.json").is_file(),
    reason="the built-in model is not in streamdet/models/scenes-clip",
)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return Detector(
        "streamdet/scenes-clip", ["a red circle"], cache_dir=tmp_path_factory.mktemp("c")
    )


@needs_builtin
def test_detector_reads_size_words_against_the_frame(detector) -> None:
    frame = np.full((360, 640, 3), 128, np.uint8)
    cv2.circle(frame, (200, 170), 55, (35, 30, 215), -1, cv2.LINE_AA)  # large: 0.31 of 360
    detector.set_prompts(["a large red circle", "a small red circle", "a red circle"])
    assert [p.text for p in detector._state.sized] == ["a red circle"] * 3
    found = detector.detect(frame).detections
    names = sorted({detector.prompts[int(k)] for k in found.class_id})
    assert names == ["a large red circle", "a red circle"]
    # the same circle at a third of the size is small, and only that
    frame = np.full((360, 640, 3), 128, np.uint8)
    cv2.circle(frame, (200, 170), 18, (35, 30, 215), -1, cv2.LINE_AA)  # 0.1 of 360
    found = detector.detect(frame).detections
    names = sorted({detector.prompts[int(k)] for k in found.class_id})
    assert names == ["a red circle", "a small red circle"]


@needs_builtin
def test_frame_sizes_off_scores_the_prompt_as_written(tmp_path) -> None:
    literal = Detector(
        "streamdet/scenes-clip", ["a small red circle"], frame_sizes=False, cache_dir=tmp_path
    )
    assert literal._state.sized == (SizedPrompt("a small red circle", None),)
    sized = Detector("streamdet/scenes-clip", ["a small red circle"], cache_dir=tmp_path)
    assert not np.allclose(literal._state.embeddings, sized._state.embeddings)
