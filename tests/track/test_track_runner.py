"""The streaming pipeline applies the tracker after the detector (stand-in stages, no model)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np

# the pipeline tests' stand-in source and detector (tests/pipeline/fakes.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipeline"))
from fakes import FakeDetector, FakeSource

from streamdet.config import resolve_config
from streamdet.pipeline.prompt_file import PromptFile
from streamdet.pipeline.runner import run
from streamdet.track import Tracker, tracker_for
from streamdet.types import Detections, FrameResult, Timings

#: Where each prompt's box is (its row), whatever the prompt's index.
ROWS = {"a thing": 0, "a red car": 1, "a dog": 2, "a person": 3}


class BoxDetector(FakeDetector):
    """One box per prompt, in its prompt's row (``ROWS``), drifting 1 px a frame, and a resolved
    configuration (tracking on unless ``track=False``)."""

    def __init__(self, **settings) -> None:
        super().__init__()
        self.config = resolve_config(settings)

    def detect(self, frame: np.ndarray) -> FrameResult:
        super().detect(frame)
        i = len(self.seen)
        n = len(self.prompts)
        rows = [7 * ROWS[p] for p in self.prompts]  # inside the 32-pixel-high frames
        xyxy = np.array([[i, y, i + 10, y + 5] for y in rows], np.float32)
        found = Detections(xyxy, np.full(n, 0.9, np.float32), np.arange(n, dtype=np.int64))
        heat = np.zeros((n, 1, 2), np.float32)
        return FrameResult(found, heat, self.prompts, frame.shape[:2], 32, Timings())


class ResultSink:
    """Keeps every frame's result."""

    needs_picture = False

    def __init__(self, on_write=None) -> None:
        self.results: list[FrameResult] = []
        self.on_write = on_write

    def write(self, frame, result, picture) -> None:
        self.results.append(result)
        if self.on_write is not None:
            self.on_write(len(self.results))

    def close(self):
        return None


def test_a_video_run_tracks_every_frame_and_times_it():
    out = ResultSink()
    report = run(FakeSource(12), BoxDetector(), [out])
    ids = [r.detections.track_id for r in out.results]
    assert all(i is not None and i.tolist() == [1] for i in ids)  # one object, one id
    assert "track" in report.stages
    assert report.config["track"]["enabled"] is True


def test_tracking_off_or_a_still_image_leaves_the_boxes_untracked():
    out = ResultSink()
    run(FakeSource(5), BoxDetector(track=False), [out])
    assert len(out.results) == 5 and all(r.detections.track_id is None for r in out.results)
    out = ResultSink()
    run(FakeSource(1), BoxDetector(), [out])  # one frame, not live: a still image
    assert len(out.results) == 1 and out.results[0].detections.track_id is None


def test_tracker_for_reads_the_detectors_settings():
    video, still = FakeSource(10), FakeSource(1)
    tracker = tracker_for(BoxDetector(track_min_hits=4), video)
    assert isinstance(tracker, Tracker) and tracker.config.min_hits == 4
    assert tracker_for(BoxDetector(), still) is None
    assert tracker_for(BoxDetector(track=False), video) is None
    assert tracker_for(FakeDetector(), video) is None  # no configuration: not tracked
    assert tracker_for(BoxDetector(), FakeSource(None, live=True)) is not None


def test_a_prompt_change_mid_run_keeps_the_remaining_prompts_ids(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red car\na dog\n")
    watch = PromptFile(path, interval=0.0)
    stop = threading.Event()

    def edit(n: int) -> None:
        if n == 5:  # "a dog" moves from index 1 to 0 (and so to the first box's place)
            path.write_text("a dog\na person\n")
        if n == 30:
            stop.set()

    det = BoxDetector()
    det.set_prompts(watch.prompts)
    out = ResultSink(on_write=edit)
    run(FakeSource(None, live=True, fps=100), det, [out], prompts=watch, stop=stop)
    first, last = out.results[0], out.results[-1]
    assert first.prompts == ("a red car", "a dog") and last.prompts == ("a dog", "a person")
    before = dict(zip(first.prompts, first.detections.track_id.tolist(), strict=True))
    after = dict(zip(last.prompts, last.detections.track_id.tolist(), strict=True))
    assert after["a dog"] == before["a dog"]  # kept its id at its new index (1 -> 0)
    assert after["a person"] > max(before.values())  # a new prompt: a new, larger id
    later = {int(i) for r in out.results[-10:] for i in r.detections.track_id}
    assert before["a red car"] not in later  # the removed prompt's track ended
