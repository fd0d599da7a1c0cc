"""Modes side by side in one run: modes x clips x models end to end, the OWL-ViT peer on the same
frames and threads, quality of every mode, and the ratios between them.

    python benchmarks/bench_modes.py                   # 40 frames of each clip, every mode
    python benchmarks/bench_modes.py --frames 8        # a short real run
    python benchmarks/bench_modes.py --quick           # CI: tiny models, 4 frames, quick quality
    python benchmarks/bench_modes.py --device cuda --codec h264_nvenc   # on a GPU

* **Modes** (``_modes.MODES``, one line each: a preset plus setting overrides): windows, dense,
  each with and without reuse, ``fast`` (the real-time preset) and ``writeup-int8`` (the
  write-up's grid in int8). A mode today's code refuses is recorded as skipped with the reason.
* **Clips**: a static camera (``car-detection.mp4``) and a moving one (a dashcam), the first
  ``--frames`` frames of each, transcoded (untimed) to the size the model's target names.
* **Models**: ``vit-b32``, the ViT-B/32 shape with random weights (speed only; 1280x720, 8
  prompts), and ``builtin``, the built-in model (speed at 640x360 and quality).
* **End to end**, per mode: ``streamdet run``'s pipeline (``bench_pipeline.run_file``: decode,
  detect, draw, H.264 encode): seconds per frame, FPS, mean ms per stage, and windows computed /
  reused where the detector reports them.
* **The peer** (``_peer``): OWL-ViT B/32 at 768 px, text embedded once, model time per frame on
  ONNX Runtime with the same intra-op threads; fp32 (the headline) and int8. It is timed on the
  same frames as the modes, half of them (the even ones) before the model's modes run and half
  after, so that a change of machine load hits both sides.
* **Quality** (``streamdet.quality``) of every mode that ran, on the models that have it: AP50,
  false boxes per empty frame, jitter, blink on generated scenes (``--quality quick`` for CI).
* **Ratios**, from the recorded numbers: each mode's s/frame against the peer's model s/frame
  and against ``writeup-int8``; a reuse mode's windows computed against the mode without reuse.

JSON goes to benchmarks/results (``--out``), a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from _common import CACHE_DIR, MEDIA, PROMPTS, RESULTS_DIR, VIDEO, command_line, logger, parse_size
from _common import write_report as write_json
from _modes import MODES, Mode, ModeRun, run_mode, run_ratios
from bench_pipeline import PROMPTS as BUILTIN_PROMPTS
from bench_pipeline import decode_fps, encode_fps, read_frames, transcode
from streamdet.clip.optimize import physical_cores
from streamdet.config import DEFAULT_MODEL
from streamdet.errors import SourceError, StreamdetError
from streamdet.machine import machine_info

log = logger("bench_modes")

STATIC_CLIP = MEDIA / "car-detection.mp4"
MOVING_CLIP = VIDEO
#: Model slots: the size each one's target names, and whether quality is measured on it.
SLOTS = ("vit-b32", "builtin")
TARGET_SIZES = {"vit-b32": (1280, 720), "builtin": (640, 360)}
QUICK_SIZE = (160, 96)
QUALITY_LEVELS = ("full", "quick", "off")


@dataclass(frozen=True)
class Slot:
    """One model of the run: what it is, where it is, the size and prompts it runs with."""

    name: str
    model: str
    description: str
    size: tuple[int, int]
    prompts: tuple[str, ...]
    quality: bool


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CI: tiny models, 4 frames, 160x96")
    p.add_argument("--frames", type=int, help="frames per clip (default 40; quick 4)")
    p.add_argument("--clips", nargs="+", type=Path, help="clips (default: static and moving)")
    p.add_argument("--size", type=parse_size, help="WxH for every model (default: its target's)")
    p.add_argument("--models", type=_names, default=list(SLOTS), help="vit-b32,builtin")
    p.add_argument("--modes", type=_names, default=list(MODES), help=",".join(MODES))
    p.add_argument("--source", type=Path, help="HF CLIP folder for vit-b32 (default: random)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="the builtin slot's model")
    p.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--codec", default="libx264", help="H.264 encoder (h264_nvenc on NVIDIA)")
    p.add_argument("--hwaccel", help="hardware decoder for the clips, e.g. cuda (NVDEC)")
    p.add_argument("--peer-precisions", type=_names, help="fp32,int8 (cuda: fp32)")
    p.add_argument("--quality", choices=QUALITY_LEVELS, help="full (default), quick (--quick)")
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="models are cached here")
    p.add_argument("--out", type=Path, help="JSON (default results/bench_modes[-quick].json)")
    args = p.parse_args(argv)
    args.frames = args.frames or (4 if args.quick else 40)
    args.quality = args.quality or ("quick" if args.quick else "full")
    default_peer = ["fp32"] if args.device == "cuda" else ["fp32", "int8"]
    args.peer_precisions = args.peer_precisions or default_peer
    for what, given, allowed in (
        ("--models", args.models, SLOTS),
        ("--modes", args.modes, tuple(MODES)),
        ("--peer-precisions", args.peer_precisions, ("fp32", "int8")),
    ):
        unknown = [n for n in given if n not in allowed]
        if unknown or not given:
            p.error(f"{what} must be among {','.join(allowed)}, got {','.join(given) or 'none'}")
    if args.frames < 1 or (args.threads is not None and args.threads < 1):
        p.error("--frames and --threads must be at least 1")
    if args.device == "cuda" and "int8" in args.peer_precisions:
        p.error("int8 (dynamic quantisation) is CPU-only: --peer-precisions fp32 with cuda")
    args.clips = args.clips or [STATIC_CLIP, MOVING_CLIP]
    return args


def prepare_slots(args: argparse.Namespace) -> list[Slot]:
    """The model slots asked for (``vit-b32`` built and exported once, cached)."""
    from _models import prepare_model

    slots = []
    for name in args.models:
        size = args.size or (QUICK_SIZE if args.quick else TARGET_SIZES[name])
        if name == "vit-b32":
            _, export_dir, description = prepare_model(args)
            slots.append(Slot(name, str(export_dir), description, size, PROMPTS[8], False))
        else:
            slots.append(Slot(name, args.model, args.model, size, BUILTIN_PROMPTS, True))
    return slots


class Peer:
    """The OWL-ViT peer: the PyTorch model (for the text queries, once per prompt set) and its
    image graph in each precision."""

    def __init__(self, args: argparse.Namespace, threads: int) -> None:
        import _peer

        self.model = _peer.build_owlvit(tiny=args.quick)
        fp32 = _peer.peer_graph(args.cache_dir / "peer", self.model, tiny=args.quick)
        self.graphs = {
            p: fp32 if p == "fp32" else _peer.int8_graph(fp32) for p in args.peer_precisions
        }
        self.threads, self.device = threads, args.device
        self.description = _peer.describe(self.model)
        self.image_size = int(self.model.config.vision_config.image_size)

    def sessions(self, prompts: Sequence[str]) -> dict[str, Any]:
        """One warmed-up ``OwlPeer`` per precision, with ``prompts`` embedded once."""
        import _peer

        queries = _peer.query_embeddings(self.model, prompts)
        out = {}
        for precision, graph in self.graphs.items():
            peer = _peer.OwlPeer(
                graph, queries, self.image_size, threads=self.threads, device=self.device
            )
            peer.infer(peer.preprocess(np.zeros((8, 8, 3), np.uint8)))  # warm-up: first-call costs
            out[precision] = peer
        return out


def around(
    sessions: Mapping[str, Any], images: Sequence[Any], measure: Callable[[], list[ModeRun]]
) -> tuple[dict[str, dict[str, Any]], list[ModeRun]]:
    """``measure()`` between two halves of the peer's frames: the even frames before it, the
    odd ones after; each precision's per-frame times joined in frame order."""
    import _peer

    even, odd = images[0::2], images[1::2]
    before = {p: s.time_frames(even) for p, s in sessions.items()}
    runs = measure()
    after = {p: s.time_frames(odd) for p, s in sessions.items()}
    peers = {}
    for precision in sessions:
        pre = _interleave(before[precision][0], after[precision][0])
        model = _interleave(before[precision][1], after[precision][1])
        times = _peer.PeerTimes(precision, tuple(pre), tuple(model))
        peers[precision] = {**times.summary(), "provider": sessions[precision].provider}
    return peers, runs


def _interleave(even: Sequence[float], odd: Sequence[float]) -> list[float]:
    out: list[float] = []
    for i in range(len(even) + len(odd)):
        out.append(even[i // 2] if i % 2 == 0 else odd[i // 2])
    return out


def quality_of(
    slot: Slot, modes: Sequence[Mode], runs: Sequence[ModeRun], level: str, overrides: dict
) -> dict[str, Any]:
    """Each mode's quality on generated scenes (``streamdet.quality``); a mode whose speed runs
    were all skipped is skipped here with the same reason."""
    from streamdet.quality.dataset import PROMPT_SETS, build_dataset, dataset_info
    from streamdet.quality.evaluate import RunSettings, evaluate_setting
    from streamdet.quality.metrics import require_pycocotools

    require_pycocotools()
    if level == "quick":  # one prompt set, one frame per kind, one short video, small frames
        first = next(iter(PROMPT_SETS))
        dataset = build_dataset(
            {first: PROMPT_SETS[first]},
            frames_per_kind=1,
            videos_per_set=1,
            video_frames=4,
            height=180,
            width=320,
        )
    else:  # the quality benchmark's full dataset (its defaults)
        dataset = build_dataset(PROMPT_SETS)
    results: dict[str, Any] = {}
    for mode in modes:
        ran = [r for r in runs if r.model == slot.name and r.mode == mode.name]
        done = next((r for r in ran if r.ok), None)
        if done is None:
            results[mode.name] = {"reason": ran[0].reason if ran else "not run"}
            continue
        settings = RunSettings(model=slot.model, patch=done.config["grid"]["patch"])
        log(f"quality {slot.name} {mode.name}")
        measured = evaluate_setting(mode.setting(overrides), dataset, settings)
        measured.pop("config")  # the speed runs record it
        results[mode.name] = {**measured, "reason": None}
    return {"level": level, "dataset": dataset_info(dataset), "modes": results}


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The whole benchmark as one JSON-ready dict."""
    started = time.perf_counter()
    missing = [str(c) for c in args.clips if not c.is_file()]
    if missing:
        raise SourceError(f"clips not found: {', '.join(missing)}")
    threads = args.threads or physical_cores()
    overrides: dict[str, Any] = {"threads": threads, "device": args.device}
    modes = [MODES[name] for name in args.modes]
    slots = prepare_slots(args)
    peer = Peer(args, threads)
    log(f"models ready in {time.perf_counter() - started:.1f} s")
    runs: list[ModeRun] = []
    clips: list[dict[str, Any]] = []
    quality: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="streamdet-modes-") as tmp:
        work = Path(tmp)
        for slot in slots:
            sessions = peer.sessions(slot.prompts)
            for clip in args.clips:
                small = work / slot.name / clip.name  # the clip's own name in the records
                small.parent.mkdir(exist_ok=True)
                n = transcode(clip, small, slot.size, args.frames)
                images, rate = read_frames(small)
                # decode and encode alone, for scale; also the first use of the codecs, which
                # the first timed run would otherwise pay
                alone = {
                    "decode_fps": round(decode_fps(small, args.hwaccel), 1),
                    "encode_fps": round(encode_fps(images, work, rate, args.codec), 1),
                }

                def measure(slot: Slot = slot, clip: Path = small) -> list[ModeRun]:
                    return [_logged(slot, mode, clip, overrides, work, args) for mode in modes]

                timed, done = around(sessions, images, measure)
                runs += done
                clips.append(
                    {"model": slot.name, "clip": clip.name, "frames": n, **alone, "peer": timed}
                )
                log(f"{slot.name} {clip.name}: peer fp32 {_peer_s(timed)} s/frame")
            if slot.quality and args.quality != "off":
                quality[slot.name] = quality_of(slot, modes, runs, args.quality, overrides)
    recorded = [asdict(r) for r in runs]
    peer_s = {
        (c["model"], c["clip"]): {k: v["model_s_per_frame"] for k, v in c["peer"].items()}
        for c in clips
    }
    return {
        "benchmark": "bench_modes",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(
            ("numpy", "onnxruntime", "torch", "transformers", "av", "cv2", "streamdet")
        ),
        "settings": {
            "quick": args.quick,
            "frames_per_clip": args.frames,
            "clips": [str(c) for c in args.clips],
            "threads": threads,
            "device": args.device,
            "codec": args.codec,
            "hwaccel": args.hwaccel,
            "quality": args.quality,
        },
        "models": {s.name: {**asdict(s), "size": "x".join(map(str, s.size))} for s in slots},
        "modes": {m.name: m.describe() for m in modes},
        "peer": {
            "model": peer.description,
            "image_size": peer.image_size,
            "precisions": list(args.peer_precisions),
            "threads": threads,
        },
        "clips": clips,
        "runs": run_ratios(recorded, peer_s),
        "quality": quality,
        "notes": [
            "s_per_frame: wall time of the whole pipeline (decode, detect, draw, encode; the "
            "stages overlap on threads) over the frames; stages_ms: mean per frame",
            "peer: model time only (image encoder, class head against the cached queries, box "
            "head), preprocessing apart; timed half before and half after the modes it is "
            "compared with",
            "ratios: x > 1 means the mode is x times faster (or computes x times fewer windows)",
            "vit-b32 has random weights: its speed counts, its detections mean nothing",
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }


def _peer_s(timed: Mapping[str, Any]) -> Any:
    first = next(iter(timed.values()), None)
    return None if first is None else first["model_s_per_frame"]


def _logged(
    slot: Slot, mode: Mode, clip: Path, overrides: dict, work: Path, args: argparse.Namespace
) -> ModeRun:
    size = slot.size
    r = run_mode(
        slot.name,
        slot.model,
        slot.prompts,
        mode,
        clip,
        size,
        run_overrides=overrides,
        work=work,
        codec=args.codec,
        hwaccel=args.hwaccel,
    )
    log(f"{slot.name} {clip.name} {mode.name}: " + (r.reason or f"{r.s_per_frame} s/frame"))
    return r


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def markdown(report: Mapping[str, Any]) -> str:
    """The runs, the peer and the quality as markdown tables; skipped modes listed once each."""
    rows = [
        "| model | clip | mode | s/frame | FPS | windows computed (reused) | encode ms | "
        "score ms | render ms | write ms | vs peer fp32 | vs writeup-int8 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    skipped: dict[str, str] = {}
    for r in report["runs"]:
        if r["reason"] is not None:
            skipped.setdefault(r["mode"], r["reason"])
            continue
        s, w, x = r["stages_ms"], r["windows"], r["ratios"]
        computed = w.get("windows_computed", r["grid_windows"])
        reused = f" ({w['windows_reused']:g})" if "windows_reused" in w else ""
        rows.append(
            f"| {r['model']} | {r['clip']} | {r['mode']} | {r['s_per_frame']:.3f} | "
            f"{r['fps']:.2f} | {_fmt(computed, 'g')}{reused} | {_fmt(s.get('encode'))} | "
            f"{_fmt(s.get('score'))} | {_fmt(s.get('render'))} | {_fmt(s.get('write'))} | "
            f"{_fmt(x.get('vs_peer_fp32'), suffix='x')} | "
            f"{_fmt(x.get('vs_writeup_int8'), suffix='x')} |"
        )
    rows += [""] + [f"Skipped {mode}: {reason}" for mode, reason in skipped.items()]
    peer = report["peer"]
    rows += [
        "",
        f"Peer: {peer['model']}, model time per frame.",
        "",
        "| model slot | clip | frames | precision | model s/frame | preprocess ms |",
        "|---|---|---:|---|---:|---:|",
    ]
    for c in report["clips"]:
        for precision, t in c["peer"].items():
            rows.append(
                f"| {c['model']} | {c['clip']} | {c['frames']} | {precision} | "
                f"{t['model_s_per_frame']:.3f} | {t['preprocess_ms_mean']:.1f} |"
            )
    for slot, q in report["quality"].items():
        rows += [
            "",
            f"Quality of {slot} ({q['level']}: {q['dataset']['still_frames']} stills, "
            f"{q['dataset']['video_frames']} video frames):",
            "",
            "| mode | AP50 | false boxes/frame | jitter | blink | ms/frame |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for mode, m in q["modes"].items():
            if m["reason"] is None:
                rows.append(
                    f"| {mode} | {_fmt(m['ap50'], '.3f')} | "
                    f"{_fmt(m['false_boxes_per_frame'], '.3f')} | {_fmt(m['jitter'], '.3f')} | "
                    f"{_fmt(m['blink'], '.3f')} | {_fmt(m['ms_per_frame'], '.0f')} |"
                )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        report = run(args, command_line("bench_modes.py", argv))
    except StreamdetError as error:  # what was wrong and what to do, not a traceback
        print(f"bench_modes: {error}", file=sys.stderr)
        return 2
    out = args.out or RESULTS_DIR / ("bench_modes-quick.json" if args.quick else "bench_modes.json")
    write_json(report, out)
    print(markdown(report))
    log(f"wrote {out} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
