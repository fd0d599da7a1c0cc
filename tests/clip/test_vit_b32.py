"""The full ViT-B/32 shape (random weights) exports and matches PyTorch (slow: 1-2 minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_vit_b32_shape_exports_with_parity(shared_clip_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from streamdet.clip.encoders import ClipEncoders
    from streamdet.clip.export import FP32_TOLERANCE, export_model

    torch.manual_seed(0)
    source = tmp_path / "vit-b32"
    config = transformers.CLIPConfig.from_pretrained(shared_clip_dir)
    transformers.CLIPModel(config).eval().save_pretrained(source)
    for path in shared_clip_dir.iterdir():  # tokenizer and processor files
        if path.suffix in {".json", ".txt"} and path.name != "config.json":
            (source / path.name).write_bytes(path.read_bytes())

    report = export_model(source, tmp_path / "export")
    assert report.image_max_abs_diff <= FP32_TOLERANCE
    assert report.text_max_abs_diff <= FP32_TOLERANCE

    encoders = ClipEncoders(report.out_dir)
    assert (encoders.image_size, encoders.embed_dim) == (224, 512)
    assert encoders.logit_scale == pytest.approx(np.exp(2.6592), rel=1e-4)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    assert encoders.encode_images(pixels).shape == (2, 512)
    assert encoders.encode_texts(["a photo of a cat", "a dog"]).shape == (2, 512)
