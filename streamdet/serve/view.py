"""The live view's side of a run: sinks that offer each rendered frame to the viewers, the
prompt mailbox the page posts edits into, and each source's live numbers for ``/api/state``.

One ``LiveView`` lives as long as the web server. Each source on view has a *slot*: its own
``FrameHub`` (the newest frame of that source for its viewers), stage clock, masked name and
progress. ``start_run`` gives a source a slot and returns that slot's ``ViewSink``:

* one run at a time (one input, or a folder's files one after another): every run takes slot 0,
  so a page that watches keeps watching across inputs, as it always has;
* several runs at once (``streamdet run SRC1 SRC2 ...``): a ``start_run`` while another slot's
  run is still going takes the next slot (0, 1, 2, ...); once every run of the group has ended
  (``end_run``), the next ``start_run`` begins again at slot 0.

Each run hands its sink's ``clock`` (stage times) and ``progress`` (FPS, drops, latency) to the
pipeline; ``view.clock`` and ``view.progress`` are those of the newest run, which is all a
single run needs. The prompts are shared: one mailbox, one model. The view never reaches into
the pipeline: everything it shows was handed to it.
"""

from __future__ import annotations

import asyncio
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


class SourceSlot:
    """One source on view: its frame hub, stage clock, masked name and latest progress."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.hub = FrameHub()
        self.clock = StageClock()
        self.name = ""
        self.live = False
        self.running = False
        self.progress: Any = None  # the pipeline's latest ``Progress`` of this source

    def restart(self, source_name: str, live: bool) -> None:
        """A new run takes this slot: fresh clock and numbers, its (masked) name."""
        self.clock = StageClock()
        self.name = mask_url(str(source_name))
        self.live = live
        self.progress = None
        self.running = True

    def numbers(self) -> dict[str, Any]:
        """fps, frames_processed, frames_expected, frames_dropped, latency_ms."""
        p = self.progress
        latency = p.latency_ms if p is not None else None
        return {
            "fps": round(p.fps, 2) if p is not None else 0.0,
            "frames_processed": p.processed if p is not None else 0,
            "frames_expected": p.expected if p is not None else None,
            "frames_dropped": p.dropped if p is not None else 0,
            "latency_ms": round(latency, 2) if latency is not None else None,
        }

    def stages(self) -> dict[str, float]:
        """Recent mean milliseconds of each stage that has run."""
        out = {}
        for stage in SHOWN_STAGES:
            ms = self.clock.recent_mean(stage)
            if ms is not None:
                out[stage] = round(ms, 2)
        return out

    def record(self) -> dict[str, Any]:
        """This source's entry of ``/api/state``'s ``sources``."""
        return {
            "index": self.index,
            "name": self.name,
            "live": self.live,
            "running": self.running,
            **self.numbers(),
            "viewers": self.hub.viewers,
        }


class ViewSink:
    """The ``Sink`` of one run: offers every rendered frame to its slot's hub, never waits.

    ``clock`` and ``progress`` are for the run that writes here (``run(..., clock=sink.clock,
    on_progress=sink.progress)``, or a ``StreamSpec``'s), so each source shows its own numbers.
    """

    needs_picture = True

    def __init__(self, view: LiveView, slot: SourceSlot) -> None:
        self._view = view
        self._slot = slot
        self.frames = 0

    @property
    def index(self) -> int:
        """The source's index on the view (``?source=`` of the stream and the WebSocket)."""
        return self._slot.index

    @property
    def clock(self) -> StageClock:
        return self._slot.clock

    def progress(self, snapshot: Any) -> None:
        """The pipeline's progress callback for this source (a ``Progress``)."""
        self._slot.progress = snapshot

    def write(self, frame: Frame, result: FrameResult, picture: np.ndarray | None) -> None:
        image = frame.image if picture is None else picture
        # the capture moment on the wall clock, so a page on this machine can measure latency
        captured_ms = (time.time() - (time.monotonic() - frame.captured_at)) * 1e3
        self._view.latest_prompts = result.prompts
        source = self._slot.index

        def meta() -> dict:
            height, width = image.shape[:2]
            return {
                "type": "frame",
                "source": source,
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

        self._slot.hub.offer(Offer(image, meta))
        self.frames += 1

    def close(self) -> tuple[str, int] | None:
        return None  # a view writes nothing


class LiveView:
    """What the web server shows and takes: each source's frames and stats, the shared prompts
    and their edits."""

    def __init__(self, detector: Any = None) -> None:
        self.mailbox = PromptMailbox()
        self.detector = detector
        self.latest_prompts: tuple[str, ...] = ()
        self._slots = [SourceSlot(0)]
        self._shown = 1  # slots of the current group of runs (slot 0 always)
        self._newest = self._slots[0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ run wiring

    def start_run(self, source_name: str, live: bool) -> ViewSink:
        """A source starts: the first free slot of the current group (slot 0 when no run is
        going), fresh numbers, its masked name; the sink for its run."""
        with self._lock:
            if not any(s.running for s in self._slots[: self._shown]):
                self._shown = 0  # a new group of runs begins at slot 0
            if self._shown == len(self._slots):
                self._slots.append(self._new_slot(len(self._slots)))
            slot = self._slots[self._shown]
            self._shown += 1
            slot.restart(source_name, live)
            self._newest = slot
        return ViewSink(self, slot)

    def _new_slot(self, index: int) -> SourceSlot:
        slot = SourceSlot(index)
        if self._loop is not None:
            slot.hub.bind(self._loop)
        if self._closed:
            slot.hub.close()
        return slot

    def end_run(self, sink: ViewSink | None = None) -> None:
        """``sink``'s run ended; without a sink, every run of the view ended."""
        with self._lock:
            for slot in self._slots:
                if sink is None or slot.index == sink.index:
                    slot.running = False

    @property
    def prompts(self) -> PromptMailbox:
        """The prompt source to hand the runner (``run(..., prompts=view.prompts)``)."""
        return self.mailbox

    @property
    def clock(self) -> StageClock:
        """The newest run's stage clock (``run(..., clock=view.clock)`` after ``start_run``)."""
        return self._newest.clock

    def progress(self, snapshot: Any) -> None:
        """The newest run's ``on_progress`` callback (a ``Progress``)."""
        self._newest.progress = snapshot

    def post_prompts(self, update: PromptUpdate) -> None:
        """A checked edit from the page or the API: applied before the next frame."""
        self.mailbox.post(update)

    # ------------------------------------------------------------------ sources

    @property
    def sources(self) -> list[SourceSlot]:
        """The sources on view, in order (slot 0 even before any run starts)."""
        with self._lock:
            return self._slots[: max(1, self._shown)]

    def slot(self, index: int) -> SourceSlot | None:
        """Source ``index`` on view, or None when there is no such source."""
        shown = self.sources
        return shown[index] if 0 <= index < len(shown) else None

    @property
    def hub(self) -> FrameHub:
        """The first source's frame hub (the only one of a single run)."""
        return self._slots[0].hub

    @property
    def source(self) -> str:
        return self._slots[0].name

    @property
    def live(self) -> bool:
        return self._slots[0].live

    @property
    def running(self) -> bool:
        return any(s.running for s in self.sources)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the server's loop (call on it): every source's viewers are woken there."""
        with self._lock:
            self._loop = loop
            for slot in self._slots:
                slot.hub.bind(loop)

    # ------------------------------------------------------------------ state

    def _prompt_state(self) -> tuple[list[str], dict[str, float]]:
        thresholds_of = getattr(self.detector, "prompt_thresholds", None)
        if callable(thresholds_of):
            thresholds = thresholds_of()
            return list(thresholds), {p: round(t, 4) for p, t in thresholds.items()}
        prompts = getattr(self.detector, "prompts", None) or self.latest_prompts
        return list(prompts), {}

    def state(self, index: int = 0) -> dict[str, Any]:
        """``GET /api/state``: the shared prompts and thresholds; fps, frames, drops, latency,
        stage ms and viewers of source ``index`` (the selected one, 0: the first); and
        ``sources``, every source's name and numbers."""
        prompts, thresholds = self._prompt_state()
        shown = self.sources
        slot = shown[index] if 0 <= index < len(shown) else shown[0]
        return {
            "source": slot.name,
            "live": slot.live,
            "running": slot.running,
            "prompts": prompts,
            "thresholds": thresholds,
            "colors": {p: _css_colour(i) for i, p in enumerate(prompts)},
            **slot.numbers(),
            "stages_ms": slot.stages(),
            "viewers": slot.hub.viewers,
            "selected": slot.index,
            "sources": [s.record() for s in shown],
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for slot in self._slots:
                slot.running = False
        for slot in self._slots:
            slot.hub.close()
