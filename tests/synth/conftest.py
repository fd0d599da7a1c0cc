"""Shared by the built-in model's training tests: a tiny architecture that trains in seconds."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from streamdet.synth.model import Architecture


@pytest.fixture
def tiny_arch() -> Architecture:
    """The built-in model's architecture at a tiny size (32 px, patch 8, width 32)."""
    return Architecture(
        image_size=32,
        patch_size=8,
        vision_width=32,
        vision_layers=2,
        vision_heads=2,
        text_width=16,
        text_layers=1,
        text_heads=1,
        projection_dim=16,
    )
