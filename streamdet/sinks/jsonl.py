"""One JSON line per processed frame, to a file or to standard output, each line whole and flushed
as it is written."""

from __future__ import annotations

import json
import operator
import os
import sys

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
    .to_records()``). ``path`` ``"-"`` writes to standard output; any other path gets the write
    rules of ``streamdet.sinks.publish``: by default lines go to the hidden partial file
    (``partial_path``) and ``close`` moves it to ``path``; with ``live=True`` (cameras, streams)
    they go to ``path`` itself, so ``tail -f path`` follows the run. Each line reaches the file
    in one write and is flushed at once, so a reader never finds a half line between frames and
    a hard kill leaves every line written before it. After Ctrl-C the JSONL holds as many lines
    as the MP4 beside it holds frames.
    """

    needs_picture = False

    def __init__(
        self, path: str | os.PathLike[str], *, overwrite: bool = False, live: bool = False
    ) -> None:
        to_stdout = isinstance(path, str) and path == STDOUT
        super().__init__(
            None if to_stdout else path, overwrite=overwrite, where="<stdout>", live=live
        )
        # Unbuffered binary: each line is one write() to the file, nothing waits in a buffer.
        self._fd: int | None = None
        if self.writing_path is not None:
            self._fd = os.open(self.writing_path, os.O_WRONLY | os.O_APPEND)
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
        line = jsonl_line(index, check_pts(frame.pts), result)
        if self._fd is None:
            sys.stdout.write(line)
            sys.stdout.flush()
        else:
            data = memoryview(line.encode("utf-8"))
            while data:  # a short write (a full disk, a signal) continues where it stopped
                data = data[os.write(self._fd, data) :]
        self._lines += 1

    def _finish(self) -> int:
        """Close the file (standard output stays open); the number of lines written."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return self._lines
