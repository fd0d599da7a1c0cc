"""The live view's side of a run: a sink that offers each rendered frame to the viewers, the
prompt mailbox the page posts edits into, and the run's live numbers for ``/api/state``.

One ``LiveView`` lives as long as the web server (several inputs of one ``streamdet run`` share
it); each input's run gets the view's ``sink`` (needs the rendered picture, so viewers see the
same boxes as the MP4), ``prompts`` (polled by the inference worker between frames), ``clock``
(the run records its stage times there) and ``progress`` (the runner's snapshots: FPS, drops,
latency). The view never reaches into the pipeline: everything it shows was handed to it.
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import numpy as np

from streamdet.pipeline.prompt_control import PromptMailbox, PromptUpdate
from streamdet.pipeline.stats import STAGES, StageClock
from streamdet.render import colour_of
from streamdet.serve.hub import FrameHub, Offer
from streamdet.sources.urls import mask_url
from streamdet.types import Frame, FrameResult

#: Stages shown per frame, in milliseconds (the runner's ``StageClock`` names).
SHOWN_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s != "latency")


def heatmap_record(result: FrameResult) -> dict[str, Any]:
    """The max-over-prompts heatmap as 8-bit cells, base64 (the page colours it itself, so a
    viewer's heatmap toggle changes nothing for the other viewers or the MP4)."""
    heat = result.heatmaps
    if heat.ndim != 3 or heat.shape[0] == 0:
        return {"rows": 0, "cols": 0, "patch": result.patch, "cells": ""}
    cells = (np.clip(heat.max(axis=0), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return {
        "rows": int(cells.shape[0]),
        "cols": int(cells.shape[1]),
        "patch": int(result.patch),
        "cells": base64.b64encode(cells.tobytes()).decode("ascii"),
    }


def _css_colour(index: int) -> str:
    """The colour the boxes of prompt ``index`` are drawn in, as CSS ``#rrggbb``."""
    b, g, r = colour_of(index)
    return f"#{r:02x}{g:02x}{b:02x}"


class ViewSink:
    """The ``Sink`` of one run: offers every rendered frame to the hub, never waits."""

    needs_picture = True

    def __init__(self, view: LiveView) -> None:
        self._view = view
        self.frames = 0

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None) -> None:
        image = frame.image if picture is None else picture
        # the capture moment on the wall clock, so a page on this machine can measure latency
        captured_ms = (time.time() - (time.monotonic() - frame.captured_at)) * 1e3
        self._view.latest_prompts = result.prompts

        def meta() -> dict:
            height, width = image.shape[:2]
            return {
                "type": "frame",
                "index": frame.index,
                "pts": frame.pts,
                "captured_ms": round(captured_ms, 2),
                "encoded_ms": round(time.time() * 1e3, 2),
                "width": width,
                "height": height,
                "prompts": list(result.prompts),
                "detections": result.to_records(),
                "heatmap": heatmap_record(result),
            }

        self._view.hub.offer(Offer(image, meta))
        self.frames += 1

    def close(self) -> tuple[str, int] | None:
        return None  # a view writes nothing


class LiveView:
    """What the web server shows and takes: frames, stats, state; prompt edits."""

    def __init__(self, detector: Any = None) -> None:
        self.hub = FrameHub()
        self.mailbox = PromptMailbox()
        self.clock = StageClock()
        self.detector = detector
        self.source = ""
        self.live = False
        self.running = False
        self.latest_prompts: tuple[str, ...] = ()
        self._progress: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ run wiring

    def start_run(self, source_name: str, live: bool) -> ViewSink:
        """A new input starts: fresh stage clock, its (masked) name; the sink for its run."""
        self.clock = StageClock()
        self.source = mask_url(str(source_name))
        self.live = live
        self._progress = None
        self.running = True
        return ViewSink(self)

    def end_run(self) -> None:
        self.running = False

    @property
    def prompts(self) -> PromptMailbox:
        """The prompt source to hand the runner (``run(..., prompts=view.prompts)``)."""
        return self.mailbox

    def progress(self, snapshot: Any) -> None:
        """The runner's ``on_progress`` callback (a ``Progress``)."""
        self._progress = snapshot

    def post_prompts(self, update: PromptUpdate) -> None:
        """A checked edit from the page or the API: applied before the next frame."""
        self.mailbox.post(update)

    # ------------------------------------------------------------------ state

    def _prompt_state(self) -> tuple[list[str], dict[str, float]]:
        thresholds_of = getattr(self.detector, "prompt_thresholds", None)
        if callable(thresholds_of):
            thresholds = thresholds_of()
            return list(thresholds), {p: round(t, 4) for p, t in thresholds.items()}
        prompts = getattr(self.detector, "prompts", None) or self.latest_prompts
        return list(prompts), {}

    def state(self) -> dict[str, Any]:
        """``GET /api/state``: prompts, thresholds, fps, frames, drops, latency, stage ms."""
        prompts, thresholds = self._prompt_state()
        p = self._progress
        stages = {}
        for stage in SHOWN_STAGES:
            ms = self.clock.recent_mean(stage)
            if ms is not None:
                stages[stage] = round(ms, 2)
        latency = p.latency_ms if p is not None else None
        return {
            "source": self.source,
            "live": self.live,
            "running": self.running,
            "prompts": prompts,
            "thresholds": thresholds,
            "colors": {p: _css_colour(i) for i, p in enumerate(prompts)},
            "fps": round(p.fps, 2) if p is not None else 0.0,
            "frames_processed": p.processed if p is not None else 0,
            "frames_expected": p.expected if p is not None else None,
            "frames_dropped": p.dropped if p is not None else 0,
            "latency_ms": round(latency, 2) if latency is not None else None,
            "stages_ms": stages,
            "viewers": self.hub.viewers,
        }

    def close(self) -> None:
        self.running = False
        self.hub.close()
