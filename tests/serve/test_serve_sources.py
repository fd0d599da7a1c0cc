"""The live view of several sources at once (``streamdet run SRC1 SRC2 ...``): ``/api/state``
lists every source, ``?source=K`` picks one on the MJPEG stream, the WebSocket and the state,
each source's frames advance on their own, a prompt edit reaches every source, and a bad index
is a one-line 400 or 404 (behind the token like everything else)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import cv2
import numpy as np
import pytest
from serve_helpers import SHADES, LabelDetector, MovingSource, camera_name, live_runs, wait_for

from streamdet.serve import LiveView

pytestmark = pytest.mark.network


def _get(url: str) -> tuple[int, bytes]:
    async def go():
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            return r.status, await r.read()

    return asyncio.run(go())


def _state(base: str, suffix: str = "") -> dict:
    status, body = _get(base + "/api/state" + suffix)
    assert status == 200, body
    return json.loads(body)


def _wait_for(check, timeout: float = 5.0):
    return wait_for(check, timeout)


async def _first_jpeg(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        assert r.status == 200
        reader = r.content
        assert (await reader.readline()).strip() == b"--frame"
        length = 0
        while (line := (await reader.readline()).strip()) != b"":
            key, _, value = line.decode().partition(":")
            if key.lower() == "content-length":
                length = int(value)
        return await reader.readexactly(length)


async def _ws_frames(url: str, n: int) -> list[dict]:
    """The JSON of the next ``n`` frames of a WebSocket (each followed by its JPEG)."""
    out: list[dict] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while len(out) < n:
            msg = await ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.TEXT and (data := msg.json())["type"] == "frame":
                out.append(data)
    return out


def test_the_state_lists_every_source_masked_with_its_own_numbers():
    with live_runs(3) as lr:

        def ready() -> dict | None:
            state = _state(lr.base)
            return state if all(s["frames_processed"] >= 3 for s in state["sources"]) else None

        state = _wait_for(ready)
        sources = state["sources"]
        assert [s["index"] for s in sources] == [0, 1, 2]
        assert [s["name"] for s in sources] == [
            f"rtsp://***@10.0.0.{7 + k}/stream" for k in range(3)
        ]
        for s in sources:
            assert s["live"] and s["running"] and s["fps"] > 0 and s["latency_ms"] is not None
            assert s["frames_dropped"] >= 0
        # the top-level numbers are the selected source's: the first unless ?source=K
        assert state["source"] == sources[0]["name"] and state["selected"] == 0
        second = _state(lr.base, "?source=2")
        assert second["source"] == "rtsp://***@10.0.0.9/stream" and second["selected"] == 2
        assert second["prompts"] == state["prompts"] == ["a thing"]  # shared by every source
        assert "encode" in second["stages_ms"]
        assert "hunter2" not in json.dumps(state) + json.dumps(second)


def test_each_source_has_its_own_stream_and_socket():
    with live_runs(3) as lr:
        for k in range(3):
            jpeg = asyncio.run(_first_jpeg(f"{lr.base}/stream.mjpg?source={k}"))
            picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            corner = picture[80:90, 140:150].astype(int)  # far from the box and the square
            assert abs(corner.mean() - SHADES[k]) < 6, (k, corner.mean())
        metas = asyncio.run(_ws_frames(lr.base + "/ws?source=1", 4))
        assert {m["source"] for m in metas} == {1}
        indexes = [m["index"] for m in metas]
        assert indexes == sorted(indexes) and indexes[0] < indexes[-1]
        assert [m["source"] for m in asyncio.run(_ws_frames(lr.base + "/ws", 2))] == [0, 0]


def test_a_stalled_source_stops_only_its_own_frames():
    with live_runs(2, stall_after={1: 4}) as lr:

        def stalled() -> dict | None:  # its 4 frames processed (or dropped, on a slow machine)
            state = _state(lr.base, "?source=1")
            return state if state["frames_processed"] + state["frames_dropped"] == 4 else None

        stalled_at = _wait_for(stalled)["frames_processed"]
        before = _state(lr.base)["frames_processed"]
        metas = asyncio.run(_ws_frames(lr.base + "/ws?source=0", 6))
        assert metas[-1]["index"] > metas[0]["index"]  # the first camera goes on
        # the counts reach the view at most 4 times a second: wait for the next one
        after = _wait_for(
            lambda: (st := _state(lr.base)["sources"])[0]["frames_processed"] > before and st
        )
        assert 1 <= after[1]["frames_processed"] == stalled_at <= 4


def test_a_prompt_edit_reaches_the_labels_of_every_source():
    with live_runs(2) as lr:

        async def go():
            async with aiohttp.ClientSession() as session:
                body = {"prompts": ["a thing", "a red car"]}
                async with session.put(lr.base + "/api/prompts", json=body) as r:
                    assert r.status == 200
            found = []
            for k in range(2):
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    (meta,) = await _ws_frames(f"{lr.base}/ws?source={k}", 1)
                    if meta["prompts"] == ["a thing", "a red car"]:
                        found.append([d["label"] for d in meta["detections"]])
                        break
            return found

        assert asyncio.run(go()) == [["a thing", "a red car"]] * 2


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("?source=abc", 400, "source's index"),
        ("?source=-1", 400, "source's index"),
        ("?source=1.0", 400, "source's index"),
        ("?source=99999999999", 400, "source's index"),
        ("?source=2", 404, "no source 2: this view has 2 (0..1)"),
    ],
)
def test_a_bad_source_is_one_line_on_every_endpoint(query, status, words):
    with live_runs(2) as lr:

        async def go():
            out = {}
            async with aiohttp.ClientSession() as session:
                for path in ("/api/state", "/stream.mjpg", "/ws"):
                    async with session.get(lr.base + path + query) as r:
                        out[path] = (r.status, await r.json(content_type=None))
            return out

        for path, (got, body) in asyncio.run(go()).items():
            assert got == status, path
            assert words in body["error"] and "\n" not in body["error"], body
        assert all(slot.hub.viewers == 0 for slot in lr.view.sources)


def test_the_source_selector_needs_the_token_too():
    token = "sources-token-123"
    with live_runs(2, token=token) as lr:
        assert _get(f"{lr.base}/api/state?source=1")[0] == 401
        assert _get(f"{lr.base}/api/state?source=9")[0] == 401  # no hint without the token
        status, body = _get(f"{lr.base}/api/state?source=1&token={token}")
        assert status == 200 and json.loads(body)["selected"] == 1


def test_runs_one_after_another_share_the_first_slot_and_runs_at_once_get_their_own():
    view = LiveView(LabelDetector())
    try:
        first = view.start_run("a.mp4", False)
        hub = view.hub
        view.end_run()
        second = view.start_run(camera_name(0), True)
        assert (first.index, second.index) == (0, 0) and view.hub is hub  # viewers stay
        assert [s.name for s in view.sources] == ["rtsp://***@10.0.0.7/stream"]
        together = [second] + [view.start_run(camera_name(k), True) for k in (1, 2)]
        assert [s.index for s in together] == [0, 1, 2] and len(view.sources) == 3
        assert len({id(s.hub) for s in view.sources}) == 3
        view.end_run(together[1])
        assert [s.running for s in view.sources] == [True, False, True]
        for sink in together:
            view.end_run(sink)
        again = view.start_run("b.mp4", False)
        assert again.index == 0 and [s.name for s in view.sources] == ["b.mp4"]
        assert view.slot(1) is None and view.state(5)["selected"] == 0
        # each run's numbers go to its own source
        assert view.clock is again.clock
        view.progress(
            type(
                "P",
                (),
                {"fps": 3.0, "processed": 7, "expected": 9, "dropped": 0, "latency_ms": 12.0},
            )()
        )
        assert view.state()["frames_processed"] == 7 and view.state()["fps"] == 3.0
    finally:
        view.close()


def test_a_single_source_view_lists_itself():
    """One camera (``streamdet run URL --serve``): ``sources`` holds just it, as source 0."""
    view = LiveView(LabelDetector())
    try:
        view.start_run(MovingSource().name, True)
        state = view.state()
        assert [s["index"] for s in state["sources"]] == [0] and state["selected"] == 0
        assert state["sources"][0]["name"] == state["source"] == "rtsp://***@10.0.0.7/stream"
    finally:
        view.close()
