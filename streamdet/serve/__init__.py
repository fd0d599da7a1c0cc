"""The live web view (``streamdet run SOURCE --serve [HOST:]PORT``): the annotated video in a
browser page with editable prompts and live stats, an MJPEG stream, a JSON API and a WebSocket.

    view = LiveView(detector)
    with ViewServer(view, parse_serve("127.0.0.1:0")) as server:
        print(server.url)
        sink = view.start_run(source.name, source.live)
        run(source, detector, [sink], prompts=view.prompts, clock=sink.clock,
            on_progress=sink.progress)

Several sources at once: one ``start_run`` per source (source K: ``?source=K`` on the stream,
the WebSocket and ``/api/state``), each sink's clock and progress in its ``StreamSpec``:

        sinks = [view.start_run(s.name, s.live) for s in sources]
        run_streams([StreamSpec(s, (k,), k.clock, k.progress) for s, k in zip(sources, sinks)],
                    detector, prompts=view.prompts)

The web server (aiohttp) is the optional extra ``serve``; ``ViewServer`` imports it when first
used, and ``require_aiohttp`` says how to install it in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamdet.serve.address import (
    SERVE_INSTALL,
    ServeAddress,
    check_port_free,
    is_loopback,
    parse_serve,
    require_aiohttp,
)
from streamdet.serve.view import LiveView, SourceSlot, ViewSink

if TYPE_CHECKING:
    from streamdet.serve.server import ViewServer

__all__ = [
    "SERVE_INSTALL",
    "LiveView",
    "ServeAddress",
    "SourceSlot",
    "ViewServer",
    "ViewSink",
    "check_port_free",
    "is_loopback",
    "parse_serve",
    "require_aiohttp",
]


def __getattr__(name: str) -> Any:
    if name == "ViewServer":  # imports aiohttp: only when a server is really started
        require_aiohttp()
        from streamdet.serve.server import ViewServer

        return ViewServer
    raise AttributeError(f"module 'streamdet.serve' has no attribute {name!r}")
