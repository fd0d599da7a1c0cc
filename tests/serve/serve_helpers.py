"""A live run with the web view for the serve tests: a paced moving picture, a detector that
finds one box per prompt (so prompt edits show up as labels), and the view's server on a free
port of 127.0.0.1, all stopped and joined when the test ends; ``live_runs``: several such
cameras at once through one detector (``run_streams``), each on the view as its own source."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from streamdet.config.settings import TrackConfig
from streamdet.errors import ConfigError
from streamdet.pipeline.runner import run
from streamdet.pipeline.stats import RunReport
from streamdet.pipeline.streams import StreamSpec, run_streams
from streamdet.serve import LiveView, ViewServer, parse_serve
from streamdet.types import Detections, Frame, FrameResult, Timings

W, H = 160, 96


class MovingSource:
    """An endless live source of ``fps`` frames a second: a white square crossing a grey field
    of level ``shade`` (so consecutive pictures differ, and sources can be told apart), and a
    name that carries a camera password. ``stall_after``: frames sent before it goes silent
    (still open, as a camera whose network hangs)."""

    def __init__(
        self,
        fps: float = 20.0,
        name: str = "rtsp://admin:hunter2secret@10.0.0.7/stream",
        shade: int = 90,
        stall_after: int | None = None,
    ) -> None:
        self.name = name
        self.shade = shade
        self.stall_after = stall_after
        self.live = True
        self.fps = fps
        self.frame_count = None
        self.size = (W, H)
        self.closed = False

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        start, i = time.monotonic(), 0
        while not stop.is_set():
            if self.stall_after is not None and i >= self.stall_after:
                time.sleep(0.01)
                continue
            delay = start + i / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            image = np.full((H, W, 3), self.shade, np.uint8)
            x = (i * 7) % (W - 20)
            image[30:50, x : x + 20] = 255
            yield Frame(image, i, i / self.fps, time.monotonic())
            i += 1

    def close(self) -> None:
        self.closed = True


class LabelDetector:
    """One box per prompt (prompt k at x = 10 + 30 k), score 0.9; remembers thresholds."""

    provider = "FakeProvider"

    def __init__(self, prompts: tuple[str, ...] = ("a thing",)) -> None:
        self.prompts = tuple(prompts)
        self.thresholds: dict[str, float] = dict.fromkeys(self.prompts, 0.5)

    def set_prompts(self, prompts, thresholds=None) -> None:
        prompts = tuple(prompts)
        for value in (thresholds or {}).values():
            if not 0 <= value <= 1:
                raise ConfigError("bad threshold")
        chosen = {**self.thresholds, **(thresholds or {})}
        self.thresholds = {p: chosen.get(p, 0.5) for p in prompts}
        self.prompts = prompts

    def prompt_thresholds(self) -> dict[str, float]:
        return dict(self.thresholds)

    def detect(self, frame: np.ndarray) -> FrameResult:
        k = len(self.prompts)
        xyxy = np.array([[10 + 30 * i, 10, 30 + 30 * i, 40] for i in range(k)], np.float32)
        dets = Detections(xyxy, np.full(k, 0.9, np.float32), np.arange(k, dtype=np.int64))
        heat = np.linspace(0, 1, k * 3 * 5, dtype=np.float32).reshape(k, 3, 5)
        return FrameResult(dets, heat, self.prompts, frame.shape[:2], 32, Timings(encode_ms=2.0))


class TrackedLabelDetector(LabelDetector):
    """A LabelDetector whose settings turn tracking on, as the real Detector's do by default."""

    config = SimpleNamespace(track=TrackConfig(), to_dict=lambda: {"track": {"enabled": True}})


@dataclass
class LiveRun:
    """A running view: its URL (with the token when there is one) and parts to poke at."""

    url: str
    base: str
    view: LiveView
    server: ViewServer
    detector: LabelDetector
    stop: threading.Event
    reports: list[RunReport] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


@contextlib.contextmanager
def live_run(
    spec: str = "127.0.0.1:0",
    token: str | None = None,
    fps: float = 20.0,
    detector: LabelDetector | None = None,
) -> Iterator[LiveRun]:
    """Serve a live run until the block ends; then stop it and check it ended cleanly."""
    detector = detector or LabelDetector()
    view = LiveView(detector)
    server = ViewServer(view, parse_serve(spec, token))
    url = server.start()
    stop = threading.Event()
    source = MovingSource(fps)
    state = LiveRun(url, url.split("?")[0].rstrip("/"), view, server, detector, stop)

    def go() -> None:
        try:
            sink = view.start_run(source.name, source.live)
            state.reports.append(
                run(
                    source,
                    detector,
                    [sink],
                    stop=stop,
                    prompts=view.prompts,
                    clock=view.clock,
                    on_progress=view.progress,
                )
            )
        except BaseException as exc:
            state.errors.append(exc)
        finally:
            view.end_run()

    with _running(go, state, server, stop):
        yield state


@contextlib.contextmanager
def _running(
    go: Callable[[], None], state: LiveRun, server: ViewServer, stop: threading.Event
) -> Iterator[None]:
    """Run ``go`` on a thread for the block; then stop it, the server, and check it ended
    cleanly (no error, the thread gone)."""
    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        server.stop()
    assert not thread.is_alive(), "the run did not stop"
    assert not state.errors, state.errors


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """``check()``'s first truthy value, polled every 50 ms; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


#: The field level of source k of ``live_runs`` (tell the sources' pictures apart).
SHADES = (60, 120, 180, 30)


def camera_name(k: int) -> str:
    """Source k's name: a camera URL with a password (masked on the view)."""
    return f"rtsp://admin:hunter2secret@10.0.0.{7 + k}/stream"


@contextlib.contextmanager
def live_runs(
    count: int = 2,
    token: str | None = None,
    fps: float = 20.0,
    stall_after: dict[int, int] | None = None,
    detector: LabelDetector | None = None,
) -> Iterator[LiveRun]:
    """``count`` cameras at once through one detector (``run_streams``, as ``streamdet run
    SRC1 SRC2 ...`` runs them), each on the view as source k (field ``SHADES[k]``); stopped and
    checked when the block ends. ``stall_after``: source k goes silent after that many frames."""
    detector = detector or LabelDetector()
    view = LiveView(detector)
    server = ViewServer(view, parse_serve("127.0.0.1:0", token))
    url = server.start()
    stop = threading.Event()
    stalls = stall_after or {}
    sources = [MovingSource(fps, camera_name(k), SHADES[k], stalls.get(k)) for k in range(count)]
    state = LiveRun(url, url.split("?")[0].rstrip("/"), view, server, detector, stop)
    sinks = [view.start_run(s.name, s.live) for s in sources]
    specs = [
        StreamSpec(s, (sink,), sink.clock, sink.progress)
        for s, sink in zip(sources, sinks, strict=True)
    ]

    def go() -> None:
        try:
            state.reports.extend(run_streams(specs, detector, stop=stop, prompts=view.prompts))
        except BaseException as exc:
            state.errors.append(exc)
        finally:
            for sink in sinks:
                view.end_run(sink)

    with _running(go, state, server, stop):
        yield state
