"""Search by text: recall of the right moments, and query time over a large index.

    python benchmarks/bench_search.py          # 12 videos of 40 s at 640x360; 100k rows, and
                                               # 100k frames of 22 rows (2.2M rows)
    python benchmarks/bench_search.py --quick  # CI: 6 videos of 20 s at 320x180; 100k rows

Recall: generated videos (``streamdet.synth.timeline``) in which each of the built-in model's
prompts ("a red circle", "a blue star", ...) is visible only in known intervals, with drifting
distractors that never match any prompt, half of the videos with small objects (8-15 % of the
frame's shorter side), half with large ones. They are indexed with the built-in model through
``VideoIndex`` (the real sampling, grid and Parquet writer) and every prompt is searched. A hit
is right when its file has an appearance of the prompt whose interval holds the hit's time;
recall@10 of a prompt is the share of its appearances with a right hit among the top 10 (out of
at most 10), and top-1 says whether the best hit is right. Variants from the same index: the
calibrated score against the raw cosine, windows and whole frame against the whole frame alone,
and the moment collapse window; the same rows through inverted lists with the default probe
(``default-lists``: what the lists cost in recall; an index this small has none by default); one
more index with a finer grid (``--fine-cells``).

Query time: ``--rows`` rows (default 100,000) of random unit embeddings, written as parts of
1,000 rows through the real writer, loaded once (reported apart), then ``VideoIndex.search``
timed ``--repeats`` times for the built-in model's dimension (the prompt's embedding is cached
after the first call, as in a session), and the ranking path (scores and top moments) for
ViT-B/32's 512 dimensions. ``--windowed-frames`` (default 100,000, none with ``--quick``) adds
two indexes of that many frames with 22 rows each (the whole frame and the 21 windows of a
640x360 frame with the default grid): rows of random unit vectors (no structure: the worst case
for inverted lists), and rows drawn from the generated videos' real rows, jittered. Each is
loaded twice (the first load trains and stores the inverted lists; the second reads them, both
reported apart), searched with the defaults, and with each ``--probes`` share against scoring
every row (recall@10 of the exact moments, and the query time).

JSON (machine, versions, settings, command) goes to benchmarks/results/bench_search.json and a
markdown summary to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from _common import RESULTS_DIR, command_line, logger, parse_size, write_report
from streamdet.config import SEARCH_SCORINGS, IndexConfig
from streamdet.machine import machine_info
from streamdet.search import SearchHit, VideoIndex
from streamdet.search.query import IndexMatrix, score_rows, top_moments
from streamdet.search.store import FileRows, write_manifest, write_part
from streamdet.synth.timeline import Appearance, timed_video, write_video

PROMPTS = (
    "a red circle",
    "a blue star",
    "a green triangle",
    "a yellow square",
    "a purple cross",
    "an orange ring",
)
K = 10
#: Rows of one 640x360 frame with the default grid: the whole frame and 21 windows.
ROWS_PER_FRAME = 22
#: Per-dimension noise added to real rows for the large query-time index (cosine ~0.93).
JITTER = 0.05
#: Moment collapse windows compared (seconds); videos are sampled once a second.
COLLAPSES = (1.0, 3.0, 5.0)
log = logger("bench_search")


def make_videos(
    folder: Path, n: int, seconds: float, size: tuple[int, int], fps: float, seed: int
) -> dict[str, list[Appearance]]:
    """Write ``n`` videos; returns each file's appearances (two or three prompts per video)."""
    rng = np.random.default_rng(seed)
    truth: dict[str, list[Appearance]] = {}
    for v in range(n):
        chosen = rng.choice(len(PROMPTS), size=int(rng.integers(2, 4)), replace=False)
        appearances = []
        for i in chosen:
            length = float(rng.integers(3, 7))
            start = float(rng.integers(1, max(2, int(seconds - length))))
            appearances.append(Appearance(PROMPTS[i], start, start + length))
        video = timed_video(
            rng,
            appearances,
            seconds=seconds,
            fps=fps,
            width=size[0],
            height=size[1],
            size="small" if v % 2 else "large",
            exclude=PROMPTS,
        )
        path = folder / f"video{v:02d}-{'small' if v % 2 else 'large'}.mp4"
        write_video(path, [s.image for s in video.scenes], fps)
        truth[str(path.resolve())] = appearances
    return truth


def grade(
    hits: Sequence[SearchHit], prompt: str, truth: dict[str, list[Appearance]]
) -> dict[str, Any]:
    """recall@k and top-1 of one prompt's hits (see the module docstring)."""
    wanted = [(f, a) for f, apps in truth.items() for a in apps if a.prompt == prompt]
    found = {(f, a) for f, a in wanted for h in hits if h.file == f and a.covers(h.time)}
    top1 = bool(hits) and any(hits[0].file == f and a.covers(hits[0].time) for f, a in wanted)
    return {
        "appearances": len(wanted),
        "recall": len(found) / min(len(wanted), K) if wanted else None,
        "top1": top1,
        "found_small": sum(1 for f, _ in found if "small" in Path(f).name),
        "wanted_small": sum(1 for f, _ in wanted if "small" in Path(f).name),
    }


def _rows_subset(rows: IndexMatrix, keep: np.ndarray) -> IndexMatrix:
    return IndexMatrix(
        rows.files, rows.file_ids[keep], rows.times[keep], rows.boxes[keep], rows.sizes[keep],
        rows.whole[keep], rows.matrix[keep],
    )  # fmt: skip


def _with_lists(folder: Path, rows: IndexMatrix) -> IndexMatrix:
    """``rows`` grouped by inverted lists trained on them (one part: the list of all rows)."""
    from streamdet.search.lists import ListLayout, Lists, assign, list_count, train

    centres = train(rows.matrix, list_count(len(rows)))
    lists = Lists(centres, len(rows), "", {"all": assign(rows.matrix, centres)})
    return rows.grouped(ListLayout.of(lists, ["all"]))


def recall_of(
    index: VideoIndex,
    rows: IndexMatrix,
    truth: dict[str, list[Appearance]],
    config: IndexConfig,
) -> dict[str, Any]:
    """Mean recall@K and top-1 over the prompts that appear, for one ranking setting."""
    graded = {}
    for prompt in PROMPTS:
        emb, background = index.embed_prompt(prompt)
        hits = index.rank(rows, emb, background, K, config)
        graded[prompt] = grade(hits, prompt, truth)
    scored = [g for g in graded.values() if g["recall"] is not None]
    small = sum(g["found_small"] for g in scored), sum(g["wanted_small"] for g in scored)
    return {
        f"recall@{K}": round(statistics.mean(g["recall"] for g in scored), 3),
        "top1": round(statistics.mean(float(g["top1"]) for g in scored), 3),
        "small_found": f"{small[0]}/{small[1]}",
        "per_prompt": {p: g for p, g in graded.items()},
    }


def recall_section(
    args: argparse.Namespace, work: Path
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Recall of every variant on generated videos; also the default index's rows (for the
    query-time index made of real rows)."""
    videos = work / "videos"
    videos.mkdir()
    truth = make_videos(videos, args.videos, args.seconds, args.size, args.fps, args.seed)
    out: dict[str, Any] = {
        "videos": args.videos,
        "seconds": args.seconds,
        "size": f"{args.size[0]}x{args.size[1]}",
        "fps": args.fps,
        "appearances": sum(len(a) for a in truth.values()),
    }
    grids = {"default": IndexConfig(), "fine": IndexConfig(cells=args.fine_cells)}
    variants: dict[str, Any] = {}
    real_rows = None
    for name, config in grids.items():
        index = VideoIndex(work / f"index-{name}", config=config)
        t0 = time.perf_counter()
        report = index.add(str(videos))
        seconds = time.perf_counter() - t0
        rows = index.load()
        log(f"grid {name}: {report.rows} rows from {len(report.indexed)} videos, {seconds:.1f} s")
        out[f"index_{name}"] = {
            "cells": config.cells,
            "window": config.window,
            "rows": report.rows,
            "rows_per_frame": round(report.rows / max(1, sum_frames(index)), 1),
            "index_seconds": round(seconds, 2),
            "bytes": sum(p.stat().st_size for p in index.folder.iterdir()),
        }
        settings = {
            f"{scoring}-collapse{collapse:g}": replace(config, scoring=scoring, collapse=collapse)
            for scoring in SEARCH_SCORINGS
            for collapse in COLLAPSES
        }
        for label, cfg in settings.items():
            variants[f"{name}/{label}"] = recall_of(index, rows, truth, cfg)
        if name == "default":
            real_rows = rows.matrix.copy()
            # the same rows searched through inverted lists (an index this small has none:
            # lists.MIN_ROWS), with the default probe: what the lists cost in recall
            listed = _with_lists(index.folder, rows)
            for label, cfg in settings.items():
                variants[f"default-lists/{label}"] = recall_of(index, listed, truth, cfg)
            whole = _rows_subset(rows, rows.whole)
            for label, cfg in settings.items():
                variants[f"whole-frame-only/{label}"] = recall_of(index, whole, truth, cfg)
    out["variants"] = variants
    return out, real_rows


def sum_frames(index: VideoIndex) -> int:
    from streamdet.search.store import read_manifest

    return sum(e.frames for e in read_manifest(index.folder).files.values())


def synthetic_index(
    folder: Path,
    frames: int,
    dim: int,
    checksum: str,
    seed: int,
    rows_per_frame: int = 1,
    real: np.ndarray | None = None,
) -> int:
    """``frames`` x ``rows_per_frame`` unit rows (a frame's rows share its time), in parts of
    1,000 frames written by the real writer, and a manifest; returns the row count.

    Rows are random unit vectors (no structure at all: the worst case for inverted lists), or
    with ``real`` rows (N, dim), random ones of them jittered by Gaussian noise of
    ``JITTER`` per dimension (a cosine of about 0.93 to the original) and renormalised.
    """
    from streamdet.search.store import FileEntry, Manifest, ModelStamp, prepare_folder

    rng = np.random.default_rng(seed)
    prepare_folder(folder)
    files = {}
    per = 1000
    for p in range(0, frames, per):
        n = min(per, frames - p) * rows_per_frame
        if real is None:
            emb = rng.standard_normal((n, dim)).astype(np.float32)
        else:
            emb = real[rng.integers(0, len(real), n)]
            emb = emb + rng.normal(0.0, JITTER, emb.shape).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        name = f"synthetic{p // per:05d}"
        part = FileRows(
            file=f"/synthetic/{name}.mp4",
            times=np.repeat(np.arange(n // rows_per_frame, dtype=float), rows_per_frame),
            boxes=np.tile(np.array([[0, 0, 640, 360]], np.float32), (n, 1)),
            sizes=np.tile(np.array([[640, 360]], np.int32), (n, 1)),
            whole=np.arange(n) % rows_per_frame == 0,
            embeddings=emb.astype(np.float16),
            frames=n // rows_per_frame,
        )
        write_part(folder, name + ".parquet", part, checksum)
        files[part.file] = FileEntry(name + ".parquet", 0, 0, n, part.frames)
    settings = {"every": 1.0, "cells": 4, "window": 2}
    stamp = ModelStamp("streamdet/scenes-clip", checksum, dim)
    write_manifest(folder, Manifest(stamp, settings, files))
    return frames * rows_per_frame


def time_search(
    folder: Path, repeats: int, probes: Sequence[float] = ()
) -> tuple[dict[str, Any], IndexMatrix]:
    """Load the index at ``folder`` (timed apart: the first load builds its inverted lists when
    it is large enough, a second one reads them), then time ``VideoIndex.search`` with the
    default settings; with ``probes``, also each probe share's query time and its recall@10
    of the exact moments (``probe`` 1: every row scored)."""
    first = VideoIndex(folder)
    t0 = time.perf_counter()
    first.load()
    build_ms = (time.perf_counter() - t0) * 1e3
    index = VideoIndex(folder)
    t0 = time.perf_counter()
    rows = index.load()
    load_ms = (time.perf_counter() - t0) * 1e3
    index.search(PROMPTS[0], k=K)  # the prompt's embedding: computed once, then cached
    samples = []
    for i in range(repeats):
        t0 = time.perf_counter()
        index.search(PROMPTS[i % len(PROMPTS)], k=K)
        samples.append((time.perf_counter() - t0) * 1e3)
    out: dict[str, Any] = {
        "first_load_ms": round(build_ms, 1),
        "load_ms": round(load_ms, 1),
        "lists": 0 if rows.layout is None else len(rows.layout.centres),
        "probe": IndexConfig().probe,
        "search": _ms(samples),
        "path": "search",
    }
    if probes and rows.layout is not None:
        exact = {p: _moments(index.search(p, k=K, probe=1.0)) for p in PROMPTS}
        per_probe = {}
        for probe in probes:
            times = []
            recall = []
            for i in range(max(repeats, len(PROMPTS))):
                prompt = PROMPTS[i % len(PROMPTS)]
                t0 = time.perf_counter()
                hits = index.search(prompt, k=K, probe=probe)
                times.append((time.perf_counter() - t0) * 1e3)
                if i < len(PROMPTS):
                    recall.append(len(_moments(hits) & exact[prompt]) / K)
            per_probe[f"{probe:g}"] = {
                "search": _ms(times),
                f"recall@{K}_vs_exact": round(statistics.mean(recall), 3),
            }
            log(f"  probe {probe:g}: {per_probe[f'{probe:g}']}")
        out["probes"] = per_probe
    return out, rows


def _moments(hits: Sequence[SearchHit]) -> set[tuple[str, float]]:
    return {(h.file, round(h.time, 3)) for h in hits}


def _ms(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "min_ms": round(ordered[0], 2),
    }


def query_section(
    args: argparse.Namespace, work: Path, real_rows: np.ndarray | None = None
) -> dict[str, Any]:
    builtin = VideoIndex(work / "unused")
    model = builtin.model
    checksum, dim = model.encoders.meta.checksum, int(model.encoders.embed_dim)
    out: dict[str, Any] = {"rows": args.rows, "repeats": args.repeats}
    t0 = time.perf_counter()
    synthetic_index(work / "synthetic-index", args.rows, dim, checksum, args.seed)
    out["write_seconds"] = round(time.perf_counter() - t0, 2)
    out[f"dim{dim}"], rows = time_search(work / "synthetic-index", args.repeats)
    median = out[f"dim{dim}"]["search"]["median_ms"]
    log(f"{args.rows} rows, dim {dim}: query {median} ms")
    if args.windowed_frames:
        sources = {"random": None, "real": real_rows}
        for source, real in sources.items():
            if source == "real" and real is None:
                continue
            folder = work / f"windowed-index-{source}"
            count = synthetic_index(
                folder, args.windowed_frames, dim, checksum, args.seed, ROWS_PER_FRAME, real
            )
            timing, _ = time_search(folder, args.repeats, args.probes)
            out[f"dim{dim}_windowed_{source}"] = {
                "frames": args.windowed_frames,
                "rows": count,
                "rows_per_frame": ROWS_PER_FRAME,
                "rows_from": "random unit vectors"
                if real is None
                else f"the generated videos' {len(real)} real rows, jittered",
                **timing,
            }
            shutil.rmtree(folder)
            median, p90 = timing["search"]["median_ms"], timing["search"]["p90_ms"]
            log(
                f"{args.windowed_frames} frames ({count} rows, {source}): query {median} ms "
                f"median, {p90} ms p90"
            )
    for other in args.dims:
        if other == dim:
            continue
        rng = np.random.default_rng(args.seed)
        matrix = rng.standard_normal((args.rows, other)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        prompt = matrix[0].copy()
        background = matrix[1:4].copy()
        per_scoring = {}
        for scoring in ("calibrated", "cosine"):
            samples = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                scores = score_rows(matrix, prompt, background, 100.0, scoring)
                top_moments(scores, rows.file_ids, rows.times, K, 1.0)
                samples.append((time.perf_counter() - t0) * 1e3)
            per_scoring[scoring] = _ms(samples)
        out[f"dim{other}"] = {"path": "score_rows + top_moments", **per_scoring}
        median = per_scoring["calibrated"]["median_ms"]
        log(f"{args.rows} rows, dim {other}: calibrated {median} ms")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI size: 6 videos of 20 s at 320x180")
    p.add_argument("--videos", type=int, help="generated videos (default 12; quick 6)")
    p.add_argument("--seconds", type=float, help="length of each video (default 40; quick 20)")
    p.add_argument("--size", type=parse_size, help="frame size (default 640x360; quick 320x180)")
    p.add_argument("--fps", type=float, default=5.0, help="frame rate of the videos (default 5)")
    p.add_argument("--fine-cells", type=int, default=6, help="cells of the finer grid (default 6)")
    p.add_argument("--rows", type=int, default=100_000, help="rows of the query-time index")
    p.add_argument(
        "--windowed-frames",
        type=int,
        help=f"frames of {ROWS_PER_FRAME} rows each for a second query-time index "
        "(default 100000; quick 0: none)",
    )
    p.add_argument("--dims", default="64,512", help="embedding dimensions to time (default 64,512)")
    p.add_argument("--repeats", type=int, default=20, help="timed queries per setting")
    p.add_argument(
        "--probes",
        default="0.05,0.1,0.2,0.3,0.5",
        help="probe shares timed (with recall against every row) on the windowed index",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="JSON report (default benchmarks/results/...)")
    args = p.parse_args(argv)
    args.videos = args.videos or (6 if args.quick else 12)
    args.seconds = args.seconds or (20.0 if args.quick else 40.0)
    args.size = args.size or ((320, 180) if args.quick else (640, 360))
    if args.windowed_frames is None:
        args.windowed_frames = 0 if args.quick else 100_000
    args.dims = [int(d) for d in args.dims.split(",") if d.strip()]
    args.probes = [float(p) for p in args.probes.split(",") if p.strip()]
    if args.videos < 1 or args.seconds < 8 or args.rows < 1 or args.repeats < 1:
        p.error("need at least 1 video of 8 s or more, 1 row and 1 repeat")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raw = list(argv) if argv is not None else __import__("sys").argv[1:]
    with tempfile.TemporaryDirectory(prefix="bench_search-") as tmp:
        work = Path(tmp)
        recall, real_rows = recall_section(args, work)
        query = query_section(args, work, real_rows)
    report = {
        "benchmark": "bench_search",
        "command": command_line("bench_search.py", raw),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "k": K,
        "recall": recall,
        "query": query,
    }
    name = "bench_search-quick.json" if args.quick else "bench_search.json"
    write_report(report, args.out or RESULTS_DIR / name)
    print(f"| variant | recall@{K} | top-1 | small found |")
    print("|---|---|---|---|")
    for name, v in recall["variants"].items():
        print(f"| {name} | {v[f'recall@{K}']} | {v['top1']} | {v['small_found']} |")
    for key, value in query.items():
        if key.startswith("dim"):
            print(f"query {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
