"""Where a run's frames go: an annotated H.264 MP4, a JSON-lines log (file or stdout), an
annotated image, a live window; all behind one protocol, :class:`Sink`.

Every sink takes the source frame, the detector's result and the rendered picture
(``write(frame, result, picture)``) and says on ``close`` what it wrote. The sinks that write a
file share two write rules (``publish``): by default they write a hidden partial file and publish
it on close, so a file at the target path is a finished one; with ``live=True`` (cameras and
streams) the MP4 and JSONL are written at the target path as the run goes, in pieces each usable
as it lands (fragments, whole lines). Either way Ctrl-C leaves every output finalised.

    live = source.live
    sinks = [Mp4Sink("out.mp4", fps=source.fps, live=live), JsonlSink("out.jsonl", live=live)]
    report = run(source, detector, sinks)  # streamdet.pipeline.runner.run closes them
"""

from __future__ import annotations

from streamdet.sinks.base import Sink
from streamdet.sinks.image import ImageSink
from streamdet.sinks.jsonl import STDOUT, JsonlSink, jsonl_line
from streamdet.sinks.mp4 import DEFAULT_FPS, DEFAULT_TIME_BASE, Mp4Sink
from streamdet.sinks.probe import VideoInfo, probe_video
from streamdet.sinks.publish import ensure_folder
from streamdet.sinks.window import WindowSink, check_display

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_TIME_BASE",
    "STDOUT",
    "ImageSink",
    "JsonlSink",
    "Mp4Sink",
    "Sink",
    "VideoInfo",
    "WindowSink",
    "check_display",
    "ensure_folder",
    "jsonl_line",
    "probe_video",
]
