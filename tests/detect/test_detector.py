"""The Detector through its public API, on a tiny random-weight CLIP exported to ONNX."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from streamdet import Detector, FrameResult
from streamdet.errors import ConfigError, FrameError, FrameTypeError, PromptError

PROMPTS = ["a red circle", "a blue square", "a photo of a dog"]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (150, 230, 3), dtype=np.uint8), (7, 7), 2)
    cv2.circle(img, (60, 50), 30, (0, 0, 255), -1)
    return img


@pytest.fixture(scope="module")
def detector(tiny_model_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return Detector(tiny_model_dir, PROMPTS, patch=16, window=4, stride=1, cache_dir=cache)


def _per_window_reference(frame, hf_dir, prompts, patch, window):
    """The write-up's loop: one window at a time through the full PyTorch CLIPModel."""
    torch = pytest.importorskip("torch")
    from transformers import CLIPModel, CLIPTokenizerFast

    model = CLIPModel.from_pretrained(hf_dir).eval()
    tok = CLIPTokenizerFast.from_pretrained(hf_dir)
    cfg = json.loads((hf_dir / "preprocessor_config.json").read_text())
    mean, std = np.array(cfg["image_mean"]), np.array(cfg["image_std"])
    size = model.config.vision_config.image_size
    fill = tuple(float(v) for v in (mean * 255)[::-1])
    h, w = frame.shape[:2]
    rows, cols = -(-h // patch), -(-w // patch)
    sums = np.zeros((len(prompts), rows, cols))
    visits = np.zeros((rows, cols))  # counts start at zero (the write-up's start at one is a quirk)
    starts_r = sorted({*range(0, rows - window + 1), rows - window}) if rows > window else [0]
    starts_c = sorted({*range(0, cols - window + 1), cols - window}) if cols > window else [0]
    text = tok(prompts, padding=True, return_tensors="pt")
    for r0 in starts_r:
        for c0 in starts_c:
            need_h, need_w = (r0 + window) * patch, (c0 + window) * patch
            padded = cv2.copyMakeBorder(
                frame, 0, max(0, need_h - h), 0, max(0, need_w - w), cv2.BORDER_CONSTANT, value=fill
            ).astype(np.float32)
            crop = padded[r0 * patch : need_h, c0 * patch : need_w]
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            rgb = (crop[:, :, ::-1] / 255.0 - mean) / std
            pixels = torch.from_numpy(rgb.transpose(2, 0, 1)[None].astype(np.float32))
            with torch.no_grad():
                out = model(
                    pixel_values=pixels,
                    input_ids=text.input_ids,
                    attention_mask=text.attention_mask,
                )
            logits = out.logits_per_image[0].numpy()  # (K,)
            r1, c1 = min(r0 + window, rows), min(c0 + window, cols)
            sums[:, r0:r1, c0:c1] += logits[:, None, None]
            visits[r0:r1, c0:c1] += 1
    cells = sums / visits
    out = []
    for k in range(len(prompts)):
        s = np.clip(cells[k] - cells[k].mean(), 0, None)
        out.append((s - s.min()) / (s.max() - s.min()))
    return np.stack(out)


def test_reference_heatmaps_equal_the_write_ups_per_window_loop(
    tiny_model_dir, tiny_hf_dir, frame, tmp_path
):
    det = Detector(
        tiny_model_dir,
        PROMPTS,
        precision="fp32",
        patch=16,
        window=4,
        stride=1,
        scoring="reference",
        cache_dir=tmp_path,
    )
    result = det.detect(frame)
    expected = _per_window_reference(frame, tiny_hf_dir, PROMPTS, 16, 4)
    assert result.heatmaps.shape == expected.shape == (3, 10, 15)  # 150x230 is not a multiple of 16
    np.testing.assert_allclose(result.heatmaps, expected, atol=1e-4)
    # the write-up's box rule: one box per prompt around every cell above 0.5
    assert len(result.detections) == 3
    assert sorted(result.detections.class_id.tolist()) == [0, 1, 2]


def test_result_shapes_types_and_timings(detector, frame, tiny_model_dir, tmp_path):
    result = detector.detect(frame)
    assert isinstance(result, FrameResult)
    assert result.heatmaps.dtype == np.float32
    assert result.heatmaps.shape == (3, 10, 15)
    assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1
    # threshold 0: every prompt's heatmap gives boxes, so the bounds below are really checked
    boxed = Detector(tiny_model_dir, PROMPTS, patch=16, threshold=0.0, cache_dir=tmp_path)
    d = boxed.detect(frame).detections
    assert len(d) >= len(PROMPTS) and set(d.class_id.tolist()) == {0, 1, 2}
    assert d.xyxy.shape == (len(d), 4) and d.confidence.shape == (len(d),)
    assert np.all(d.xyxy[:, [0, 1]] >= 0) and np.all(d.xyxy[:, [0, 1]] < d.xyxy[:, [2, 3]])
    assert np.all(d.xyxy[:, [0, 2]] <= 230) and np.all(d.xyxy[:, [1, 3]] <= 150)
    assert result.prompts == tuple(PROMPTS)
    assert result.timings.encode_ms > 0 and result.timings.total_ms >= result.timings.encode_ms


@pytest.mark.parametrize("shape", [(1, 1, 3), (17, 333, 3), (64, 64, 3), (97, 45)])
def test_any_frame_size_is_covered(detector, shape):
    frame = np.full(shape, 128, np.uint8)
    result = detector.detect(frame)
    assert result.heatmaps.shape[1:] == (-(-shape[0] // 16), -(-shape[1] // 16))
    assert np.isfinite(result.heatmaps).all()


def test_calibrated_score_of_a_prompt_does_not_depend_on_the_others(
    tiny_model_dir, frame, tmp_path
):
    det = Detector(tiny_model_dir, PROMPTS, patch=16, cache_dir=tmp_path)
    together = det.detect(frame).heatmaps
    det.set_prompts([PROMPTS[1]])
    alone = det.detect(frame).heatmaps
    np.testing.assert_allclose(alone[0], together[1], atol=1e-6)


def test_prompt_changes_between_frames_reuse_cached_embeddings(tiny_model_dir, frame, tmp_path):
    det = Detector(tiny_model_dir, ["a cat", "a dog"], patch=16, cache_dir=tmp_path)
    computed = det.model.texts.computed
    first = det.detect(frame)
    det.set_prompts(["a car"])
    second = det.detect(frame)
    assert second.prompts == ("a car",) and second.heatmaps.shape[0] == 1
    assert det.model.texts.computed == computed + 1
    det.set_prompts(["a dog", "a cat"])
    third = det.detect(frame)
    assert det.model.texts.computed == computed + 1  # both already known
    np.testing.assert_allclose(third.heatmaps[0], first.heatmaps[1], atol=1e-6)


def test_batch_splitting_and_extra_scales(tiny_model_dir, frame, tmp_path):
    fp32 = {"patch": 16, "cache_dir": tmp_path, "precision": "fp32"}  # int8 scales per batch
    whole = Detector(tiny_model_dir, PROMPTS, **fp32, max_batch=1024)
    split = Detector(tiny_model_dir, PROMPTS, **fp32, max_batch=7)
    np.testing.assert_allclose(
        split.detect(frame).heatmaps, whole.detect(frame).heatmaps, atol=1e-5
    )
    multi = Detector(tiny_model_dir, PROMPTS, patch=16, scales=(2, 6), cache_dir=tmp_path)
    assert len(multi.grid(150, 230)) > len(whole.grid(150, 230))
    assert multi.detect(frame).heatmaps.shape == (3, 10, 15)


def test_per_prompt_thresholds(tiny_model_dir, tmp_path):
    det = Detector(tiny_model_dir, ["a", "b"], threshold={"b": 0.9}, cache_dir=tmp_path)
    assert det.thresholds[1] == pytest.approx(0.9)
    assert det.thresholds[0] == pytest.approx(det.config.boxes.threshold) != 0.9
    ref = Detector(tiny_model_dir, ["a"], scoring="reference", cache_dir=tmp_path)
    assert ref.thresholds.tolist() == [0.5]


def test_occlusion_reference_equals_a_loop_over_occluded_frames(tiny_model_dir, frame, tmp_path):
    from streamdet.detect.occlusion import occluded_batch

    det = Detector(
        tiny_model_dir,
        PROMPTS,
        precision="fp32",
        patch=32,
        window=2,
        method="occlusion",
        scoring="reference",
        cache_dir=tmp_path,
    )
    result = det.detect(frame)
    grid = det.grid(*frame.shape[:2])
    batch = occluded_batch(frame, grid, det.model.image_size, det.model.fill)
    assert batch.shape[0] == len(grid) + 1
    text = det.model.texts.embed(PROMPTS)
    scale = det.model.logit_scale
    base = scale * det.model.embed_images(batch[:1]) @ text.T
    sums = np.zeros((3, grid.rows, grid.cols))
    counts = np.zeros((grid.rows, grid.cols))
    for i, (r0, c0, size) in enumerate(grid.windows):  # one occluded copy at a time
        logit = scale * det.model.embed_images(batch[i + 1 : i + 2]) @ text.T
        sums[:, r0 : r0 + size, c0 : c0 + size] += (base - logit)[0][:, None, None]
        counts[r0 : r0 + size, c0 : c0 + size] += 1
    cells = sums / counts
    for k in range(3):
        s = np.clip(cells[k] - cells[k].mean(), 0, None)
        np.testing.assert_allclose(
            result.heatmaps[k], (s - s.min()) / (s.max() - s.min()), atol=1e-4
        )


def test_occluded_batch_hides_exactly_one_window():
    from streamdet.config import GridConfig
    from streamdet.detect.occlusion import occluded_batch
    from streamdet.detect.windows import WindowGrid

    frame = np.full((64, 128, 3), 200, np.uint8)
    grid = WindowGrid.build(64, 128, GridConfig(patch=32, window=1, stride=1))  # 2 x 4 windows
    batch = occluded_batch(frame, grid, 32, (0.0, 0.0, 0.0))  # 128 px square -> 32: 8 px cells
    assert batch.shape == (9, 32, 32, 3)
    assert (batch[0, :16] == 200).all() and (batch[0, 16:] == 0).all()  # letterbox padding
    hidden = batch[1:, :16, :, 0] == 0  # (8, 16, 32) within the frame area
    assert hidden.sum(axis=(1, 2)).tolist() == [64] * 8
    assert hidden[5, 8:16, 8:16].all()  # window (row 1, col 1)


def test_calibrated_occlusion_runs(tiny_model_dir, frame, tmp_path):
    det = Detector(
        tiny_model_dir, PROMPTS, patch=32, window=2, method="occlusion", cache_dir=tmp_path
    )
    result = det.detect(frame)
    assert result.heatmaps.shape == (3, 5, 8)
    assert result.heatmaps.min() >= 0 and result.heatmaps.max() <= 1


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ([[0]], FrameTypeError),
        ("frame.png", FrameTypeError),
        (np.zeros((8, 8, 3)), FrameError),
        (np.zeros((0, 8, 3), np.uint8), FrameError),
        (np.zeros((8, 8, 5), np.uint8), FrameError),
    ],
)
def test_bad_frames_raise_value_and_type_errors(detector, bad, error):
    with pytest.raises(error) as info:
        detector.detect(bad)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TypeError if error is FrameTypeError else ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(scoring="best"),
        dict(method="magic"),
        dict(threshold=1.5),
        dict(threshold="high"),
        dict(patch=0),
        dict(window=-2),
        dict(templates=["no placeholder"]),
        dict(nms_iou=-1),
    ],
)
def test_bad_settings_raise_config_errors(tiny_model_dir, kwargs):
    with pytest.raises(ConfigError):
        Detector(tiny_model_dir, ["a cat"], **kwargs)


def test_bad_prompts(tiny_model_dir, tmp_path, frame):
    det = Detector(tiny_model_dir, cache_dir=tmp_path)
    with pytest.raises(PromptError, match="no prompts"):
        det.detect(frame)
    for bad in ([], [""], ["   "], ["a"] * 2, ["word " * 200]):
        with pytest.raises(PromptError):
            det.set_prompts(bad)
    with pytest.raises(PromptError, match="tokens"):
        det.set_prompts(["x," * 100])  # under the character limit, over 77 tokens
