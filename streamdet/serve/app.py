"""The live view's web application (aiohttp): the page, MJPEG, the JSON API and the WebSocket.

Routes (scripts and tests rely on these paths and fields):

* ``GET /``: the viewer page; ``GET /static/NAME``: its script and style, from the package's
  ``static`` folder only (a fixed list of names read at start-up: no path is ever joined from
  the request, so nothing outside that folder can be read).
* ``GET /stream.mjpg``: the annotated frames as ``multipart/x-mixed-replace`` JPEGs.
* ``GET /api/state``: prompts, thresholds, fps, frames_processed, frames_dropped, latency_ms, ...
  (the numbers of the selected source) and ``sources``: every source's index, masked name and
  numbers.
* ``PUT /api/prompts``: ``{"prompts": [...], "thresholds": {prompt: 0..1}?}``, applied before the
  next frame; a 400 with a one-line ``{"error": ...}`` and no change when invalid.
* ``GET /ws``: a WebSocket; per frame one JSON text (``"type": "frame"``: detections, heatmap,
  timestamps) then the JPEG as a binary message; ``"type": "state"`` twice a second. It takes
  ``{"type": "prompts", ...}`` edits and, from clients that say ``{"type": "hello", "ack": true}``,
  ``{"type": "ack", "seq": N}`` after drawing a frame (at most ``IN_FLIGHT`` frames unacknowledged,
  so a slow page gets the newest frame rather than a backlog).

A run of several sources at once (``streamdet run SRC1 SRC2 ...``) has one source per index
0, 1, ...: ``?source=K`` on ``/stream.mjpg``, ``/ws`` and ``/api/state`` selects one (default 0,
the first; the only one of a single run); not a number: 400, no such source: 404, both with a
one-line ``{"error": ...}``. The prompts are shared by every source (one model).

Security: with a token every request, the WebSocket included, needs ``Authorization: Bearer
TOKEN`` or ``?token=TOKEN`` (compared in constant time), else 401; bound to a loopback address,
requests must name a loopback host (``Host``), which stops DNS-rebinding pages; the WebSocket and
``PUT`` refuse a browser ``Origin`` other than the page's own. No access log is written (URLs can
carry the token), and the source name is masked (``mask_url``) before it is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import WSMsgType, web

from streamdet.errors import StreamdetError
from streamdet.pipeline.prompt_control import check_update
from streamdet.serve.address import ServeAddress, is_loopback
from streamdet.serve.view import LiveView, SourceSlot

#: Frames a WebSocket client that acknowledges may have unacknowledged.
IN_FLIGHT = 2
#: Seconds between state messages on the WebSocket.
STATE_EVERY_S = 0.5
#: Largest message a client may send (prompt edits are small).
MAX_MESSAGE = 64 * 1024

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-ancestors 'none'",
}

VIEW_KEY = web.AppKey("view", LiveView)
CONNECTIONS_KEY = web.AppKey("connections", set)


def load_static() -> dict[str, tuple[bytes, str]]:
    """Every file of the package's ``static`` folder: name -> (bytes, content type)."""
    folder = resources.files("streamdet.serve") / "static"
    out = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            out[item.name] = (item.read_bytes(), _TYPES[suffix])
    return out


def _host_name(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` -> ``::1``)."""
    return urlsplit("//" + host_header).hostname or ""


def _same_origin(origin: str, host_header: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={**_HEADERS, **headers})


def _selected(request: web.Request, view: LiveView) -> SourceSlot | web.Response:
    """The source ``?source=K`` names (default 0), or the one-line 400 / 404 to answer."""
    text = request.query.get("source", "0").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return _error(
            400,
            f"source={text[:20]!r}: give a source's index, 0, 1, ... (see sources in /api/state)",
        )
    slot = view.slot(int(text))
    if slot is None:
        count = len(view.sources)
        return _error(404, f"no source {int(text)}: this view has {count} (0..{count - 1})")
    return slot


def make_app(view: LiveView, address: ServeAddress) -> web.Application:
    """The aiohttp application serving ``view`` with ``address``'s token and host rules."""
    static = load_static()
    token = address.token.encode() if address.token else None
    connections: set[asyncio.Task | web.WebSocketResponse] = set()

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if address.loopback and not is_loopback(_host_name(request.host)):
            return _error(403, "this view answers only on a loopback host name (127.0.0.1)")
        if token is not None and not _has_token(request, token):
            return _error(401, "a token is needed", **{"WWW-Authenticate": "Bearer"})
        response = await handler(request)
        if not response.prepared:
            for key, value in _HEADERS.items():
                response.headers.setdefault(key, value)
        return response

    async def index(request: web.Request) -> web.Response:
        page = static["index.html"][0].decode("utf-8")
        query = "?token=" + quote(address.token, safe="") if address.token else ""
        return web.Response(text=page.replace("{{query}}", query), content_type="text/html")

    async def static_file(request: web.Request) -> web.Response:
        found = static.get(request.match_info["name"])
        if found is None or request.match_info["name"] == "index.html":
            return _error(404, "no such file")
        body, kind = found
        return web.Response(body=body, content_type=kind)

    async def api_state(request: web.Request) -> web.Response:
        slot = _selected(request, view)
        if isinstance(slot, web.Response):
            return slot
        return web.json_response(view.state(slot.index))

    async def api_prompts(request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin and not _same_origin(origin, request.host):
            return _error(403, "cross-origin requests are refused")
        if request.content_type != "application/json":
            return _error(415, "send the prompts as JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.text())
        except ValueError as err:
            return _error(400, f"the body is not valid JSON: {err}")
        try:
            update = _update_from(body)
        except StreamdetError as err:
            return _error(400, str(err))
        view.post_prompts(update)
        return web.json_response(_update_record(update))

    async def mjpeg(request: web.Request) -> web.StreamResponse:
        slot = _selected(request, view)
        if isinstance(slot, web.Response):
            return slot
        hub = slot.hub
        response = web.StreamResponse(
            headers={**_HEADERS, "Content-Type": "multipart/x-mixed-replace; boundary=frame"}
        )
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        hub.viewer_joined()
        try:
            seq = 0
            while (frame := await hub.next_frame(seq)) is not None:
                seq = frame.seq
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}"
                await response.write(head.encode() + b"\r\n\r\n" + frame.jpeg + b"\r\n")
        except (ConnectionError, RuntimeError):  # the viewer left
            pass
        finally:
            hub.viewer_left()
            connections.discard(task)
        return response

    async def websocket(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and not _same_origin(origin, request.host):
            return _error(403, "cross-origin WebSocket refused")
        slot = _selected(request, view)
        if isinstance(slot, web.Response):
            return slot
        ws = web.WebSocketResponse(timeout=1.0, heartbeat=10.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        connections.add(ws)
        slot.hub.viewer_joined()
        flow = _Flow()
        sender = asyncio.create_task(_send_frames(ws, view, slot, flow))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = _on_message(msg.data, view, flow)
                    if reply is not None:
                        await ws.send_str(json.dumps(reply))
                elif msg.type == WSMsgType.ERROR:
                    break
        except (ConnectionError, RuntimeError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await sender
            slot.hub.viewer_left()
            connections.discard(ws)
        return ws

    app = web.Application(middlewares=[guard], client_max_size=MAX_MESSAGE)
    app[VIEW_KEY] = view
    app[CONNECTIONS_KEY] = connections
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/stream.mjpg", mjpeg)
    app.router.add_get("/api/state", api_state)
    app.router.add_put("/api/prompts", api_prompts)
    app.router.add_get("/ws", websocket)
    return app


def _has_token(request: web.Request, token: bytes) -> bool:
    given = ""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    elif "token" in request.query:
        given = request.query["token"]
    return hmac.compare_digest(given.encode(), token)


def _update_from(body: Any) -> Any:
    if not isinstance(body, dict) or "prompts" not in body:
        raise StreamdetError('send {"prompts": ["a red car", ...], "thresholds": {...}}')
    unknown = set(body) - {"prompts", "thresholds", "type"}
    if unknown:
        raise StreamdetError(f"unknown fields {sorted(unknown)}; use prompts and thresholds")
    return check_update(body["prompts"], body.get("thresholds"))


def _update_record(update: Any) -> dict[str, Any]:
    thresholds = dict(update.thresholds) if update.thresholds is not None else {}
    return {"ok": True, "prompts": list(update.prompts), "thresholds": thresholds}


class _Flow:
    """Acknowledgements of one WebSocket client (only clients that asked for them)."""

    def __init__(self) -> None:
        self.enabled = False
        self.in_flight: set[int] = set()  # frames sent and not acknowledged
        self.changed = asyncio.Event()

    def sent(self, seq: int) -> None:
        if self.enabled:
            self.in_flight.add(seq)

    def ack(self, seq: Any) -> None:
        if isinstance(seq, int) and not isinstance(seq, bool):
            self.in_flight = {s for s in self.in_flight if s > seq}
            self.changed.set()

    def blocked(self) -> bool:
        return self.enabled and len(self.in_flight) >= IN_FLIGHT


def _on_message(text: str, view: LiveView, flow: _Flow) -> dict[str, Any] | None:
    """One client message -> the reply (None: no reply)."""
    try:
        message = json.loads(text)
    except ValueError:
        return {"type": "error", "error": "messages must be JSON"}
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ack":
        flow.ack(message.get("seq"))
        return None
    if kind == "hello":
        flow.enabled = bool(message.get("ack"))
        flow.changed.set()
        return None
    if kind == "prompts":
        try:
            update = _update_from(message)
        except StreamdetError as err:
            return {"type": "error", "error": str(err)}
        view.post_prompts(update)
        return {"type": "prompts", **_update_record(update)}
    return {"type": "error", "error": f"unknown message type {kind!r}"}


async def _send_frames(
    ws: web.WebSocketResponse, view: LiveView, slot: SourceSlot, flow: _Flow
) -> None:
    """``slot``'s newest frames (JSON then JPEG) and a state message (with ``slot``'s
    numbers) every ``STATE_EVERY_S``."""
    loop = asyncio.get_running_loop()
    hub = slot.hub
    seq, next_state = 0, 0.0
    while not ws.closed and not hub.closed:
        now = loop.time()
        if now >= next_state:
            await ws.send_str(json.dumps({"type": "state", **view.state(slot.index)}))
            next_state = now + STATE_EVERY_S
        wait = max(0.01, next_state - loop.time())
        if flow.blocked():
            flow.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(flow.changed.wait(), wait)
            continue
        try:
            frame = await asyncio.wait_for(hub.next_frame(seq), wait)
        except asyncio.TimeoutError:
            continue
        if frame is None:
            break
        seq = frame.seq
        await ws.send_str(frame.text)
        await ws.send_bytes(frame.jpeg)
        flow.sent(frame.seq)
