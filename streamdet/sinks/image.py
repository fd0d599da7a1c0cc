"""The annotated picture of a still-image input, written on close."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamdet.detect.frames import as_bgr
from streamdet.errors import ConfigError, FrameError, WriterClosedError
from streamdet.sinks.base import check_frame
from streamdet.sinks.publish import PublishedOnClose
from streamdet.types import Frame, FrameResult


class ImageSink(PublishedOnClose):
    """Writes one picture (the last one given) as PNG/JPEG/BMP/WebP/TIFF on ``close``.

    The format follows the path's suffix. Same partial-file, overwrite and crash rules as the
    other file sinks (``streamdet.sinks.publish``); a sink that got no picture leaves no file.
    """

    SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

    needs_picture = True

    def __init__(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        suffix = Path(path).suffix.lower()
        if suffix not in self.SUFFIXES:
            raise ConfigError(
                f"image output '{path}' must end in one of {', '.join(self.SUFFIXES)}"
            )
        super().__init__(path, overwrite=overwrite)
        self._suffix = suffix
        self._picture: np.ndarray | None = None

    def write(
        self, frame: Frame, result: FrameResult | None = None, picture: np.ndarray | None = None
    ) -> None:
        """Keep ``picture`` (HxWx3 uint8 BGR; gray and BGRA converted; None: the frame's own
        image) to write on close."""
        if self._closed:
            raise WriterClosedError(f"ImageSink for '{self.path}' is closed; open a new one")
        check_frame(frame)
        self._picture = as_bgr(frame.image if picture is None else picture)

    def _finish(self) -> int:
        if self._picture is None:
            return 0
        ok, buf = cv2.imencode(self._suffix, self._picture)
        if not ok:
            raise FrameError(f"OpenCV could not encode the picture as {self._suffix}")
        assert self.partial_path is not None
        self.partial_path.write_bytes(buf.tobytes())
        return 1
