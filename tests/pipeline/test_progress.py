"""What the terminal shows: the progress bar, live stats and the end summary."""

from __future__ import annotations

from streamdet.pipeline.progress import progress_line, stats_line
from streamdet.pipeline.runner import Progress
from streamdet.pipeline.stats import RunReport, StageClock


def test_progress_bar_shows_done_total_fps_and_eta():
    p = Progress(processed=30, expected=120, elapsed=3.0, fps=10.0, dropped=0, latency_ms=None)
    line = progress_line(p, "clip.mp4")
    assert line.startswith("clip.mp4 [######..................] 30/120 frames")
    assert "10.0 FPS" in line and "ETA 0:09" in line


def test_progress_without_a_known_total_counts_frames_and_time():
    p = Progress(processed=7, expected=None, elapsed=75, fps=0.1, dropped=3, latency_ms=None)
    assert progress_line(p) == "7 frames  0.1 FPS  1:15"


def test_stats_line_lists_recent_stage_means():
    clock = StageClock()
    for ms in (10.0, 20.0):
        clock.add("encode", ms)
    clock.add("latency", 50.0)
    p = Progress(processed=2, expected=None, elapsed=1, fps=2.0, dropped=4, latency_ms=50.0)
    line = stats_line(p, clock)
    assert "dropped 4" in line and "encode 15.0 ms" in line and "latency 50.0 ms" in line
    assert "render" not in line  # a stage without samples is left out


def test_stage_summary_percentiles_and_run_summary_lines():
    clock = StageClock()
    for ms in range(1, 101):
        clock.add("encode", float(ms))
    s = clock.summary()["encode"]
    assert (s.mean, s.p50, s.max) == (50.5, 50.5, 100.0) and 94 < s.p95 < 96
    report = RunReport(
        source="rtsp://***@cam/x",
        live=True,
        frames_read=100,
        frames_processed=40,
        frames_dropped=55,
        frames_skipped=5,
        seconds=10.0,
        stages=clock.summary(),
        outputs={"o.mp4": 40, "o.jsonl": 40, "<stdout>": 1},
        interrupted=True,
        provider="CPUExecutionProvider",
    )
    lines = report.lines()
    assert lines[0].startswith("rtsp://***@cam/x: stopped: 40 frames in 10.0 s (4.0 FPS")
    assert "dropped 55" in lines[0] and "skipped by --max-fps 5" in lines[0]
    assert lines[2:4] == ["  wrote o.mp4 (40 frames)", "  wrote o.jsonl (40 lines)"]
    assert lines[-1] == "  wrote <stdout> (1 line)"
    assert report.to_dict()["fps"] == 4.0
