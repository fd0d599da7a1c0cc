"""The live view's access rules: the token on every endpoint (the WebSocket included), the
loopback host rule against DNS rebinding, and the WebSocket's Origin check."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from serve_helpers import live_run

pytestmark = pytest.mark.network

TOKEN = "t0ken-for-tests_123"
ENDPOINTS = [
    ("GET", "/"),
    ("GET", "/static/app.js"),
    ("GET", "/static/style.css"),
    ("GET", "/stream.mjpg"),
    ("GET", "/api/state"),
    ("PUT", "/api/prompts"),
    ("GET", "/ws"),
    ("GET", "/no-such-page"),
]


async def _status(method: str, url: str, headers: dict | None = None) -> int:
    """The status of a request; for streams only the head is read."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    body = '{"prompts": ["a cat"]}' if method == "PUT" else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, data=body) as r,
    ):
        return r.status


def _statuses(base: str, suffix: str = "", headers: dict | None = None) -> dict[str, int]:
    async def go():
        return {
            path: await _status(method, base + path + suffix, headers) for method, path in ENDPOINTS
        }

    return asyncio.run(go())


def test_with_a_token_every_endpoint_answers_401_without_it():
    with live_run(token=TOKEN) as lr:
        assert lr.url.endswith(f"/?token={TOKEN}")
        assert set(_statuses(lr.base).values()) == {401}
        assert set(_statuses(lr.base, "?token=wrong-token-xyz").values()) == {401}
        assert set(_statuses(lr.base, headers={"Authorization": "Bearer nope"}).values()) == {401}
        assert set(_statuses(lr.base, headers={"Authorization": f"Basic {TOKEN}"}).values()) == {
            401
        }
        assert lr.view.mailbox.poll() is None  # the refused PUTs changed nothing


def test_the_token_opens_every_endpoint_as_bearer_or_query():
    with live_run(token=TOKEN) as lr:
        for kwargs in (
            {"suffix": f"?token={TOKEN}"},
            {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        ):
            found = _statuses(lr.base, **kwargs)
            assert found.pop("/no-such-page") == 404
            assert found.pop("/ws") == 400  # a plain GET of the WebSocket: past the token check
            assert set(found.values()) == {200}, found


def test_the_page_carries_the_token_to_its_own_files_and_the_socket_needs_it():
    with live_run(token=TOKEN) as lr:

        async def go():
            async with aiohttp.ClientSession() as session:
                async with session.get(lr.url) as r:
                    page = await r.text()
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(lr.base + "/ws")
                ws = await session.ws_connect(f"{lr.base}/ws?token={TOKEN}")
                kinds = set()
                while "frame" not in kinds:
                    msg = await ws.receive(timeout=5)
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        kinds.add(msg.json()["type"])
                await ws.close()
                return page, refused.value.status

        page, status = asyncio.run(go())
        assert f'src="/static/app.js?token={TOKEN}"' in page and status == 401


def test_a_non_loopback_address_gets_a_generated_token():
    with live_run("0.0.0.0:0") as lr:
        token = lr.server.address.token
        assert token and lr.server.address.generated and f"?token={token}" in lr.url
        port = lr.server.port
        local = f"http://127.0.0.1:{port}"
        assert _statuses(local)["/api/state"] == 401
        assert _statuses(local, f"?token={token}")["/api/state"] == 200


def test_a_loopback_view_refuses_other_host_names():
    """A page on evil.example whose name resolves to 127.0.0.1 (DNS rebinding) sends
    ``Host: evil.example``: refused, so it cannot read the camera through the user's browser."""
    with live_run() as lr:
        port = lr.server.port
        assert _statuses(lr.base, headers={"Host": f"evil.example:{port}"})["/api/state"] == 403
        assert _statuses(lr.base, headers={"Host": f"localhost:{port}"})["/api/state"] == 200


def test_the_websocket_checks_its_origin():
    with live_run() as lr:
        port = lr.server.port

        async def connect(origin: str | None) -> int:
            headers = {"Origin": origin} if origin else {}
            async with aiohttp.ClientSession() as session:
                try:
                    ws = await session.ws_connect(lr.base + "/ws", headers=headers)
                except aiohttp.WSServerHandshakeError as err:
                    return err.status
                await ws.close()
                return 101

        assert asyncio.run(connect("http://evil.example")) == 403
        assert asyncio.run(connect(f"http://evil.example:{port}")) == 403
        assert asyncio.run(connect(f"http://127.0.0.1:{port}")) == 101
        assert asyncio.run(connect(None)) == 101  # not a browser: no Origin
