"""The live view's web server: aiohttp on its own asyncio loop in a daemon thread.

The pipeline's threads never touch the loop: frames reach viewers through the ``FrameHub`` and
prompt edits reach the detector through the view's mailbox. ``start`` returns once the port is
bound (or raises a one-line error: port in use, no such address); ``stop`` closes every
connection (the MJPEG streams, the WebSockets with "going away") and the listening socket
within about a second, whatever state the viewers are in, and is safe to call twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from urllib.parse import quote

from aiohttp import WSCloseCode, web

from streamdet.errors import StreamdetError
from streamdet.serve.address import ServeAddress, bind_error
from streamdet.serve.app import CONNECTIONS_KEY, make_app
from streamdet.serve.view import LiveView

#: Seconds a stop waits for connections to close before cancelling their handlers.
CLOSE_TIMEOUT_S = 1.0


class ViewServer:
    """Serves ``view`` on ``address`` from a background thread; a context manager."""

    def __init__(self, view: LiveView, address: ServeAddress) -> None:
        self.view = view
        self.address = address
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="streamdet-serve", daemon=True)
        self._stopped = False

    # ------------------------------------------------------------------ public

    def start(self) -> str:
        """Bind and serve; the view's URL (with ``?token=`` when one is needed)."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join(timeout=2.0)
            raise self._error
        return self.url

    @property
    def url(self) -> str:
        """Where to open the view (a wildcard address shows this machine's name)."""
        host = self.address.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        query = f"?token={quote(self.address.token, safe='')}" if self.address.token else ""
        return f"http://{host}:{self.port}/{query}"

    def stop(self) -> None:
        """Close every connection and the socket; return within a couple of seconds."""
        if self._stopped:
            return
        self._stopped = True
        self.view.close()  # wakes every viewer waiting for a frame: they end
        loop = self._loop
        if loop is not None and self._thread.is_alive() and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout=CLOSE_TIMEOUT_S * 3)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=CLOSE_TIMEOUT_S * 2)

    def __enter__(self) -> ViewServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop's thread

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self.view.bind(asyncio.get_running_loop())
        app = make_app(self.view, self.address)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=CLOSE_TIMEOUT_S
        )
        await runner.setup()
        site = web.TCPSite(runner, self.address.host, self.address.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise bind_error(self.address, err) from None
        except StreamdetError:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else self.address.port

    async def _shutdown(self) -> None:
        runner = self._runner
        if runner is None:
            return
        connections = runner.app[CONNECTIONS_KEY]
        closing = []
        for item in list(connections):
            if isinstance(item, web.WebSocketResponse):
                closing.append(item.close(code=WSCloseCode.GOING_AWAY, message=b"stopping"))
            else:
                item.cancel()  # an MJPEG stream, maybe stuck writing to a stalled viewer
        if closing:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 1.0)
        await runner.cleanup()
