"""streamdet: text-prompted zero-shot object detection for video with CLIP over sliding windows.

    from streamdet import Detector
    det = Detector("streamdet/scenes-clip", ["a red car", "a person"])
    result = det.detect(frame)  # frame: HxWx3 uint8 BGR
    tracker = Tracker()          # from streamdet import Tracker: ids across a video's frames
    result = tracker.update(result)  # result.detections.track_id

    # a folder of videos, resumably, on Ray workers (pip install "streamdet[ray]")
    streamdet.run_folder("clips/", ["a red car"], video_out="out/", jsonl_out="out/", ray=True)

Importing the package is cheap; the detector and its ONNX Runtime session load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamdet.errors import StreamdetError
from streamdet.types import Detections, Frame, FrameResult, Timings, Workload

__version__ = "0.1.0"

if TYPE_CHECKING:
    from streamdet.detect.classify import Classifier
    from streamdet.detect.detector import Detector
    from streamdet.distributed.folder import FolderResult, run_folder
    from streamdet.search.video_index import VideoIndex
    from streamdet.track import Tracker

__all__ = [
    "Classifier",
    "Detections",
    "Detector",
    "FolderResult",
    "Frame",
    "FrameResult",
    "StreamdetError",
    "Timings",
    "Tracker",
    "VideoIndex",
    "Workload",
    "__version__",
    "run_folder",
]


def __getattr__(name: str):
    """Import the engine lazily so ``import streamdet`` stays fast (no onnxruntime import)."""
    if name == "Detector":
        from streamdet.detect.detector import Detector

        return Detector
    if name == "Classifier":
        from streamdet.detect.classify import Classifier

        return Classifier
    if name == "Tracker":
        from streamdet.track import Tracker

        return Tracker
    if name in ("run_folder", "FolderResult"):
        from streamdet.distributed import folder

        return getattr(folder, name)
    if name == "VideoIndex":
        from streamdet.search.video_index import VideoIndex

        return VideoIndex
    raise AttributeError(f"module 'streamdet' has no attribute {name!r}")
