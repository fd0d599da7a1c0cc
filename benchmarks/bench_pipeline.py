"""Speed end to end: file -> annotated MP4 FPS, and live latency with a simulated camera.

    python benchmarks/bench_pipeline.py                  # the real clips in ../shared/media
    python benchmarks/bench_pipeline.py --quick          # CI: one clip, 24 frames, 2 s live
    python benchmarks/bench_pipeline.py --size 640x360 --frames 120 --live-seconds 10
    python benchmarks/bench_pipeline.py --fast           # the real-time preset, as `run --fast`

The detector takes the same flags as ``streamdet run`` (``--model``, ``--fast`` / ``--preset``,
``--stride``, ``--scales``, ``--no-overhang``, ``--precision``, ``--device``, ``--backend``, ...),
mapped onto the one configuration by ``streamdet.cli.flags``; the JSON records the resolved
configuration (``config``) with the layer each value came from.

1. **File -> MP4.** Each clip is first transcoded (untimed) to ``--size`` so every clip is measured
   at the resolution the targets name; then ``streamdet run``'s pipeline reads it (PyAV, threaded
   decode), detects the prompts with the chosen model, draws boxes and encodes an H.264 MP4
   (``--codec``: libx264, or h264_nvenc on NVIDIA; on the calling thread while inference runs on
   its worker thread); ``--hwaccel cuda`` decodes with NVDEC. Reported: end-to-end
   FPS and each stage's mean milliseconds. In the same run, for scale: decode alone (FPS of just
   reading the clip) and encode alone (FPS of just writing the frames), so one can see which stage
   bounds the pipeline.
2. **Live latency.** A simulated camera delivers the clip's frames at ``--camera-fps`` (30) in real
   time, as a live source: the capture queue keeps only the newest frame. Reported: processed FPS,
   frames dropped, and latency from the moment a frame was captured to the moment its annotated
   picture was written (median, p95, max). The target is that latency stays bounded (about one or
   two inference times) however long the run: it never creeps up.

3. **Drawing at 1080p.** Milliseconds to render one 1920x1080 frame in each view (boxes and the
   FPS overlay; plus the colour heatmap or the dimmed view), to show drawing stays small next to
   inference.

Results go to JSON (machine, versions, settings, command) and a markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import av
import cv2
import numpy as np

from _common import MEDIA, RESULTS_DIR, command_line, parse_size, write_report
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.detect.detector import Detector
from streamdet.errors import StreamdetError
from streamdet.machine import machine_info
from streamdet.pipeline.runner import FrameDetector, RunOptions, run
from streamdet.pipeline.stats import RunReport
from streamdet.render import Renderer
from streamdet.sinks import Mp4Sink
from streamdet.sources import open_source
from streamdet.types import Frame

PROMPTS = ("a red car", "a person", "a white car")


@dataclass(frozen=True)
class FileResult:
    """One clip through the whole pipeline, and decode/encode alone for scale."""

    clip: str
    size: str
    frames: int
    windows: int
    pipeline_fps: float
    decode_fps: float
    encode_fps: float
    stages_ms: dict[str, float]


@dataclass(frozen=True)
class LiveResult:
    """A simulated camera at ``camera_fps`` for ``seconds``."""

    clip: str
    size: str
    camera_fps: float
    seconds: float
    frames_captured: int
    frames_processed: int
    frames_dropped: int
    processed_fps: float
    latency_ms: dict[str, float]
    inference_ms: float


def transcode(src: Path, dst: Path, size: tuple[int, int], frames: int) -> int:
    """The first ``frames`` frames of ``src`` resized to ``size`` (w, h), as an H.264 MP4."""
    n = 0
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or 30
        with Mp4Sink(dst, fps=rate, crf=18, overwrite=True) as writer:
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="bgr24")
                small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                writer.write(Frame(small, n, None, time.monotonic()))
                n += 1
                if n >= frames:
                    break
    return n


def decode_fps(path: Path, hwaccel: str | None = None) -> float:
    """Frames per second of just reading ``path`` the way the pipeline does."""
    stop = threading.Event()
    t0 = time.perf_counter()
    with open_source(path, hwaccel=hwaccel) as source:
        n = sum(1 for _ in source.frames(stop))
    return n / (time.perf_counter() - t0)


def encode_fps(frames: list[np.ndarray], folder: Path, fps: float, codec: str = "libx264") -> float:
    """Frames per second of just encoding ``frames`` to an MP4 (no detection, no drawing)."""
    t0 = time.perf_counter()
    with Mp4Sink(folder / "encode-only.mp4", fps=fps, codec=codec, overwrite=True) as writer:
        for i, f in enumerate(frames):
            writer.write(Frame(f, i, None, time.monotonic()))
    return len(frames) / (time.perf_counter() - t0)


def read_frames(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 30)
        return [f.to_ndarray(format="bgr24") for f in container.decode(stream)], rate


def run_file(
    detector: FrameDetector,
    clip: Path,
    out: Path,
    codec: str = "libx264",
    hwaccel: str | None = None,
) -> RunReport:
    """``clip`` end to end through ``streamdet run``'s pipeline: decode (PyAV, threaded), detect,
    draw and encode the annotated H.264 MP4 ``out``; the run's report (FPS, stage times)."""
    with open_source(clip, hwaccel=hwaccel) as source:
        sink = Mp4Sink(out, fps=source.fps, overwrite=True, codec=codec)
        return run(source, detector, [sink], renderer=Renderer())


def bench_file(
    detector: Detector,
    clip: Path,
    work: Path,
    size: tuple[int, int],
    frames: int,
    codec: str = "libx264",
    hwaccel: str | None = None,
):
    small = work / f"{clip.stem}-{size[0]}x{size[1]}.mp4"
    n = transcode(clip, small, size, frames)
    images, rate = read_frames(small)
    detector.detect(images[0])  # warm-up: sessions, grid, first-call allocations
    report = run_file(detector, small, work / f"{clip.stem}-out.mp4", codec, hwaccel)
    assert report.frames_processed == n, (report.frames_processed, n)
    return FileResult(
        clip=clip.name,
        size=f"{size[0]}x{size[1]}",
        frames=n,
        windows=len(detector.grid(size[1], size[0])),
        pipeline_fps=round(report.fps, 2),
        decode_fps=round(decode_fps(small, hwaccel), 1),
        encode_fps=round(encode_fps(images, work, rate, codec), 1),
        stages_ms={k: round(v.mean, 2) for k, v in report.stages.items()},
    )


class SimulatedCamera:
    """A live source that delivers preloaded frames at ``fps`` in real time, for ``seconds``."""

    live = True
    frame_count = None

    def __init__(self, images: list[np.ndarray], fps: float, seconds: float) -> None:
        self.name = "simulated camera"
        self.images = images
        self.fps = fps
        self.size = (images[0].shape[1], images[0].shape[0])
        self.seconds = seconds
        self.produced = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = start + i / self.fps
            if due - start > self.seconds:
                return
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            image = self.images[i % len(self.images)]
            self.produced += 1
            yield Frame(image=image, index=i, pts=i / self.fps, captured_at=time.monotonic())
            i += 1

    def close(self) -> None:
        pass

    def __enter__(self) -> SimulatedCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def bench_live(detector: Detector, clip_name: str, images: list[np.ndarray], args, work: Path):
    camera = SimulatedCamera(images, args.camera_fps, args.live_seconds)
    out = Mp4Sink(work / "live-out.mp4", fps=args.camera_fps, overwrite=True, codec=args.codec)
    report: RunReport = run(camera, detector, [out], options=RunOptions(queue_size=1))
    lat = report.stages["latency"]
    h, w = images[0].shape[:2]
    return LiveResult(
        clip=clip_name,
        size=f"{w}x{h}",
        camera_fps=args.camera_fps,
        seconds=round(report.seconds, 2),
        frames_captured=camera.produced,
        frames_processed=report.frames_processed,
        frames_dropped=report.frames_dropped,
        processed_fps=round(report.fps, 2),
        latency_ms=lat.to_dict(),
        inference_ms=round(
            sum(report.stages[s].mean for s in ("preprocess", "encode", "score")), 2
        ),
    )


def bench_render(repeats: int) -> dict[str, float]:
    """Milliseconds to draw one 1920x1080 frame in each view (five boxes, three prompts, the FPS
    overlay): drawing must cost little next to inference at 1080p."""
    from streamdet.types import Detections, FrameResult

    h, w, patch = 1080, 1920, 32
    rng = np.random.default_rng(0)
    heat = rng.random((3, -(-h // patch), -(-w // patch)), dtype=np.float32)
    boxes = np.array([[100 + 300 * i, 200, 380 + 300 * i, 500] for i in range(5)], np.float32)
    result = FrameResult(
        Detections(boxes, np.full(5, 0.9, np.float32), np.arange(5) % 3),
        heat,
        ("a red car", "a person", "a white car"),
        (h, w),
        patch,
    )
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = {}
    for view in ("none", "color", "dim"):
        renderer = Renderer(heatmap=view, overlay=True)
        renderer.render(frame, result, ["12.0 FPS"])
        t0 = time.perf_counter()
        for _ in range(repeats):
            renderer.render(frame, result, ["12.0 FPS", "latency 80 ms"])
        out[f"boxes+overlay, heatmap {view}"] = round((time.perf_counter() - t0) / repeats * 1e3, 2)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CI setting: one clip, few frames")
    p.add_argument("--clips", nargs="*", type=Path, help="clips (default: ../shared/media/*.mp4)")
    p.add_argument("--size", type=parse_size, default=(640, 360), help="WxH (default 640x360)")
    p.add_argument("--frames", type=int, help="frames per clip (default 150, quick 24)")
    p.add_argument("--camera-fps", type=float, default=30.0)
    p.add_argument("--live-seconds", type=float, help="live run length (default 10, quick 2)")
    p.add_argument(
        "--codec",
        default="libx264",
        help="H.264 encoder of the annotated MP4s: libx264 (default) or h264_nvenc on NVIDIA",
    )
    p.add_argument("--hwaccel", help="hardware decoder for the clips, e.g. cuda (NVDEC)")
    p.add_argument("--out", type=Path, help="JSON (default results/bench_pipeline[-quick].json)")
    # the detector: --model, --fast / --preset and every setting, as `streamdet run` takes them
    add_detector_flags(p)
    return p


def build_detector(args: argparse.Namespace) -> Detector:
    """The detector the flags ask for, through the one configuration (``--fast`` is the preset)."""
    chosen = settings_from_args(args)
    return Detector(args.model, PROMPTS, preset=chosen.preset, **chosen.overrides)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    frames = args.frames or (24 if args.quick else 150)
    args.live_seconds = args.live_seconds or (2.0 if args.quick else 10.0)
    clips = args.clips or sorted(MEDIA.glob("*.mp4"))
    if args.quick:
        clips = clips[:1]
    if not clips:
        print(f"bench_pipeline: no clips given and none in {MEDIA}", file=sys.stderr)
        return 2
    out = args.out or RESULTS_DIR / (
        "bench_pipeline-quick.json" if args.quick else "bench_pipeline.json"
    )
    try:
        detector = build_detector(args)
    except StreamdetError as error:  # what was wrong and what to do, not a traceback
        print(f"bench_pipeline: {error}", file=sys.stderr)
        return 2
    files: list[FileResult] = []
    with tempfile.TemporaryDirectory(prefix="streamdet-bench-") as tmp:
        work = Path(tmp)
        for clip in clips:
            files.append(
                bench_file(detector, clip, work, args.size, frames, args.codec, args.hwaccel)
            )
            print(f"{clip.name}: {files[-1].pipeline_fps} FPS", file=sys.stderr)
        images, _ = read_frames(work / f"{clips[0].stem}-{args.size[0]}x{args.size[1]}.mp4")
        live = bench_live(detector, clips[0].name, images, args, work)
    report = {
        "benchmark": "bench_pipeline",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("bench_pipeline.py", argv),
        "machine": machine_info(("numpy", "onnxruntime", "av", "cv2", "streamdet")),
        "settings": {
            "model": str(args.model),
            "prompts": list(PROMPTS),
            "size": f"{args.size[0]}x{args.size[1]}",
            "frames_per_clip": frames,
            "provider": detector.provider,
            "codec": args.codec,
            "hwaccel": args.hwaccel,
            "camera_fps": args.camera_fps,
            "live_seconds": args.live_seconds,
        },
        "config": detector.config.to_dict(),
        "files": [asdict(f) for f in files],
        "live": asdict(live),
        "render_1080p_ms": bench_render(5 if args.quick else 30),
    }
    write_report(report, out)
    print(markdown(report))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def markdown(report: dict) -> str:
    rows = [
        "| clip | size | windows | pipeline FPS | decode FPS | encode FPS | "
        "encode ms | render ms | write ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in report["files"]:
        s = f["stages_ms"]
        rows.append(
            f"| {f['clip']} | {f['size']} | {f['windows']} | {f['pipeline_fps']} | "
            f"{f['decode_fps']} | {f['encode_fps']} | {s.get('encode', 0)} | "
            f"{s.get('render', 0)} | {s.get('write', 0)} |"
        )
    lv = report["live"]
    rows.append("")
    rows.append(
        f"Live, simulated {lv['camera_fps']:.0f} FPS camera for {lv['seconds']} s: processed "
        f"{lv['processed_fps']} FPS, dropped {lv['frames_dropped']} of {lv['frames_captured']}, "
        f"latency p50 {lv['latency_ms']['p50']} ms / p95 {lv['latency_ms']['p95']} ms / max "
        f"{lv['latency_ms']['max']} ms (inference {lv['inference_ms']} ms per frame)."
    )
    rows.append("")
    rows.append(
        "Drawing one 1920x1080 frame: "
        + ", ".join(f"{k} {v} ms" for k, v in report["render_1080p_ms"].items())
        + "."
    )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
