"""Running a detector over the quality dataset and measuring what it found.

One ``Detector`` per named setting (``streamdet.quality.settings``), built from the one
configuration: the setting's preset, the run's settings (``RunSettings``: cell size and runtime)
and the setting's own overrides above them. Every frame is run with its whole prompt set; the
first frame of each prompt set is run once untimed (the prompts' first use), then every frame is
timed. The result records the detector's resolved configuration (``DetectorConfig.to_dict``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamdet.config import builtin_defaults, get_preset
from streamdet.detect.detector import Detector
from streamdet.quality.analysis import analyse
from streamdet.quality.dataset import Dataset, FrameInfo
from streamdet.quality.metrics import DetBox, coco_ap, false_boxes, stability
from streamdet.quality.settings import NamedSetting


@dataclass(frozen=True)
class RunSettings:
    """What one run applies to every named setting.

    model: the model id or folder. patch: the cell size in pixels (a setting may name its own).
    precision: the image tower's precision for every setting (None: as exported).
    export_precision: the precision the model was exported in; a setting whose preset picks a
    precision (``fast``: int8 on a CPU) runs at ``precision`` or this instead, so that every
    setting of a run is compared at one precision.
    threads, cache_dir: runtime settings (None: streamdet's own).
    """

    model: str
    patch: int
    precision: str | None = None
    export_precision: str | None = None
    threads: int | None = None
    cache_dir: str | None = None

    def overrides(self) -> dict[str, Any]:
        """The run's settings by flat name (those not given are left out)."""
        values = {
            "patch": self.patch,
            "precision": self.precision,
            "threads": self.threads,
            "cache_dir": self.cache_dir,
        }
        return {k: v for k, v in values.items() if v is not None}


def detector_overrides(setting: NamedSetting, run: RunSettings) -> dict[str, Any]:
    """The caller's layer for ``setting``: the run's settings, the setting's own above them, and
    the run's precision pinned where the setting's preset would pick another."""
    overrides = {**run.overrides(), **setting.overrides}
    if overrides.get("precision") is None and run.export_precision is not None:
        device = overrides.get("device", builtin_defaults()["device"])
        if "precision" in get_preset(setting.preset).for_device(device):
            overrides["precision"] = run.export_precision
    return overrides


def build_detector(setting: NamedSetting, run: RunSettings, prompts: Sequence[str]) -> Detector:
    """The detector of one named setting (``ConfigError`` before loading for a bad setting)."""
    return Detector(run.model, prompts, preset=setting.preset, **detector_overrides(setting, run))


def run_detector(
    detector: Detector,
    frames: Sequence[FrameInfo],
    images: Mapping[int, np.ndarray],
    on_frame: Callable[[int], None] | None = None,
) -> tuple[list[DetBox], list[float]]:
    """Detect on every frame with its prompt set; return the boxes and per-frame milliseconds.

    Still frames are unrelated pictures: each is a stream of its own (``reset``: temporal reuse
    keeps nothing of the frame before). Video frames run in order, reuse included."""
    detections: list[DetBox] = []
    times: list[float] = []
    current: tuple[str, ...] = ()
    for n, f in enumerate(frames):
        if f.prompts != current:
            detector.set_prompts(f.prompts)
            current = f.prompts
            detector.detect(images[f.image_id])  # warm-up: first use of a prompt set is untimed
            detector.reset()  # the timed frame is not a repeat of the warm-up's
        if f.kind != "video":
            detector.reset()
        start = time.perf_counter()
        result = detector.detect(images[f.image_id])
        times.append((time.perf_counter() - start) * 1e3)
        d = result.detections
        for box, score, k in zip(d.xyxy, d.confidence, d.class_id, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            detections.append(DetBox(f.image_id, f.prompts[int(k)], (x1, y1, x2, y2), float(score)))
        if on_frame is not None:
            on_frame(n)
    return detections, times


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def evaluate_setting(
    setting: NamedSetting, dataset: Dataset, run: RunSettings, *, analysis: bool = False
) -> dict[str, Any]:
    """Run one named setting over the dataset and measure it; a JSON-ready dict. With
    ``analysis``, it also holds the failure analysis and calibration
    (``streamdet.quality.analysis``)."""
    detector = build_detector(setting, run, dataset.prompts[:1])
    start = time.perf_counter()
    still_dets, still_ms = run_detector(detector, dataset.stills, dataset.images)
    video_dets, video_ms = run_detector(detector, dataset.videos, dataset.images)
    seconds = time.perf_counter() - start
    prompts = dataset.prompts
    ap = coco_ap(dataset.stills, dataset.truths, still_dets, prompts)
    fb = false_boxes(dataset.stills, dataset.truths, still_dets)
    st = stability(dataset.tracks, video_dets)
    positives = Counter(t.prompt for t in dataset.truths if not t.ignore)
    ms = still_ms + video_ms
    result = {
        "config": detector.config.to_dict(),
        "ap50": rounded(ap.ap50),
        "ap50_95": rounded(ap.ap50_95),
        "false_boxes_per_frame": rounded(fb.per_frame),
        "negative_frames": fb.frames,
        "false_boxes": fb.boxes,
        "jitter": rounded(st.jitter),
        "centre_jitter": rounded(st.centre_jitter),
        "size_jitter": rounded(st.size_jitter),
        "blink": rounded(st.blink),
        "found": rounded(st.found),
        "tracks": st.tracks,
        "track_pairs": st.pairs,
        "ms_per_frame": rounded(float(np.mean(ms)) if ms else None, 2),
        "ms_per_frame_median": rounded(float(np.median(ms)) if ms else None, 2),
        "boxes_per_frame": rounded(len(still_dets) / max(len(dataset.stills), 1)),
        "seconds": round(seconds, 2),
        "per_prompt": {
            p: {
                "ap50": rounded(ap.per_prompt[p][0]),
                "ap50_95": rounded(ap.per_prompt[p][1]),
                "true_boxes": positives[p],
                "false_boxes_per_frame": rounded(fb.per_prompt.get(p)),
            }
            for p in prompts
        },
    }
    if analysis:
        result["analysis"] = analyse(dataset, still_dets)
    return result
