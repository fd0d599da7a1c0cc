"""The pipeline's behaviour with stand-in stages: order and completeness for files, bounded
queues and fresh frames for live sources, prompt reloads, and every way a run can end."""

from __future__ import annotations

import threading
import time

import pytest
from fakes import FakeDetector, FakeSource, ListSink

from streamdet.errors import PipelineError, SourceError
from streamdet.pipeline.prompt_file import PromptFile
from streamdet.pipeline.runner import RunOptions, run


def test_a_file_is_processed_whole_and_in_order():
    det, out = FakeDetector(), ListSink()
    report = run(FakeSource(40), det, [out], options=RunOptions(queue_size=2, result_queue=1))
    assert [i for i, _ in out.items] == list(range(40))
    assert det.seen == list(range(40))
    assert out.closed
    assert (report.frames_read, report.frames_processed, report.frames_dropped) == (40, 40, 0)
    assert report.outputs == {"list": 40} and not report.interrupted
    assert {"capture_wait", "encode", "render", "write", "latency"} <= set(report.stages)


def test_a_slow_detector_never_loses_a_file_frame():
    det, out = FakeDetector(delay=0.005), ListSink()
    run(FakeSource(30), det, [out])
    assert [i for i, _ in out.items] == list(range(30))


def test_a_live_source_faster_than_inference_stays_bounded_and_fresh():
    """A 200 FPS camera against 20 ms inference: most frames are dropped, and each processed
    frame is one of the newest when inference picks it up (counted in frames, not milliseconds,
    so a busy machine cannot fail it: a queue that kept old frames would fall hundreds behind)."""
    source = FakeSource(None, live=True, fps=200)
    stop = threading.Event()
    behind: list[int] = []  # frames the camera made after the one inference just picked up

    class Timed(FakeDetector):
        def detect(self, frame):
            behind.append(len(source.produced) - 1 - int(frame[0, 0, 0]) % 256)
            return super().detect(frame)

    out = ListSink(on_write=lambda count: stop.set() if count >= 25 else None)
    report = run(source, Timed(delay=0.02), [out], options=RunOptions(queue_size=1), stop=stop)
    assert report.interrupted and report.frames_processed >= 25
    assert report.frames_dropped > report.frames_processed  # most frames dropped
    indices = [i for i, _ in out.items]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # the marker wraps at 256 frames; compare while it has not
    fresh = [b for b in behind[5:] if 0 <= b < 128]
    assert fresh and sorted(fresh)[len(fresh) // 2] <= 2, behind


def test_stop_ends_the_run_and_closes_every_output():
    stop = threading.Event()
    out = ListSink(on_write=lambda n: stop.set() if n == 5 else None)
    report = run(FakeSource(None, live=True, fps=100), FakeDetector(), [out], stop=stop)
    assert report.interrupted and out.closed
    assert report.frames_processed == len(out.items) >= 5


def test_an_inference_error_stops_everything_and_names_the_stage():
    out = ListSink()
    t0 = time.monotonic()
    with pytest.raises(PipelineError, match="inference stage failed: ZeroDivisionError: boom"):
        run(FakeSource(None, live=True, fps=100), FakeDetector(fail_at=3), [out])
    assert time.monotonic() - t0 < 10
    assert out.closed and len(out.items) == 3


def test_a_source_error_is_raised_as_is_after_the_frames_before_it():
    out = ListSink()
    with pytest.raises(SourceError, match="stream lost"):
        run(FakeSource(20, fail_at=7, error=SourceError("stream lost")), FakeDetector(), [out])
    assert [i for i, _ in out.items] == list(range(7)) and out.closed


def test_a_non_streamdet_source_error_is_wrapped_with_the_capture_stage():
    with pytest.raises(PipelineError, match="capture stage failed: OSError"):
        run(FakeSource(5, fail_at=2, error=OSError("usb")), FakeDetector(), [ListSink()])


def test_an_output_error_stops_the_run_and_the_other_outputs_are_closed():
    good, bad = ListSink(), ListSink(fail_at=4)
    with pytest.raises(PipelineError, match="output stage failed: OSError"):
        run(FakeSource(None, live=True, fps=100), FakeDetector(), [good, bad])
    assert good.closed and bad.closed
    assert len(bad.items) == 4


def test_keyboard_interrupt_on_the_calling_thread_closes_outputs_then_propagates():
    def interrupt(n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt

    out = ListSink(on_write=interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(FakeSource(None, live=True, fps=100), FakeDetector(), [out])
    assert out.closed


def test_a_changed_prompt_file_reaches_the_detector_mid_run(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red car\n")
    watch = PromptFile(path, interval=0.0)

    def edit(n: int) -> None:
        if n == 3:
            path.write_text("# edited\na person\na dog\n")

    out = ListSink(on_write=edit)
    det = FakeDetector(delay=0.01)
    det.set_prompts(watch.prompts)
    stop = threading.Event()
    out2 = ListSink(on_write=lambda n: stop.set() if n == 40 else None)
    run(FakeSource(None, live=True, fps=100), det, [out, out2], prompts=watch, stop=stop)
    assert det.prompt_changes[-1] == ("a person", "a dog")
    prompts_seen = [p for _, p in out.items]
    assert prompts_seen[0] == ("a red car",) and prompts_seen[-1] == ("a person", "a dog")


def test_the_report_sums_each_frames_work_and_the_run_starts_with_a_reset():
    """Temporal reuse is counted per frame (``FrameResult.work``); the report sums it, and a run
    calls the detector's ``reset`` first so nothing of another stream is reused."""
    from dataclasses import replace

    from streamdet.types import Workload

    class Reusing(FakeDetector):
        resets = 0

        def reset(self) -> None:
            self.resets += 1

        def detect(self, frame):
            first = not self.seen
            work = Workload(10, 0, 2, 0) if first else Workload(1, 9, 0, 2)
            return replace(super().detect(frame), work=work)

    det = Reusing()
    report = run(FakeSource(5), det, [ListSink()])
    assert det.resets == 1
    assert report.work == {
        "windows_computed": 14,
        "windows_reused": 36,
        "views_computed": 2,
        "views_reused": 8,
        "frames_computed": 0,
        "frames_reused": 0,
        "zoom_computed": 0,
        "zoom_reused": 0,
    }
    assert report.to_dict()["work"] == report.work
    assert any("windows computed 14, reused 36 (72%)" in line for line in report.lines())
