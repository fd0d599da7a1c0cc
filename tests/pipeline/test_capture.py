"""The frame queue and the capture thread: files never lose a frame, live sources keep only the
newest, every wait ends when asked to stop, and a reader's error reaches the consumer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fakes import FakeSource

from streamdet.pipeline.capture import Capture, EndOfStream, FrameQueue
from streamdet.types import Frame


def frame(i: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), i, i / 30, time.monotonic())


def drain(q: FrameQueue, stop: threading.Event) -> list[int]:
    out = []
    while True:
        try:
            f = q.get(stop, timeout=5)
        except EndOfStream:
            return out
        assert f is not None, "timed out waiting for a frame"
        out.append(f.index)


def test_file_queue_waits_for_room_and_loses_nothing():
    stop = threading.Event()
    q = FrameQueue(2, drop_oldest=False)

    accepted: list[bool] = []  # asserted on this thread: an assert in the producer is lost

    def produce():
        for i in range(50):
            accepted.append(q.put(frame(i), stop))
        q.close()

    t = threading.Thread(target=produce)
    t.start()
    got = []
    while True:
        try:
            f = q.get(stop, timeout=5)
        except EndOfStream:
            break
        assert len(q) <= 2
        got.append(f.index)
        time.sleep(0.001)  # a slower consumer
    t.join(5)
    assert not t.is_alive() and accepted == [True] * 50
    assert got == list(range(50)) and q.dropped == 0


def test_live_queue_keeps_the_newest_and_counts_drops():
    stop = threading.Event()
    q = FrameQueue(2, drop_oldest=True)
    for i in range(10):
        assert q.put(frame(i), stop)  # never blocks
    assert len(q) == 2 and q.dropped == 8
    q.close()
    assert drain(q, stop) == [8, 9]


def test_a_blocked_put_and_get_return_when_stopped():
    stop = threading.Event()
    full = FrameQueue(1, drop_oldest=False)
    full.put(frame(0), stop)
    threading.Timer(0.2, stop.set).start()
    t0 = time.monotonic()
    assert full.put(frame(1), stop) is False
    assert time.monotonic() - t0 < 2
    empty = FrameQueue(1, drop_oldest=False)
    assert empty.get(stop) is None


def test_get_times_out_when_asked():
    q = FrameQueue(1, drop_oldest=False)
    t0 = time.monotonic()
    assert q.get(threading.Event(), timeout=0.1) is None
    assert time.monotonic() - t0 < 1


def test_the_readers_error_comes_after_the_frames_already_queued():
    stop = threading.Event()
    q = FrameQueue(4, drop_oldest=False)
    q.put(frame(0), stop)
    q.close(ValueError("decoder died"))
    assert q.get(stop).index == 0
    with pytest.raises(ValueError, match="decoder died"):
        q.get(stop)
    assert q.failed


def test_capture_thread_reads_a_whole_file_source_in_order():
    stop = threading.Event()
    cap = Capture(FakeSource(30), stop, queue_size=3).start()
    assert drain(cap.queue, stop) == list(range(30))
    assert cap.join(5)
    assert cap.stats.read == 30 and cap.stats.dropped == 0


def test_capture_thread_passes_on_the_sources_error():
    stop = threading.Event()
    cap = Capture(FakeSource(10, fail_at=4, error=OSError("unplugged")), stop).start()
    got = []
    with pytest.raises(OSError, match="unplugged"):
        while True:
            got.append(cap.queue.get(stop, timeout=5).index)
    assert got == [0, 1, 2, 3]


def test_max_fps_samples_a_live_source_by_arrival_time():
    ticks = iter(np.arange(0, 10, 1 / 30))  # a 30 FPS camera
    stop = threading.Event()
    source = FakeSource(60, live=True)
    cap = Capture(source, stop, queue_size=100, max_fps=10, clock=lambda: float(next(ticks)))
    cap.start()
    assert cap.join(5)
    kept = drain(cap.queue, stop)
    assert kept == list(range(0, 60, 3))
    assert cap.stats.skipped == 40 and cap.stats.read == 60


def test_capture_rejects_a_non_positive_max_fps():
    with pytest.raises(ValueError, match="max_fps"):
        Capture(FakeSource(1), threading.Event(), max_fps=0)
