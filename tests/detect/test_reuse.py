"""Temporal reuse (``reuse=``): which windows are computed, and that outputs stay those of
computing everything (exactly at tolerance 0, within the stated tolerance on a real clip)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streamdet import Detector
from streamdet.config import GridConfig, ReuseConfig
from streamdet.detect.reuse import WindowReuse
from streamdet.detect.windows import WindowGrid
from streamdet.synth.scenes import moving_video

PROMPTS = ["a red circle", "a blue square", "a photo of a dog"]
H, W = 96, 160  # 6 x 10 cells of 16 pixels
#: What a pipeline may expect of the default tolerance on a real static-camera clip (README):
#: heatmaps (probabilities) within this of computing every window, on average far closer.
STATED_MAX_HEATMAP_DIFF = 0.15
STATED_MEAN_HEATMAP_DIFF = 0.001


@pytest.fixture(scope="module")
def make(tiny_model_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")

    def build(**settings) -> Detector:
        # fp32: int8's dynamic quantisation scales activations per batch, so an embedding
        # depends (a little) on which windows share its batch and exactness is an fp32 promise
        base = {"patch": 16, "window": 4, "stride": 1, "cache_dir": cache, "precision": "fp32"}
        settings = {**base, **settings}
        return Detector(tiny_model_dir, PROMPTS, **settings)

    return build


def textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (5, 5), 1.5)


def computed_per_frame(det: Detector, frames) -> list[int]:
    return [det.detect(f).work.windows_computed for f in frames]


def windows_touching(grid: WindowGrid, changed: np.ndarray) -> set[int]:
    """Windows whose pixels (inside the frame) include a changed pixel."""
    out = set()
    for i, (x0, y0, x1, y1) in enumerate(grid.window_boxes().astype(int)):
        if changed[y0:y1, x0:x1].any():
            out.add(i)
    return out


@pytest.mark.parametrize("settings", [{}, {"dense": True, "threshold": 0.0, "verify": True}])
def test_tolerance_zero_gives_the_outputs_of_computing_every_window(make, settings):
    scenes = moving_video(np.random.default_rng(1), 5, H, W, speed=4.0, n_objects=2)
    frames = [s.image for s in scenes]
    settings = {"window": 2, **settings}  # small windows: the still background has some
    exact = make(reuse=0, reuse_motion=1.0, **settings)  # the motion check never fires
    full = make(reuse=False, **settings)
    reused = 0
    for frame in frames:
        a, b = exact.detect(frame), full.detect(frame)
        reused += a.work.windows_reused
        assert b.work.windows_reused == 0 and b.work.windows_computed == len(exact.grid(H, W))
        # the same numbers up to the image tower's batch-size rounding (as test_detector's
        # batch splitting): kept embeddings are those computing every window gives
        np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=1e-5)
        np.testing.assert_array_equal(a.detections.class_id, b.detections.class_id)
        np.testing.assert_allclose(a.detections.xyxy, b.detections.xyxy, atol=1e-3)
        np.testing.assert_allclose(a.detections.confidence, b.detections.confidence, atol=1e-5)
    assert reused > 0  # the still background was really reused


def test_windows_cut_on_the_device_are_reused_exactly_too(make):
    """The GPU path (windows cut where the tower runs; run here on the CPU) gets only the
    changed windows' corners."""
    scenes = moving_video(np.random.default_rng(2), 4, H, W, speed=4.0, n_objects=1)
    settings = {"window": 2, "dense": True, "crop_on_device": True}
    exact = make(reuse=0, reuse_motion=1.0, **settings)
    full = make(reuse=False, **settings)
    assert exact.crop_on_device
    reused = 0
    for scene in scenes:
        a, b = exact.detect(scene.image), full.detect(scene.image)
        reused += a.work.windows_reused
        np.testing.assert_allclose(a.heatmaps, b.heatmaps, atol=1e-5)
    assert reused > 0


@pytest.mark.parametrize("tolerance", [0, 0.02])
def test_a_static_sequence_computes_only_the_first_and_refresh_frames(make, tolerance):
    det = make(reuse=tolerance, reuse_refresh=3)
    n = len(det.grid(H, W))
    frame = textured()
    assert computed_per_frame(det, [frame] * 7) == [n, 0, 0, n, 0, 0, n]


def test_small_noise_is_reused_but_slow_drift_adds_up_until_recomputed(make):
    det = make(reuse=0.02, reuse_refresh=100)
    n = len(det.grid(H, W))
    base = textured().astype(np.int16)
    # +2 grey levels a frame: each step is below 0.02 * 255 = 5.1, the sum since the last
    # computation is not (signatures are compared with the one stored when last computed)
    frames = [np.clip(base + 2 * k, 0, 255).astype(np.uint8) for k in range(5)]
    assert computed_per_frame(det, frames) == [n, 0, 0, n, 0]


def test_a_moving_object_recomputes_only_the_windows_around_it(make):
    frame = textured()
    before, after = frame.copy(), frame.copy()
    cv2.rectangle(before, (40, 32), (55, 47), (0, 0, 255), -1)  # 16 x 16, on whole 4-px blocks
    cv2.rectangle(after, (48, 32), (63, 47), (0, 0, 255), -1)  # 8 pixels to the right
    changed = (before != after).any(axis=2)
    for tolerance in (0, 0.02):
        det = make(reuse=tolerance, reuse_motion=1.0)
        grid = det.grid(H, W)
        det.detect(before)
        result = det.detect(after)
        expected = windows_touching(grid, changed)
        assert 0 < len(expected) < len(grid)
        assert result.work.windows_computed == len(expected)
        assert result.work.windows_reused == len(grid) - len(expected)


@pytest.mark.parametrize("tolerance", [0, 0.02])
def test_the_recomputed_windows_are_those_around_the_change(tolerance):
    frame = textured()
    after = frame.copy()
    cv2.rectangle(after, (100, 64), (107, 71), (255, 255, 255), -1)
    grid = WindowGrid.build(H, W, GridConfig(patch=16, window=4, scales=(2,), overhang=True))
    reuse = WindowReuse(ReuseConfig(threshold=tolerance), (120.0, 116.0, 104.0))
    first = reuse.plan(frame, grid)
    assert first.reason == "first" and len(first.compute) == len(grid)
    reuse.merge(first, np.zeros((len(grid), 4), np.float32), None)
    plan = reuse.plan(after, grid)
    assert plan.reason == "changed"
    assert set(plan.compute.tolist()) == windows_touching(grid, (frame != after).any(axis=2))
    kept, _ = reuse.merge(plan, np.ones((len(plan.compute), 4), np.float32), None)
    assert kept[plan.compute].min() == 1 and kept.sum() == 4 * len(plan.compute)


def test_a_global_change_recomputes_everything(make):
    frame = textured()
    shifted = np.roll(frame, 6, axis=1)  # a camera pan
    det = make(reuse=0.02)
    n = len(det.grid(H, W))
    det.detect(frame)
    assert det.detect(shifted).work.windows_computed == n
    # a flash: every pixel brighter
    det.reset()
    det.detect(frame)
    brighter = np.clip(frame.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    assert det.detect(brighter).work.windows_computed == n


def test_a_new_frame_size_and_reset_start_afresh(make):
    det = make(reuse=0.02)
    small, tall = textured(), cv2.resize(textured(), (W, H + 16))
    n_small, n_tall = len(det.grid(H, W)), len(det.grid(H + 16, W))
    assert computed_per_frame(det, [small, small, tall, tall, small]) == [
        n_small,
        0,
        n_tall,
        0,
        n_small,
    ]
    det.reset()
    assert computed_per_frame(det, [small]) == [n_small]


def test_prompt_changes_keep_the_kept_embeddings(make):
    frame = textured()
    det = make(reuse=0)
    det.detect(frame)
    det.set_prompts(["a green star"])
    again = det.detect(frame)
    assert again.work.windows_computed == 0
    fresh = make(reuse=False)
    fresh.set_prompts(["a green star"])
    np.testing.assert_allclose(again.heatmaps, fresh.detect(frame).heatmaps, atol=1e-5)


@pytest.mark.parametrize(
    ("refine", "second", "recheck"),
    [(0.0, 0.0, 0.0), (0.4, 0.0, 0.0), (0.4, 0.5, 0.0), (0.4, 0.5, 0.05)],
)
def test_verification_crops_of_unchanged_boxes_are_reused(make, refine, second, recheck):
    """Kept crops give the boxes, scores and (``verify_refine``) moved boxes of new crops: with
    ``verify_refine_second`` the second crops' tokens are kept too, also when those crops were
    a second opinion (``verify_recheck``) taken after the first."""
    frame = textured()
    checks = {
        "threshold": 0.0,
        "verify": True,
        "verify_floor": 0.0,
        "verify_refine": refine,
        "verify_refine_second": second,
        "verify_recheck": recheck,
        "verify_recheck_floor": 0.0,
    }
    det = make(reuse=0.02, **checks)
    full = make(reuse=False, **checks)
    first, second = det.detect(frame), det.detect(frame)
    assert len(second.detections) > 0  # threshold 0: every prompt gives boxes to verify
    assert first.work.views_reused == 0 and first.work.views_computed > 0
    assert second.work.views_computed == 0 and second.work.views_reused > 0
    expected = full.detect(frame).detections
    np.testing.assert_allclose(second.detections.confidence, expected.confidence, atol=1e-5)
    np.testing.assert_allclose(second.detections.xyxy, expected.xyxy, atol=1e-3)
    # a change under the boxes' crops: computed again
    changed = frame.copy()
    changed[:, :] = 255 - changed[:, :]
    assert det.detect(changed).work.views_reused == 0


def test_a_frame_that_moved_keeps_no_verification_crops(make):
    # A moving camera verifies every box anew each frame; keeping their crops' signatures would
    # cost a crop of the signature picture per box for nothing. The first still frame after the
    # motion computes its crops and keeps them; the next one reuses them.
    frame = textured()
    det = make(reuse=0.02, threshold=0.0, verify=True, verify_floor=0.0)
    det.detect(frame)
    moved = np.ascontiguousarray(255 - frame)  # the whole picture changes: motion
    after_motion = det.detect(moved)
    assert after_motion.work.views_computed > 0 and after_motion.work.views_reused == 0
    still = det.detect(moved)  # nothing moved since, but nothing was kept on the moving frame
    assert still.work.views_reused == 0 and still.work.views_computed > 0
    again = det.detect(moved)
    assert again.work.views_computed == 0 and again.work.views_reused > 0


def test_reuse_is_off_for_the_occlusion_method_unless_asked(make):
    from streamdet.errors import ConfigError

    det = make(method="occlusion", scoring="reference")
    assert det.config.reuse.threshold is False
    assert det.detect(textured()).work.windows_reused == 0
    with pytest.raises(ConfigError, match=r"reuse=0\.02 \(set by you\) needs method='windows'"):
        make(method="occlusion", scoring="reference", reuse=0.02)


def test_on_a_real_static_clip_reuse_stays_within_the_stated_tolerance(media_dir):
    capture = cv2.VideoCapture(str(media_dir / "car-detection.mp4"))
    frames = []
    while len(frames) < 8:
        ok, image = capture.read()
        assert ok
        frames.append(cv2.resize(image, (320, 180), interpolation=cv2.INTER_AREA))
    capture.release()
    prompts = ["a car", "a white car", "a person"]
    # the built-in model, its windows-method settings, reuse by default
    reuse = Detector(prompts=prompts, method="windows")
    full = Detector(prompts=prompts, method="windows", reuse=False)
    assert reuse.config.reuse.enabled
    diffs, computed, total = [], 0, 0
    for frame in frames:
        a, b = reuse.detect(frame), full.detect(frame)
        diffs.append(np.abs(a.heatmaps - b.heatmaps))
        computed += a.work.windows_computed
        total += b.work.windows_computed
    assert computed * 3 <= total  # at least 3x fewer windows
    assert max(d.max() for d in diffs) <= STATED_MAX_HEATMAP_DIFF
    assert np.mean([d.mean() for d in diffs]) <= STATED_MEAN_HEATMAP_DIFF
