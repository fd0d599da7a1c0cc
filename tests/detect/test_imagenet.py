"""The ImageNet-1k class names and prompt templates for CLIP zero-shot classification."""

from __future__ import annotations

import pytest

from streamdet.detect.imagenet import IMAGENET_CLASSES, IMAGENET_TEMPLATES


def test_exactly_1000_unique_names() -> None:
    assert isinstance(IMAGENET_CLASSES, tuple)
    assert len(IMAGENET_CLASSES) == 1000
    assert len(set(IMAGENET_CLASSES)) == 1000


def test_names_are_clean_non_empty_strings() -> None:
    for name in IMAGENET_CLASSES:
        assert isinstance(name, str)
        assert name
        assert name == name.strip()
        assert "  " not in name


@pytest.mark.parametrize(
    ("index", "name"),
    [
        (0, "tench"),
        (1, "goldfish"),
        (2, "great white shark"),
        (21, "kite (bird of prey)"),
        (134, "crane bird"),
        (250, "Siberian Husky"),
        (409, "analog clock"),
        (517, "construction crane"),
        (638, "tights"),
        (639, "one-piece bathing suit"),
        # The two names the CLIP notebook repeats, made unique (see the module docstring).
        (657, "missile"),
        (744, "projectile"),
        (836, "sunglass"),
        (837, "sunglasses"),
        (999, "toilet paper"),
    ],
)
def test_known_indices(index: int, name: str) -> None:
    assert IMAGENET_CLASSES[index] == name


def test_templates_each_have_one_placeholder() -> None:
    assert isinstance(IMAGENET_TEMPLATES, tuple)
    assert len(IMAGENET_TEMPLATES) == 7
    assert len(set(IMAGENET_TEMPLATES)) == len(IMAGENET_TEMPLATES)
    assert "itap of a {}." in IMAGENET_TEMPLATES
    for template in IMAGENET_TEMPLATES:
        assert template.count("{}") == 1
        assert template.count("{") == 1 and template.count("}") == 1
        prompt = template.format("tench")
        assert "tench" in prompt and "{" not in prompt
