"""Many sources, one detector (``run_streams``): every stream's frames batched into one call,
files losing no frame, live streams never waiting for each other, a failing source or output
ending only its own stream, and Ctrl-C finalising every sink."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import FakeDetector, FakeSource, ListSink

from streamdet.pipeline.streams import StreamSpec, run_streams


class BatchDetector(FakeDetector):
    """A FakeDetector with ``detect_many``: records every batch's (stream, frame marker) pairs;
    each call sleeps ``delay`` once, as one batched tower call would."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.batch_delay = delay
        self.batches: list[list[tuple[int, int]]] = []

    def detect_many(self, frames, streams=None):
        self.batches.append([(k, int(f[0, 0, 0])) for k, f in zip(streams, frames, strict=True)])
        time.sleep(self.batch_delay)
        return [FakeDetector.detect(self, f) for f in frames]


def _named(source: FakeSource, name: str) -> FakeSource:
    source.name = name
    return source


def test_files_lose_no_frame_and_frames_of_several_streams_share_a_call():
    sinks = [ListSink() for _ in range(3)]
    sources = [_named(FakeSource(n), f"f{i}") for i, n in enumerate((20, 12, 30))]
    detector = BatchDetector(delay=0.002)
    reports = run_streams(
        [StreamSpec(s, [k]) for s, k in zip(sources, sinks, strict=True)], detector
    )
    for n, sink, report in zip((20, 12, 30), sinks, reports, strict=True):
        assert [i for i, _ in sink.items] == list(range(n))  # every frame, in order
        assert report.frames_processed == n and report.error is None
        assert report.outputs == {"list": n}
    assert [r.source for r in reports] == ["f0", "f1", "f2"]
    assert max(len(b) for b in detector.batches) == 3  # frames of all three in one call
    assert len(detector.batches) < 20 + 12 + 30  # fewer calls than frames
    for batch in detector.batches:
        assert len({k for k, _ in batch}) == len(batch)  # one frame per stream per call


def test_a_stalled_live_source_holds_up_no_other():
    """One camera sends a frame then goes silent (a stall); the other two go on at full rate."""
    stalled = _named(FakeSource(1, live=True, fps=25), "stalled")
    stalled_frames = stalled.frames

    def frames_then_stall(stop):
        yield from stalled_frames(stop)
        while not stop.is_set():
            time.sleep(0.01)

    stalled.frames = frames_then_stall
    live = [_named(FakeSource(None, live=True, fps=50), f"cam{i}") for i in range(2)]
    sinks = [ListSink() for _ in range(3)]
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    reports = run_streams(
        [StreamSpec(s, [k]) for s, k in zip([stalled, *live], sinks, strict=True)],
        BatchDetector(),
        stop=stop,
    )
    assert reports[0].frames_processed == 1
    for report in reports[1:]:
        assert report.frames_processed >= 30  # ~50 FPS for 1 s, not held to the stalled one
        assert report.interrupted
    assert all(s.closed for s in sinks)


def test_a_failing_source_ends_only_its_own_stream():
    bad = _named(FakeSource(50, fail_at=5, error=RuntimeError("camera unplugged")), "bad")
    good = _named(FakeSource(40), "good")
    sinks = [ListSink(), ListSink()]
    reports = run_streams(
        [StreamSpec(bad, [sinks[0]]), StreamSpec(good, [sinks[1]])], BatchDetector()
    )
    assert reports[0].frames_processed == 5 and "camera unplugged" in reports[0].error
    assert "ended early (camera unplugged)" in reports[0].lines()[0]
    assert reports[1].frames_processed == 40 and reports[1].error is None
    assert sinks[0].closed and sinks[1].closed


def test_a_failing_output_ends_only_its_own_stream():
    sinks = [ListSink(fail_at=3), ListSink()]
    reports = run_streams(
        [StreamSpec(_named(FakeSource(20), f"f{i}"), [k]) for i, k in enumerate(sinks)],
        BatchDetector(),
    )
    assert reports[0].frames_processed == 3 and "No space left" in reports[0].error
    assert reports[1].frames_processed == 20


def test_an_output_failing_behind_a_full_queue_ends_its_stream_without_a_hang():
    """The file's output is slow, so the inference thread fills its queue of results and waits
    for room; then the output fails. Nothing would ever make room: the run must still end, the
    other stream complete (a CI run under load once hung here until pytest's timeout)."""
    sinks = [
        ListSink(fail_at=3, on_write=lambda n: time.sleep(0.5) if n == 3 else None),
        ListSink(),
    ]
    specs = [StreamSpec(_named(FakeSource(40), f"f{i}"), [k]) for i, k in enumerate(sinks)]
    reports: list = []
    runner = threading.Thread(
        target=lambda: reports.extend(run_streams(specs, BatchDetector())), daemon=True
    )
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "run_streams hung behind the failed output"
    assert reports[0].frames_processed == 3 and "No space left" in reports[0].error
    assert reports[1].frames_processed == 40 and reports[1].error is None


def test_a_slow_live_output_drops_its_oldest_results_instead_of_slowing_the_others():
    slow = ListSink(on_write=lambda n: time.sleep(0.05))
    fast = ListSink()
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    cams = [_named(FakeSource(None, live=True, fps=60), f"cam{i}") for i in range(2)]
    reports = run_streams(
        [StreamSpec(cams[0], [slow]), StreamSpec(cams[1], [fast])], BatchDetector(), stop=stop
    )
    assert reports[0].frames_dropped > 0 and reports[0].frames_processed < 25
    assert reports[1].frames_processed >= 40


def test_stop_finalises_every_sink_and_prompt_edits_apply_to_every_stream():
    class Edits:
        def __init__(self):
            self.sent = False

        def poll(self):
            if not self.sent and len(detector.batches) >= 5:
                self.sent = True
                return ("a new thing",)
            return None

    detector = BatchDetector(delay=0.001)
    sinks = [ListSink(), ListSink()]
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    cams = [_named(FakeSource(None, live=True, fps=40), f"cam{i}") for i in range(2)]
    reports = run_streams(
        [StreamSpec(c, [k]) for c, k in zip(cams, sinks, strict=True)],
        detector,
        stop=stop,
        prompts=Edits(),
    )
    assert all(r.interrupted for r in reports) and all(k.closed for k in sinks)
    for sink in sinks:
        prompts = [p for _, p in sink.items]
        assert prompts[0] == ("a thing",) and prompts[-1] == ("a new thing",)


def test_no_streams_is_refused():
    with pytest.raises(ValueError, match="at least one stream"):
        run_streams([], BatchDetector())


def test_a_detector_without_detect_many_runs_frame_by_frame():
    sinks = [ListSink(), ListSink()]
    reports = run_streams(
        [StreamSpec(_named(FakeSource(7), f"f{i}"), [k]) for i, k in enumerate(sinks)],
        FakeDetector(),
    )
    assert [r.frames_processed for r in reports] == [7, 7]
    assert np.all([k.items[-1][0] == 6 for k in sinks])


def test_each_stream_reports_progress_and_stage_times_where_its_spec_says():
    """A live view of several streams reads each one's own numbers: the spec's clock gets that
    stream's stage times, its on_progress that stream's counts, the last one its final count."""
    from streamdet.pipeline.stats import StageClock

    clocks = [StageClock(), StageClock()]
    seen: list[list] = [[], []]
    sources = [_named(FakeSource(n), f"f{i}") for i, n in enumerate((25, 8))]
    specs = [
        StreamSpec(s, [ListSink()], clock, seen[i].append)
        for i, (s, clock) in enumerate(zip(sources, clocks, strict=True))
    ]
    reports = run_streams(specs, BatchDetector())
    for n, got, clock, report in zip((25, 8), seen, clocks, reports, strict=True):
        counts = [p.processed for p in got]
        assert counts[0] == 1 and counts[-1] == n == report.frames_processed
        assert counts == sorted(counts) and all(p.expected == n for p in got)
        assert set(clock.summary()) == set(report.stages) and "latency" in report.stages
        assert clock.summary()["write"].mean == report.stages["write"].mean
