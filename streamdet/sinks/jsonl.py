"""One JSON line per processed frame, to a file (published on close) or to standard output."""

from __future__ import annotations

import json
import operator
import os
import sys
from typing import IO

import numpy as np

from streamdet.errors import FrameTypeError, WriterClosedError
from streamdet.sinks.base import check_frame, check_pts
from streamdet.sinks.publish import PublishedOnClose
from streamdet.types import Frame, FrameResult

#: The path that means standard output (``--jsonl -``).
STDOUT = "-"


def jsonl_line(index: int, pts: float | None, result: FrameResult) -> str:
    """The JSON line of one processed frame (with its newline), as every JSONL sink writes it."""
    record = {
        "frame": index,
        "pts": None if pts is None else round(pts, 6),
        "detections": result.to_records(),
    }
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


class JsonlSink(PublishedOnClose):
    """Writes one JSON line per processed frame, flushed as it goes.

    Line: ``{"frame": int, "pts": float seconds or null, "detections": [{"label": str,
    "prompt_index": int, "box": [x1, y1, x2, y2], "score": float}, ...]}`` (``FrameResult
    .to_records()``). ``path`` ``"-"`` writes to standard output; any other path gets the
    partial-file and crash rules of ``streamdet.sinks.publish``: lines go to the partial file
    (``partial_path``) one by one, so a live consumer can ``tail -f`` it, and ``close`` moves it
    to ``path``. After Ctrl-C the JSONL holds as many lines as the MP4 beside it holds frames.
    """

    needs_picture = False

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        to_stdout = isinstance(path, str) and path == STDOUT
        super().__init__(None if to_stdout else path, overwrite=overwrite, where="<stdout>")
        self._out: IO[str]
        if self.partial_path is None:
            self._out = sys.stdout
        else:
            self._out = open(self.partial_path, "w", encoding="utf-8")  # noqa: SIM115
        self._lines = 0

    @property
    def lines_written(self) -> int:
        return self._lines

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None = None) -> None:
        """Append the line of ``frame`` (its index and pts) with ``result`` and flush it."""
        if self._closed:
            raise WriterClosedError(f"JsonlSink for '{self._where}' is closed; open a new one")
        check_frame(frame)
        if not isinstance(result, FrameResult):
            raise FrameTypeError(f"result must be a FrameResult, but got {type(result).__name__}")
        try:
            index = operator.index(frame.index)
        except TypeError:
            raise FrameTypeError(
                f"a frame's index must be an int, but got {type(frame.index).__name__}"
            ) from None
        self._out.write(jsonl_line(index, check_pts(frame.pts), result))
        self._out.flush()
        self._lines += 1

    def _finish(self) -> int:
        """Close the file (standard output stays open); the number of lines written."""
        if self.partial_path is not None:
            self._out.close()
        return self._lines
