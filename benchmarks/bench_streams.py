"""Many cameras, one model: N live RTSP streams through one ``streamdet run`` against N runs.

    python benchmarks/bench_streams.py                  # 4 streams at 640x360, 25 s a round
    python benchmarks/bench_streams.py --quick          # CI: 2 streams at 320x180, 10 s a round

N RTSP test servers (GStreamer's, ``tests/rtsp_server.py``, on 127.0.0.1) each serve a live
stream at 30 FPS. Two ways run the same streams with the same prompts, outputs (an MP4 and a
JSONL per stream) and model (the built-in one, its defaults), for the same wall time, in turn
(``--rounds`` rounds, alternating which goes first):

* ``together``: one ``streamdet run URL1 URL2 ...`` process (``streamdet.pipeline.streams``:
  one capture thread per stream, every stream's newest frame through one detector call);
* ``separate``: N ``streamdet run URL`` processes at once, one per stream.

Each process is stopped with SIGINT (as Ctrl-C) after ``--seconds`` and writes its reports
(``--report``); aggregate processed FPS = the sum over streams of each stream's frames
processed / its run's seconds (from its source's opening to the stop: model loading is left out,
for both ways alike). Each round also measures where the CPU went, in its second half (after
every model has loaded): the CPU time of the streamdet processes (``/proc/PID/stat``, all
threads) per processed frame, and the share of the machine's CPU that was busy (``/proc/stat``,
the test servers included): when both ways keep the machine busy, their FPS ratio is the inverse
of their CPU per frame. The issue-19 target: ``together`` at least 1.5x ``separate`` with 4
streams on 2 cores. JSON: ``benchmarks/results/bench_streams[-quick].json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, command_line, logger, write_report
from _rtsp import RtspServer, free_port, rtsp_server_problem

log = logger("bench_streams")

PROMPTS = ("a red circle", "a person", "a white car")


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )


def _stop(procs: list[subprocess.Popen[str]]) -> list[str]:
    """SIGINT every process (as Ctrl-C), wait for each; their stderr tails on failure."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    problems = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode not in (0, 130):
            problems.append((err or "").strip().splitlines()[-1:] or [f"exit {p.returncode}"])
    return [line for lines in problems for line in lines]


def _run_cmd(urls: list[str], out: Path, report: Path, threads: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "streamdet", "run", *urls]
    for prompt in PROMPTS:
        cmd += ["-p", prompt]
    cmd += ["-o", f"{out}/", "--jsonl", f"{out}/", "--report", str(report)]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine so far (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def _round(way: str, urls: list[str], seconds: float, work: Path, threads: int | None) -> dict:
    """One way for ``seconds``: its processes' reports summed, and its CPU use in the second
    half of the round (every model loaded by then)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    groups = [urls] if way == "together" else [[u] for u in urls]
    procs, reports = [], []
    for i, group in enumerate(groups):
        out = work / f"{way}-{i}"
        report = work / f"{way}-{i}.json"
        reports.append(report)
        procs.append(_start(_run_cmd(group, out, report, threads), env))
    time.sleep(seconds / 2)
    cpu0, busy0, t0 = sum(_cpu_seconds(p.pid) for p in procs), _machine_busy(), time.perf_counter()
    time.sleep(seconds / 2)
    cpu1, busy1, t1 = sum(_cpu_seconds(p.pid) for p in procs), _machine_busy(), time.perf_counter()
    problems = _stop(procs)
    runs: list[dict[str, Any]] = []
    for report in reports:
        if report.exists():
            runs += json.loads(report.read_text(encoding="utf-8"))
    processed = sum(r["frames_processed"] for r in runs)
    dropped = sum(r["frames_dropped"] for r in runs)
    longest = max((r["seconds"] for r in runs), default=0.0)
    latency = [r["stages_ms"]["latency"]["p95"] for r in runs if "latency" in r["stages_ms"]]
    fps = sum(r["fps"] for r in runs)
    cpu_rate = (cpu1 - cpu0) / (t1 - t0)  # CPU seconds per second of the streamdet processes
    return {
        "way": way,
        "processes": len(groups),
        "streams_reported": len(runs),
        "frames_processed": processed,
        "frames_dropped": dropped,
        "seconds": round(longest, 2),
        "aggregate_fps": round(fps, 2),
        "cpu_cores_used": round(cpu_rate, 2),
        "cpu_ms_per_frame": round(cpu_rate * 1e3 / fps, 1) if fps else None,
        "machine_busy": round((busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1.0), 3),
        "per_stream_fps": [r["fps"] for r in runs],
        "latency_p95_ms": [round(v, 1) for v in latency],
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI: 2 streams, 320x180, 10 s, 1 round")
    p.add_argument("--streams", type=int, help="live streams (default 4; quick 2)")
    p.add_argument("--size", help="WxH of the streams (default 640x360; quick 320x180)")
    p.add_argument("--seconds", type=float, help="seconds a round (default 25; quick 10)")
    p.add_argument("--rounds", type=int, help="rounds of both ways (default 2; quick 1)")
    p.add_argument("--threads", type=int, help="intra-op threads per process (default: cores)")
    p.add_argument("--out", type=Path, help="JSON (default results/bench_streams[-quick].json)")
    args = p.parse_args(argv)
    quick = args.quick
    n = args.streams or (2 if quick else 4)
    size = args.size or ("320x180" if quick else "640x360")
    seconds = args.seconds or (10.0 if quick else 25.0)
    rounds = args.rounds or (1 if quick else 2)
    problem = rtsp_server_problem()
    if problem is not None:
        print(f"bench_streams: {problem}", file=sys.stderr)
        return 2
    width, height = (int(v) for v in size.lower().split("x"))
    out = args.out or RESULTS_DIR / ("bench_streams-quick.json" if quick else "bench_streams.json")
    servers = [RtspServer(free_port(), "/cam", 30, (width, height)) for _ in range(n)]
    started = time.perf_counter()
    results: list[dict] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        for server in servers:
            server.start()
            stack.callback(server.kill)
        urls = [s.url() for s in servers]
        for r in range(rounds):
            order = ("together", "separate") if r % 2 == 0 else ("separate", "together")
            for way in order:
                work = Path(tmp) / f"round{r}"
                work.mkdir(exist_ok=True)
                result = _round(way, urls, seconds, work, args.threads)
                result["round"] = r
                log(
                    f"round {r} {way}: {result['aggregate_fps']:.1f} FPS over "
                    f"{result['streams_reported']} streams, {result['cpu_ms_per_frame']} CPU ms a "
                    f"frame, machine {100 * result['machine_busy']:.0f}% busy"
                )
                results.append(result)
    fps = {
        way: statistics.median(x["aggregate_fps"] for x in results if x["way"] == way)
        for way in ("together", "separate")
    }
    ratio = fps["together"] / fps["separate"] if fps["separate"] else None
    cpu = {
        way: statistics.median(
            x["cpu_ms_per_frame"] for x in results if x["way"] == way and x["cpu_ms_per_frame"]
        )
        for way in ("together", "separate")
    }
    report = {
        "benchmark": "bench_streams",
        "command": command_line("bench_streams.py", argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "streams": n,
        "size": size,
        "stream_fps": 30,
        "seconds_per_round": seconds,
        "prompts": list(PROMPTS),
        "rounds": results,
        "aggregate_fps": fps,
        "cpu_ms_per_frame": cpu,
        "together_over_separate": None if ratio is None else round(ratio, 2),
        "target": {"together_over_separate": 1.5, "met": ratio is not None and ratio >= 1.5},
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_report(report, out)
    print(
        f"{n} streams at {size}: together {fps['together']:.1f} FPS, separate "
        f"{fps['separate']:.1f} FPS ({report['together_over_separate']}x); wrote {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
