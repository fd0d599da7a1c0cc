"""supervision interop: Detections.to_supervision / from_supervision.

The conversions that need no supervision (duck-typed input, the missing-package error) always run;
those that draw with its annotators or track with ByteTrack skip when supervision is absent.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from streamdet.errors import MissingDependencyError
from streamdet.types import Detections, FrameResult

PROMPTS = ("a red car", "a person", "a tree")


def _detections() -> Detections:
    return Detections(
        xyxy=np.array([[10, 20, 110, 80], [200, 40, 260, 180], [5, 5, 25, 30]], np.float32),
        confidence=np.array([0.9, 0.75, 0.4], np.float32),
        class_id=np.array([0, 1, 1], np.int64),
    )


def _result(detections: Detections) -> FrameResult:
    return FrameResult(
        detections=detections,
        heatmaps=np.zeros((len(PROMPTS), 8, 10), np.float32),
        prompts=PROMPTS,
        frame_shape=(256, 320),
        patch=32,
    )


def _assert_same(a: Detections, b: Detections) -> None:
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    np.testing.assert_array_equal(a.class_id, b.class_id)
    assert (a.xyxy.dtype, a.confidence.dtype, a.class_id.dtype) == (
        np.float32,
        np.float32,
        np.int64,
    )


def test_from_any_object_with_the_three_attributes() -> None:
    d = _detections()
    like = SimpleNamespace(
        xyxy=d.xyxy.astype(np.float64).tolist(),
        confidence=d.confidence.tolist(),
        class_id=[0.0, 1.0, 1.0],  # whole floats are accepted
    )
    back = Detections.from_supervision(like)
    np.testing.assert_allclose(back.xyxy, d.xyxy)
    np.testing.assert_allclose(back.confidence, d.confidence)
    assert back.class_id.tolist() == [0, 1, 1] and back.class_id.dtype == np.int64


def test_missing_confidence_and_class_id_take_defaults() -> None:
    xyxy = np.array([[0, 0, 10, 10], [5, 5, 50, 40]], np.float32)
    back = Detections.from_supervision(SimpleNamespace(xyxy=xyxy, confidence=None, class_id=None))
    assert back.confidence.tolist() == [1.0, 1.0]
    assert back.class_id.tolist() == [0, 0]
    no_attributes = Detections.from_supervision(SimpleNamespace(xyxy=xyxy))
    assert no_attributes.confidence.tolist() == [1.0, 1.0]
    empty = Detections.from_supervision(SimpleNamespace(xyxy=np.zeros((0, 4)), confidence=None))
    assert len(empty) == 0 and empty.class_id.shape == (0,)


def test_from_supervision_copies_its_input() -> None:
    xyxy = np.array([[0, 0, 10, 10]], np.float32)
    back = Detections.from_supervision(SimpleNamespace(xyxy=xyxy, confidence=None, class_id=None))
    xyxy[0, 0] = 99
    assert back.xyxy[0, 0] == 0


@pytest.mark.parametrize(
    ("obj", "error", "message"),
    [
        (object(), TypeError, "needs an object with xyxy"),
        (SimpleNamespace(xyxy=np.zeros((2, 3))), ValueError, r"xyxy must have shape \(n, 4\)"),
        (
            SimpleNamespace(xyxy=np.zeros((2, 4)), confidence=np.ones(3)),
            ValueError,
            r"confidence must have shape \(2\), but got \(3,\)",
        ),
        (
            SimpleNamespace(xyxy=np.zeros((2, 4)), class_id=np.zeros((2, 1))),
            ValueError,
            r"class_id must have shape \(2\), but got \(2, 1\)",
        ),
        (
            SimpleNamespace(xyxy=np.zeros((1, 4)), class_id=np.array([0.5])),
            ValueError,
            "class_id must hold whole numbers",
        ),
        (SimpleNamespace(xyxy=[[0, 0, "a", 1]]), TypeError, "xyxy must be a numeric array"),
        (SimpleNamespace(xyxy=[[0, 0, 1], [0, 0, 1, 2]]), TypeError, "xyxy must be a numeric"),
    ],
)
def test_bad_input_gives_one_line_errors(obj, error, message) -> None:
    with pytest.raises(error, match=message) as info:
        Detections.from_supervision(obj)
    assert "\n" not in str(info.value)


def test_to_supervision_without_supervision_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # `import supervision` now fails
    for convert in (_detections().to_supervision, _result(_detections()).to_supervision):
        with pytest.raises(MissingDependencyError, match=r'pip install "supervision>=0\.30') as e:
            convert()
        assert "\n" not in str(e.value)
        assert isinstance(e.value, ImportError)


# ---- with supervision installed ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sv():
    return pytest.importorskip("supervision")


def test_round_trip_through_supervision(sv) -> None:
    d = _detections()
    converted = d.to_supervision()
    assert isinstance(converted, sv.Detections) and len(converted) == 3
    assert "class_name" not in converted.data
    _assert_same(Detections.from_supervision(converted), d)
    converted.xyxy[0, 0] = -1  # supervision's copy is its own
    assert d.xyxy[0, 0] == 10
    empty = Detections.empty().to_supervision(prompts=PROMPTS)
    assert len(empty) == 0
    _assert_same(Detections.from_supervision(empty), Detections.empty())


def test_prompts_become_class_names(sv) -> None:
    d = _detections()
    converted = _result(d).to_supervision()
    assert converted.data["class_name"].tolist() == ["a red car", "a person", "a person"]
    assert converted.class_id.tolist() == [0, 1, 1]
    _assert_same(Detections.from_supervision(converted), d)
    assert d[[False, True, True]].to_supervision(prompts=PROMPTS).data["class_name"].tolist() == [
        "a person",
        "a person",
    ]
    with pytest.raises(ValueError, match="class_id 1 has no prompt: 1 prompts") as info:
        d.to_supervision(prompts=["a red car"])
    assert "\n" not in str(info.value)


def test_supervision_annotators_draw_our_boxes(sv) -> None:
    frame = np.full((256, 320, 3), 40, np.uint8)
    d = _detections()
    converted = _result(d).to_supervision()
    boxed = sv.BoxAnnotator(thickness=2).annotate(scene=frame.copy(), detections=converted)
    changed = (boxed != frame).any(axis=2)
    for x1, y1, x2, y2 in d.xyxy.astype(int):
        assert changed[y1 : y2 + 1, x1 : x2 + 1].any(), f"nothing drawn in box {(x1, y1, x2, y2)}"
    outside = np.ones_like(changed)
    for x1, y1, x2, y2 in d.xyxy.astype(int):
        outside[max(y1 - 3, 0) : y2 + 4, max(x1 - 3, 0) : x2 + 4] = False
    assert not changed[outside].any(), "the annotator drew away from every box"
    labelled = sv.LabelAnnotator().annotate(scene=frame.copy(), detections=converted)
    assert (labelled != frame).any()  # labels come from data["class_name"]


@pytest.mark.filterwarnings("ignore:The `ByteTrack` was deprecated:FutureWarning")
def test_bytetrack_keeps_ids_for_boxes_moving_across_frames(sv) -> None:
    if not hasattr(sv, "ByteTrack"):
        pytest.skip(f"supervision {sv.__version__} has no ByteTrack (dropped in 0.31)")
    tracker = sv.ByteTrack(frame_rate=10)
    ids = []
    for t in range(5):
        d = Detections(
            xyxy=np.array(
                [[20 + 12 * t, 40, 120 + 12 * t, 100], [300 - 10 * t, 150, 360 - 10 * t, 230]],
                np.float32,
            ),
            confidence=np.array([0.9, 0.8], np.float32),
            class_id=np.array([0, 1], np.int64),
        )
        tracked = tracker.update_with_detections(d.to_supervision(prompts=PROMPTS))
        assert len(tracked) == 2, f"frame {t}: {len(tracked)} tracked boxes"
        by_class = dict(zip(tracked.class_id.tolist(), tracked.tracker_id.tolist(), strict=True))
        ids.append((by_class[0], by_class[1]))
    assert len(set(ids)) == 1, f"tracker ids changed across frames: {ids}"
    assert ids[0][0] != ids[0][1]
