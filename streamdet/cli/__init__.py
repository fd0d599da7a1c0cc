"""The ``streamdet`` command line: ``demo``, ``run``, ``detect``, ``classify``, ``export``,
``index`` and ``search``.

``main(argv)`` returns the exit code: 0 on success, 1 when streamdet refused or failed with a
one-line reason (``streamdet: error: ...`` on stderr, no traceback), 2 for usage errors (argparse),
130 on Ctrl-C. Parsers are built from ``flags`` (every detector setting, mapped onto
``streamdet.config`` in one place); each command's code loads only when that command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from streamdet import __version__
from streamdet.cli import commands, run, search
from streamdet.errors import StreamdetError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamdet", description="Text-prompted zero-shot object detection with CLIP."
    )
    parser.add_argument("--version", action="version", version=f"streamdet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_demo_parser(sub)
    run.add_run_parser(sub)
    commands.add_detect_parser(sub)
    commands.add_classify_parser(sub)
    commands.add_export_parser(sub)
    search.add_index_parser(sub)
    search.add_search_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="streamdet: %(levelname)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except StreamdetError as exc:
        print(f"streamdet: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamdet: interrupted", file=sys.stderr)
        return 130
