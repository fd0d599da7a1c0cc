"""The ``streamdet run`` sub-command's options (kept free of heavy imports: the CLI builds every
sub-command's parser at start-up, and ``run``'s code loads only when ``run`` is used)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.errors import ConfigError, StreamdetError

if TYPE_CHECKING:
    from streamdet.pipeline.job import RunJob

#: ``--ray`` without an address: a local Ray.
LOCAL_RAY = "local"


def _cmd_run(args: argparse.Namespace) -> int:
    """Flags -> a checked job (before the model loads) -> the detector -> the run."""
    from streamdet.detect.detector import Detector
    from streamdet.pipeline.job import RunJob, plan_job, run_job

    settings = settings_from_args(args)
    if args.ray is None and (args.ray_workers is not None or args.ray_gpus is not None):
        raise StreamdetError("--ray-workers and --ray-gpus go with --ray")
    sources = [*args.source, *_read_sources(args.sources)]
    if not sources:
        raise ConfigError("give a source: a file, folder, camera index or stream URL")
    job = RunJob(
        source=sources[0],
        together=tuple(sources[1:]),
        prompts=tuple(args.prompt),
        prompts_file=args.prompts_file,
        video_out=args.output,
        jsonl_out=args.jsonl,
        show=args.show,
        heatmap=args.heatmap,
        overlay=args.overlay,
        stats=args.stats,
        report=args.report,
        overwrite=args.overwrite,
        codec=args.codec,
        hwaccel=args.hwaccel,
        max_fps=args.max_fps,
        timeout=args.timeout,
        reconnect_timeout=args.reconnect_timeout,
        live_outputs=args.live_outputs,
        serve=args.serve,
        serve_token=args.serve_token,
    )
    if args.ray is not None:
        return _run_on_ray(job, args)
    planned = plan_job(job)
    detector = Detector(
        args.model, planned.initial_prompts, preset=settings.preset, **settings.overrides
    )
    return run_job(planned, detector)


def _run_on_ray(job: RunJob, args: argparse.Namespace) -> int:
    """``--ray``: the folder's files on Ray workers, resumably; the summary; the exit code."""
    import threading

    from streamdet.distributed.folder import DetectorSpec, check_ray_job, run_planned
    from streamdet.pipeline.job import EXIT_INTERRUPTED, plan_job, stop_on_signals
    from streamdet.pipeline.progress import FilesTerminal

    check_ray_job(job)
    planned = plan_job(job, resume=True)
    settings = settings_from_args(args)
    spec = DetectorSpec.of(args.model, settings.preset, settings.overrides)
    stop = threading.Event()
    with stop_on_signals(stop):
        result = run_planned(
            planned,
            spec,
            ray=True if args.ray == LOCAL_RAY else args.ray,
            workers=args.ray_workers,
            gpus_per_worker=args.ray_gpus,
            stop=stop,
            terminal=FilesTerminal(),
        )
    print(f"streamdet: {result.summary()}", file=sys.stderr)
    if job.report:
        Path(job.report).write_text(
            json.dumps([r.to_dict() for r in result.reports], indent=2) + "\n", encoding="utf-8"
        )
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.failed:
        names = ", ".join(source for source, _ in result.failed)
        raise StreamdetError(f"{len(result.failed)} of {result.total} inputs failed: {names}")
    return 0


def _read_sources(path: str | None) -> list[str]:
    """The sources listed in a file, one per line (blank lines and ``#`` comments skipped)."""
    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the sources file '{path}': {err}") from None
    found = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not found:
        raise ConfigError(f"the sources file '{path}' lists no sources; write one per line")
    return found


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    """The ``run`` sub-command's options."""
    p = sub.add_parser(
        "run",
        help="detect prompts in a video file, folder, camera or stream",
        description="Detect prompts in a video file, image, folder or glob of them, a webcam "
        "(index) or a network stream (rtsp://, rtmp://, http(s)://, udp://, srt://).",
    )
    p.add_argument(
        "source",
        nargs="*",
        help="file, folder, glob, camera index (0) or stream URL; several run at the same time "
        "through one model (a folder or quoted glob runs its files one after another)",
    )
    p.add_argument(
        "--sources",
        metavar="FILE",
        help="more sources to run at the same time, one per line (cameras, streams, files)",
    )
    p.add_argument("-p", "--prompt", action="append", default=[], help="what to find (repeat)")
    p.add_argument(
        "--prompts-file",
        help="one prompt per line; re-read when it changes, so a live run's prompts can be edited",
    )
    p.add_argument("-o", "--output", help="annotated MP4 (a folder for several inputs)")
    p.add_argument("--jsonl", help="per-frame detections as JSON lines ('-' for stdout)")
    p.add_argument("--show", action="store_true", help="show a live window (q or Esc stops)")
    p.add_argument(
        "--heatmap",
        nargs="?",
        const="color",
        default="none",
        choices=("none", "color", "dim"),
        help="draw the heatmap: colour map (default when given) or 'dim' everything else",
    )
    p.add_argument("--overlay", action="store_true", help="draw FPS/latency on the frames")
    p.add_argument("--stats", action="store_true", help="print live per-stage stats every second")
    p.add_argument("--report", help="write the run's summary (stats, outputs) as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--live-outputs",
        action="store_true",
        help="write -o/--jsonl at their paths as the run goes (fragmented MP4, one flushed line "
        "per frame), as for cameras and streams; files otherwise appear when complete",
    )
    p.add_argument(
        "--codec",
        default="libx264",
        help="H.264 encoder for -o: libx264 (default) or a hardware one, e.g. h264_nvenc",
    )
    p.add_argument(
        "--hwaccel",
        help="decode video files and streams with a hardware decoder, e.g. cuda (NVDEC); "
        "default: the CPU",
    )
    p.add_argument("--max-fps", type=float, help="sample a live source down to this frame rate")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="stream connect/read timeout, s (default 10)"
    )
    p.add_argument(
        "--reconnect-timeout",
        type=float,
        default=60.0,
        help="give up on a dropped stream after this many seconds (0: never; default 60)",
    )
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve a live web view (page, MJPEG, JSON API, WebSocket) on this port; "
        "127.0.0.1 unless a host is named (0: any free port). Needs streamdet[serve]",
    )
    p.add_argument(
        "--serve-token",
        metavar="TOKEN",
        help="require this token for the web view (Bearer or ?token=); a host other than "
        "127.0.0.1 always needs one, generated and printed when not given",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        metavar="ADDRESS",
        help="run a folder's files on Ray workers, resumably (finished outputs are skipped): "
        "a local Ray, or the cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, auto); "
        'needs pip install "streamdet[ray]"',
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="Ray workers, each with one model (default: the cluster's CPUs / --threads, "
        "or its GPUs / --ray-gpus with --device cuda)",
    )
    p.add_argument(
        "--ray-gpus",
        type=float,
        metavar="G",
        help="GPUs each Ray worker reserves with --device cuda (default 1; 0.5: two a GPU)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,  # absent: keep what `streamdet -v run` said
        help="log what happens (also accepted before `run`)",
    )
    add_detector_flags(p)
    p.set_defaults(func=_cmd_run)
