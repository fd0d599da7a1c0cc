"""``streamdet index`` (embed videos into an index folder) and ``streamdet search`` (rank them).

    streamdet index dashcam/ -o dashcam.index --every 1
    streamdet search dashcam.index "a red car" -k 10 --sheet hits.html
    streamdet search dashcam.index "a red car" --json
    streamdet index dashcam/ -o dashcam.index --ray            # embedded on Ray workers

Both load pyarrow and the model only when they run (the ``search`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamdet.cli.flags import add_model_flags, settings_from_args
from streamdet.cli.run import LOCAL_RAY
from streamdet.config import SEARCH_SCORINGS, SETTINGS, IndexConfig
from streamdet.errors import ConfigError, StreamdetError

_DEFAULTS = IndexConfig()


class _Progress:
    """``[2/5] clip.mp4: 40 frames`` redrawn in place on stderr (only on a terminal)."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.drawn = False

    def __call__(self, p: object) -> None:
        if not self.on:
            return
        line = f"[{p.done + 1}/{p.total}] {Path(p.path).name}: {p.frames} frames"  # type: ignore[attr-defined]
        sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _runtime(args: argparse.Namespace) -> dict[str, object]:
    """The runtime flags given (device, backend, ...): the only settings an index takes."""
    overrides = settings_from_args(args).overrides
    return {k: v for k, v in overrides.items() if SETTINGS[k][0] == "runtime"}


class _RayProgress(_Progress):
    """``[2/5 files] 3 Ray workers: 40 frames`` for a run on Ray."""

    def __call__(self, p: object) -> None:
        if not self.on:
            return
        line = f"[{p.done}/{p.total} files] {p.path}: {p.frames} frames"  # type: ignore[attr-defined]
        sys.stderr.write("\r" + line + "\x1b[K")
        sys.stderr.flush()
        self.drawn = True


def _cmd_index(args: argparse.Namespace) -> int:
    import threading

    from streamdet.search import VideoIndex

    if args.ray is None and args.ray_workers is not None:
        raise ConfigError("--ray-workers goes with --ray")
    config = IndexConfig(every=args.every, cells=args.cells, window=args.window)
    runtime = _runtime(args)
    index = VideoIndex(args.output, model=args.model, config=config, **runtime)
    progress = _Progress() if args.ray is None else _RayProgress()
    stop = threading.Event()
    try:
        if args.ray is None:
            report = index.add(args.inputs, on_progress=progress)
        else:
            from streamdet.pipeline.job import stop_on_signals

            with stop_on_signals(stop):
                report = index.add(
                    args.inputs,
                    on_progress=progress,
                    ray=True if args.ray == LOCAL_RAY else args.ray,
                    workers=args.ray_workers,
                    stop=stop,
                )
    finally:
        progress.end()
    for path, reason in report.failed:
        print(f"streamdet: skipped: {path}: {reason}", file=sys.stderr)
    stopped = f", {len(report.not_run)} not run (stopped; run again)" if report.not_run else ""
    print(
        f"indexed {len(report.indexed)}, skipped {len(report.skipped)} unchanged, "
        f"failed {len(report.failed)}{stopped}, dropped {len(report.removed)} removed; "
        f"{report.files} files, {report.rows} rows in {report.folder} ({report.seconds:.1f} s)"
    )
    if report.not_run:
        from streamdet.pipeline.job import EXIT_INTERRUPTED

        return EXIT_INTERRUPTED
    if report.failed:
        total = len(report.indexed) + len(report.skipped) + len(report.failed)
        raise StreamdetError(f"{len(report.failed)} of {total} inputs could not be indexed")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from streamdet.search import VideoIndex
    from streamdet.search.sheet import check_sheet_path

    if args.k < 1:
        raise ConfigError(f"-k must be 1 or more, but got {args.k}")
    if not args.prompt.strip():
        raise ConfigError("the prompt is empty; give text such as 'a red car'")
    if args.sheet:
        check_sheet_path(args.sheet)
    config = IndexConfig(scoring=args.scoring, collapse=args.collapse, probe=args.probe)
    runtime = _runtime(args)
    index = VideoIndex(args.index, model=args.model, config=config, **runtime)
    hits = index.search(args.prompt, k=args.k)
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_record()))
    else:
        for hit in hits:
            box = ",".join(str(v) for v in hit.box)
            print(f"{hit.file}  {hit.time:.2f}  {hit.score:.4f}  {box}")
        if not hits:
            print("no hits: the index is empty", file=sys.stderr)
    if args.sheet:
        out = index.contact_sheet(hits, args.sheet, args.prompt)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _add_model_flags(p: argparse.ArgumentParser, default: str) -> None:
    """The model and runtime flags, ``--model`` defaulting to the index's model."""
    add_model_flags(p)
    for action in p._actions:
        if action.dest == "model":
            action.default = None
            action.help = f"exported folder, Hugging Face folder or hub id (default: {default})"


def add_index_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="embed videos into a search index (see streamdet search)")
    p.add_argument("inputs", nargs="+", metavar="VIDEO", help="videos or images, folders, globs")
    p.add_argument("-o", "--output", required=True, metavar="INDEX", help="the index folder")
    p.add_argument(
        "--every",
        type=float,
        default=_DEFAULTS.every,
        help=f"seconds between sampled frames (default {_DEFAULTS.every})",
    )
    p.add_argument(
        "--cells",
        type=int,
        default=_DEFAULTS.cells,
        help=f"window grid: the frame's shorter side in cells (default {_DEFAULTS.cells})",
    )
    p.add_argument(
        "--window",
        type=int,
        default=_DEFAULTS.window,
        help=f"window grid: window side in cells, one-cell steps (default {_DEFAULTS.window})",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        metavar="ADDRESS",
        help="embed the videos on Ray workers (each loads the model once): a local Ray, or the "
        "cluster at ADDRESS (HOST:PORT, ray://HOST:PORT, auto); only new and changed videos go "
        'to workers; needs pip install "streamdet[ray]"',
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="Ray workers, each with one model (default: the cluster's CPUs / --threads)",
    )
    _add_model_flags(p, "the index's own model, or the built-in one for a new index")
    p.set_defaults(func=_cmd_index)


def add_search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the moments of indexed videos that match a prompt")
    p.add_argument("index", metavar="INDEX", help="an index folder made by streamdet index")
    p.add_argument("prompt", help="what to find, e.g. 'a red car'")
    p.add_argument("-k", type=int, default=10, help="how many moments to list (default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--sheet", metavar="PATH", help="write a contact sheet (.png, .jpg or .html)")
    p.add_argument(
        "--scoring",
        choices=SEARCH_SCORINGS,
        default=_DEFAULTS.scoring,
        help=f"calibrated (against background prompts) or cosine (default {_DEFAULTS.scoring})",
    )
    p.add_argument(
        "--probe",
        type=float,
        default=_DEFAULTS.probe,
        help="share of the rows a query scores in an index with inverted lists (250,000 rows "
        "or more): those of the best-matching lists; 1 scores every row "
        f"(default {_DEFAULTS.probe})",
    )
    p.add_argument(
        "--collapse",
        type=float,
        default=_DEFAULTS.collapse,
        help="hits of one video this close in seconds are one moment "
        f"(default {_DEFAULTS.collapse})",
    )
    _add_model_flags(p, "the index's own model")
    p.set_defaults(func=_cmd_search)
