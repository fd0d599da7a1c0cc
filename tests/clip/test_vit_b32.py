"""The full ViT-B/32 shape (random weights) exports and matches PyTorch (slow: 1-2 minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_vit_b32_shape_exports_with_parity(shared_clip_dir: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from streamdet.clip.export import export_model
    from streamdet.clip.ort_encoders import OrtEncoders
    from streamdet.clip.parity import FP32_TOLERANCE

    torch.manual_seed(0)
    source = tmp_path / "vit-b32"
    config = transformers.CLIPConfig.from_pretrained(shared_clip_dir)
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(source)
    for path in shared_clip_dir.iterdir():  # tokenizer and processor files
        if path.suffix in {".json", ".txt"} and path.name != "config.json":
            (source / path.name).write_bytes(path.read_bytes())

    # export_model refuses an export past the tolerance; the checks below are independent of it:
    # the published graphs against transformers' textbook path, on inputs of their own.
    report = export_model(source, tmp_path / "export")
    encoders = OrtEncoders(report.out_dir)
    assert (encoders.image_size, encoders.embed_dim) == (224, 512)
    assert encoders.logit_scale == pytest.approx(np.exp(2.6592), rel=1e-4)

    meta = encoders.meta
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    normalised = (rgb / 255.0 - np.asarray(meta.image_mean)) / np.asarray(meta.image_std)
    nchw = torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2), np.float32))
    prompts = ["a photo of a cat", "a dog"]
    tokenizer = transformers.CLIPTokenizerFast.from_pretrained(source)
    batch = tokenizer(prompts, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        image = model.get_image_features(pixel_values=nchw)
        text = model.get_text_features(**batch)
    image, text = (f if isinstance(f, torch.Tensor) else f.pooler_output for f in (image, text))
    expected_images = torch.nn.functional.normalize(image).numpy()
    expected_texts = torch.nn.functional.normalize(text).numpy()

    got_images = encoders.encode_images(rgb[..., ::-1].copy())  # BGR, as OpenCV reads
    got_texts = encoders.encode_texts(prompts)
    assert got_images.shape == (2, 512) and got_texts.shape == (2, 512)
    np.testing.assert_allclose(got_images, expected_images, atol=FP32_TOLERANCE)
    np.testing.assert_allclose(got_texts, expected_texts, atol=FP32_TOLERANCE)
