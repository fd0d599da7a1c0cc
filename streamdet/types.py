"""Small frozen data types passed between stages.

``Frame`` is what a source yields and every later stage (capture queue, inference, sinks) receives.
``Detections`` follows the parallel-arrays design of roboflow/supervision: one row per box, shapes
checked on construction, boolean-mask indexing. ``FrameResult`` is what ``Detector.detect`` returns
for one frame, with its ``Timings`` and ``Workload`` (windows computed and reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import Any

import numpy as np

from streamdet.errors import MissingDependencyError


def _check_array(name: str, value: np.ndarray, shape: tuple[int | None, ...]) -> None:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, but got {type(value).__name__}")
    if value.ndim != len(shape) or any(
        want is not None and got != want for want, got in zip(shape, value.shape, strict=True)
    ):
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, but got {value.shape}")


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    ``image`` is (H, W, 3) uint8 BGR and C-contiguous whatever the input was (gray, alpha, 4:4:4,
    odd sizes), and upright (a display rotation the input carries is already applied). ``index``
    counts the frames this source produced, from 0. ``pts`` is the presentation time in seconds
    from the start of the source: from the file for files (variable frame rate kept), and for live
    sources increasing across reconnects (the gap is the wall-clock time without frames); ``None``
    only when the source has no timing at all. ``captured_at`` is ``time.monotonic()`` when the
    frame was read, so a consumer can tell how old it is.

    Compared by identity (``eq=False``): comparing the arrays elementwise is never what is meant.
    """

    image: np.ndarray
    index: int
    pts: float | None
    captured_at: float


@dataclass(frozen=True)
class Detections:
    """Boxes found in one frame, as parallel arrays.

    xyxy: (n, 4) float32 pixel corners (x1, y1, x2, y2) in the input frame, x2/y2 exclusive.
    confidence: (n,) float32 in [0, 1].
    class_id: (n,) int64, index into the prompts of the frame.
    track_id: (n,) int64 identities kept across frames by ``streamdet.track.Tracker`` (unique
    within a run, across prompts), or None for untracked boxes (what ``Detector.detect`` returns).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_array("xyxy", self.xyxy, (None, 4))
        n = len(self.xyxy)
        _check_array("confidence", self.confidence, (n,))
        _check_array("class_id", self.class_id, (n,))
        if self.track_id is not None:
            _check_array("track_id", self.track_id, (n,))

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int64),
        )

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        """The parts' boxes in order. Track ids are kept when every part has them; merging
        tracked with untracked boxes (that are not empty) is a ValueError, since the result
        could not say which boxes are which."""
        if not parts:
            return cls.empty()
        tracked = [p.track_id is not None for p in parts if len(p) or p.track_id is not None]
        if any(tracked) and not all(tracked):
            raise ValueError("cannot merge tracked and untracked detections (track_id is None)")
        track_id = None
        if tracked and all(tracked):
            ids = [p.track_id for p in parts if p.track_id is not None]
            track_id = np.concatenate(ids).astype(np.int64, copy=False)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            confidence=np.concatenate([p.confidence for p in parts]).astype(np.float32, copy=False),
            class_id=np.concatenate([p.class_id for p in parts]).astype(np.int64, copy=False),
            track_id=track_id,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        if isinstance(index, int | np.integer):
            index = slice(int(index), int(index) + 1)
        track_id = None if self.track_id is None else self.track_id[index]
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], track_id)

    def to_supervision(self, prompts: Sequence[str] | None = None) -> Any:
        """These boxes as a ``supervision.Detections``, for its annotators and trackers.

        prompts: the prompt texts the class ids index (``FrameResult.prompts``); when given, each
        box's prompt is also in ``data["class_name"]``, where supervision's label annotators look.
        Raises MissingDependencyError when supervision is not installed (it is optional).
        """
        sv = _import_supervision()
        data: dict[str, np.ndarray] = {}
        if prompts is not None:
            names = tuple(prompts)
            if len(self) and int(self.class_id.max()) >= len(names):
                raise ValueError(
                    f"class_id {int(self.class_id.max())} has no prompt: {len(names)} prompts were "
                    "given; pass the prompts the detections were made with"
                )
            data["class_name"] = np.array([names[i] for i in self.class_id.tolist()], dtype=str)
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32, copy=True),
            confidence=self.confidence.astype(np.float32, copy=True),
            class_id=self.class_id.astype(np.int64, copy=True),
            tracker_id=None if self.track_id is None else self.track_id.astype(np.int64, copy=True),
            data=data,
        )

    @classmethod
    def from_supervision(cls, detections: Any) -> Detections:
        """Detections from a ``supervision.Detections``, or anything with ``xyxy``,
        ``confidence`` and ``class_id`` attributes (duck-typed: supervision is not imported).

        A ``confidence`` of None counts as 1.0 for every box and a ``class_id`` of None as 0
        (supervision leaves them None for boxes that come from annotations, not a model). A
        ``tracker_id`` (supervision's trackers set it) becomes ``track_id``.
        """
        if not hasattr(detections, "xyxy"):
            raise TypeError(
                "from_supervision needs an object with xyxy, confidence and class_id attributes "
                f"(a supervision.Detections), but got {type(detections).__name__}"
            )
        xyxy = _as_array("xyxy", detections.xyxy, np.float32)
        _check_array("xyxy", xyxy, (None, 4))
        n = len(xyxy)
        confidence = getattr(detections, "confidence", None)
        class_id = getattr(detections, "class_id", None)
        if confidence is None:
            confidence = np.ones((n,), np.float32)
        if class_id is None:
            class_id = np.zeros((n,), np.int64)
        class_id = _as_array("class_id", class_id, None)
        kind = class_id.dtype.kind  # i/u: integers; f: floats, accepted when whole
        whole = kind in "iu" or (kind == "f" and bool((class_id == class_id.round()).all()))
        if class_id.size and not whole:
            raise ValueError(f"class_id must hold whole numbers, but got dtype {class_id.dtype}")
        tracker_id = getattr(detections, "tracker_id", None)
        return cls(
            xyxy=xyxy,
            confidence=_as_array("confidence", confidence, np.float32),
            class_id=class_id.astype(np.int64),
            track_id=None if tracker_id is None else _as_array("tracker_id", tracker_id, np.int64),
        )


#: How to install the optional supervision package. From 0.30 on it no longer requires
#: opencv-python (which would sit beside streamdet's opencv-python-headless, and two cv2 builds in
#: one environment break each other): it uses whichever cv2 is installed. 0.31 dropped ByteTrack.
SUPERVISION_INSTALL = 'pip install "supervision>=0.30,<0.31"'


def _as_array(name: str, value: Any, dtype: type | None) -> np.ndarray:
    """`value` (an array or array-like) as a numpy array; a one-line error if it is not one."""
    try:
        return np.array(value, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array, but got {type(value).__name__}") from None


def _import_supervision() -> ModuleType:
    """The supervision package, or a one-line MissingDependencyError that says how to get it."""
    try:
        import supervision
    except ImportError:
        raise MissingDependencyError(
            f"to_supervision needs the optional package supervision: {SUPERVISION_INSTALL} "
            "(0.30 uses streamdet's opencv-python-headless; it installs no second OpenCV)"
        ) from None
    return supervision


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each stage of ``Detector.detect`` for one frame."""

    preprocess_ms: float = 0.0
    encode_ms: float = 0.0  # the image tower, the dense method's second pass included
    score_ms: float = 0.0
    boxes_ms: float = 0.0
    verify_ms: float = 0.0  # crops around the boxes scored again (streamdet.detect.verify)

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.encode_ms + self.score_ms + self.boxes_ms + self.verify_ms


@dataclass(frozen=True)
class Workload:
    """How much image-tower work one frame took, and how much temporal reuse saved.

    windows_computed / windows_reused: windows whose embeddings were computed for this frame /
    kept from an earlier frame (``streamdet.detect.reuse``); views_computed / views_reused: the
    same for the verification crops around boxes; frames_computed / frames_reused: one-pass
    (``dense`` method) frames that went through the frame tower / kept the last pass's tokens;
    zoom_computed / zoom_reused: the same for the crops of its second, finer pass
    (``streamdet.detect.zoom``). Summed over a run by the pipeline's report.
    """

    windows_computed: int = 0
    windows_reused: int = 0
    views_computed: int = 0
    views_reused: int = 0
    frames_computed: int = 0
    frames_reused: int = 0
    zoom_computed: int = 0
    zoom_reused: int = 0

    def __add__(self, other: Workload) -> Workload:
        return Workload(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Workload)))

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FrameResult:
    """Everything the detector found in one frame.

    heatmaps: (prompts, grid rows, grid cols) float32 in [0, 1]; cell (r, c) covers pixels
    rows r*patch .. (r+1)*patch and columns c*patch .. (c+1)*patch of the frame (the last row and
    column may be cut by the frame edge).
    """

    detections: Detections
    heatmaps: np.ndarray
    prompts: tuple[str, ...]
    frame_shape: tuple[int, int]
    patch: int
    timings: Timings = field(default_factory=Timings)
    work: Workload = field(default_factory=Workload)

    def labels(self) -> list[str]:
        """The prompt text of every detection, in order."""
        return [self.prompts[i] for i in self.detections.class_id.tolist()]

    def to_supervision(self) -> Any:
        """The detections as a ``supervision.Detections`` with each box's prompt in
        ``data["class_name"]`` (see ``Detections.to_supervision``)."""
        return self.detections.to_supervision(prompts=self.prompts)

    def to_records(self) -> list[dict]:
        """JSON-ready detections: label, prompt index, box and score, and ``track_id`` when the
        boxes are tracked."""
        d = self.detections
        records = [
            {
                "label": self.prompts[int(k)],
                "prompt_index": int(k),
                "box": [round(float(v), 1) for v in box],
                "score": round(float(s), 4),
            }
            for box, s, k in zip(d.xyxy, d.confidence, d.class_id, strict=True)
        ]
        if d.track_id is not None:
            for record, track in zip(records, d.track_id.tolist(), strict=True):
                record["track_id"] = int(track)
        return records
