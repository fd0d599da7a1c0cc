"""``Detector.detect_many``: frames of several streams in one tower call per stage give what
``detect`` gives frame by frame, and each stream keeps its own temporal reuse."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet import Detector
from streamdet.synth.scenes import moving_video

H, W = 96, 160
PROMPTS = ["a red circle", "a blue square"]


@pytest.fixture(scope="module")
def make(tiny_model_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")

    def build(**settings) -> Detector:
        # fp32: int8's dynamic quantisation scales activations per batch, so a batch of several
        # frames would differ from one frame by a little, and equality is an fp32 promise
        base = {"patch": 16, "window": 4, "stride": 1, "cache_dir": cache, "precision": "fp32"}
        return Detector(tiny_model_dir, PROMPTS, **{**base, **settings})

    return build


def _videos(n: int, frames: int) -> list[list[np.ndarray]]:
    return [
        [s.image for s in moving_video(np.random.default_rng(seed), frames, H, W, n_objects=2)]
        for seed in range(n)
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "dense", "threshold": 0.0, "verify": True},
        {"method": "windows", "threshold": 0.0, "verify": True},
        {"method": "windows", "dense": True, "threshold": 0.0},
        {"method": "occlusion", "threshold": 0.0},
    ],
)
def test_a_batch_of_streams_equals_each_stream_alone(make, settings):
    videos = _videos(3, 3)
    batched = make(reuse=False, **settings)
    alone = [make(reuse=False, **settings) for _ in videos]
    for t in range(3):
        together = batched.detect_many([v[t] for v in videos], streams=["a", "b", "c"])
        for det, video, got in zip(alone, videos, together, strict=True):
            want = det.detect(video[t])
            np.testing.assert_allclose(got.heatmaps, want.heatmaps, atol=1e-5)
            np.testing.assert_allclose(got.detections.xyxy, want.detections.xyxy, atol=1e-3)
            np.testing.assert_allclose(
                got.detections.confidence, want.detections.confidence, atol=1e-4
            )
            assert got.work == want.work
    assert sum(len(r.detections) for r in together) > 0  # the comparison saw boxes


def test_each_stream_keeps_its_own_reuse(make):
    """Two still cameras in one batch: after the first frame each stream's pass is reused,
    though the two streams' pictures differ (one shared state would recompute every frame)."""
    still = [v[0] for v in _videos(2, 1)]
    det = make(method="dense", reuse=0.0)
    works = [det.detect_many(still, streams=[0, 1]) for _ in range(4)]
    assert [[r.work.frames_computed for r in w] for w in works] == [[1, 1]] + [[0, 0]] * 3
    det.reset()
    assert [r.work.frames_computed for r in det.detect_many(still, streams=[0, 1])] == [1, 1]
    # frames alternating in ONE stream differ every frame: nothing to reuse
    det.reset()
    alternating = [det.detect(still[i % 2]).work.frames_computed for i in range(4)]
    assert alternating == [1, 1, 1, 1]


def test_streams_must_be_one_per_frame_and_distinct(make):
    det = make(method="dense")
    frames = [v[0] for v in _videos(2, 1)]
    with pytest.raises(ValueError, match="each stream at most once"):
        det.detect_many(frames, streams=["x", "x"])
    with pytest.raises(ValueError, match="each stream"):
        det.detect_many(frames, streams=["x"])
    assert det.detect_many([]) == []
