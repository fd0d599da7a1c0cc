"""The live view in a real browser: Debian's chromium driven by Playwright for Python.

Skipped cleanly when Playwright or /usr/bin/chromium is missing (CI installs Debian's
``chromium``; Playwright's own browser download is not used). Screenshots are kept as test
artefacts under ``$STREAMDET_ARTEFACTS`` when set, else under pytest's temporary folder; the
folder is printed. The page's own script exposes ``window.streamdetView`` (frames painted, the
newest labels, capture -> paint latencies), which is what these tests read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import SHADES, live_run, live_runs

pytestmark = [pytest.mark.browser, pytest.mark.network]

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium")
    with sync_api.sync_playwright() as pw:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    folder = os.environ.get("STREAMDET_ARTEFACTS")
    path = Path(folder) / "browser" if folder else tmp_path_factory.mktemp("browser-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots in {path}")
    return path


class Watched:
    """A page with its console errors collected."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1100, "height": 640})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.response = self.page.goto(url)

    def wait(self, expression: str, timeout: float = 5.0):
        """Poll ``expression`` in the page until it is truthy (the page's CSP forbids eval,
        which Playwright's wait_for_function would need)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.page.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def frames(self) -> int:
        return self.page.evaluate("window.streamdetView.frames")

    def canvas(self) -> str:
        return self.page.evaluate("document.getElementById('video').toDataURL()")

    def pixel(self, x: int, y: int) -> list[int]:
        return self.page.evaluate(
            f"Array.from(document.getElementById('video').getContext('2d')"
            f".getImageData({x}, {y}, 1, 1).data)"
        )


def test_the_page_loads_without_console_errors_and_frames_advance(browser, artefacts):
    with live_run() as lr:
        view = Watched(browser, lr.url)
        assert view.response.status == 200
        view.wait("window.streamdetView && window.streamdetView.frames >= 3")
        first, count = view.canvas(), view.frames()
        view.wait(f"window.streamdetView.frames >= {count + 5}")
        assert view.canvas() != first  # the square moved: new pictures were painted
        view.wait("document.querySelector('#stats dd[data-stat=FPS]')")
        assert view.page.locator("#status").inner_text() == "live"
        assert view.page.locator("#source").inner_text().startswith("rtsp://***@10.0.0.7")
        assert "hunter2" not in view.page.content()
        view.page.screenshot(path=str(artefacts / "loaded.png"))
        assert view.errors == []
        view.page.close()


def test_prompts_edited_in_the_page_change_the_labels_within_2_s(browser, artefacts):
    with live_run() as lr:
        view = Watched(browser, lr.url)
        page = view.page
        view.wait("document.querySelectorAll('#prompts li').length == 1")
        t0 = time.monotonic()
        page.fill("#new-prompt", "a red car")
        page.click("#add-prompt")
        view.wait("window.streamdetView.labels.includes('a red car')", timeout=2.0)
        assert time.monotonic() - t0 < 2.0
        view.wait("document.querySelectorAll('#prompts li').length == 2")
        assert page.locator(".detection").all_inner_texts() == ["a thing 0.90", "a red car 0.90"]

        t0 = time.monotonic()
        page.click("button[aria-label='remove a thing']")
        view.wait("window.streamdetView.labels.join() == 'a red car'", timeout=2.0)
        assert time.monotonic() - t0 < 2.0

        page.locator("input[aria-label='threshold of a red car']").fill("0.8")
        view.wait("document.querySelector('#prompts output').textContent == '0.80'")
        deadline = time.monotonic() + 2.0
        while lr.detector.thresholds != {"a red car": 0.8} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lr.detector.thresholds == {"a red car": 0.8}

        page.fill("#new-prompt", "a red car")  # a duplicate: refused with the reason shown
        page.click("#add-prompt")
        view.wait("document.getElementById('prompt-error').textContent.includes('twice')")
        assert lr.detector.prompts == ("a red car",)
        page.screenshot(path=str(artefacts / "edited.png"))
        assert view.errors == []
        page.close()


def test_the_heatmap_toggle_changes_this_page_only(browser, artefacts):
    with live_run() as lr:
        view = Watched(browser, lr.url)
        view.wait("window.streamdetView.frames >= 2")
        grey = view.pixel(150, 90)  # far from the box: the grey field
        assert max(abs(c - 90) for c in grey[:3]) < 12
        view.page.check("#heatmap-toggle")
        count = view.frames()
        view.wait(f"window.streamdetView.frames >= {count + 3}")
        heated = view.pixel(150, 90)  # the hottest cell: tinted red by the colour map
        assert heated[0] - heated[2] > 40
        newest = lr.view.hub.newest
        assert newest is not None and newest.meta["heatmap"]["rows"] == 3
        import cv2
        import numpy as np

        served = cv2.imdecode(np.frombuffer(newest.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert max(abs(int(c) - 90) for c in served[90, 150]) < 12  # the stream is unchanged
        view.page.screenshot(path=str(artefacts / "heatmap.png"))
        assert view.errors == []
        view.page.close()


def test_two_viewers_at_once_and_one_that_leaves(browser, artefacts):
    with live_run() as lr:
        one, two = Watched(browser, lr.url), Watched(browser, lr.url)
        for view in (one, two):
            view.wait("window.streamdetView.frames >= 3")
        assert lr.view.hub.viewers == 2
        one.page.close()  # a viewer disconnects
        deadline = time.monotonic() + 3
        while lr.view.hub.viewers != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lr.view.hub.viewers == 1
        count, offered = two.frames(), lr.view.hub.offered
        two.wait(f"window.streamdetView.frames >= {count + 5}")
        assert lr.view.hub.offered > offered  # the run went on
        two.page.screenshot(path=str(artefacts / "second-viewer.png"))
        assert two.errors == []

        lr.server.stop()  # what Ctrl-C does: every connection closes, the page says so
        two.wait("document.getElementById('status').textContent == 'disconnected'", 2.0)
        two.page.close()


def test_the_token_rules_in_the_browser(browser, artefacts):
    token = "browser-token-1234"
    with live_run(token=token) as lr:
        bare = Watched(browser, lr.base + "/")
        assert bare.response.status == 401
        bare.page.close()
        mjpeg = Watched(browser, lr.base + "/stream.mjpg")
        assert mjpeg.response.status == 401
        mjpeg.page.close()

        view = Watched(browser, lr.url)
        assert view.response.status == 200
        view.wait("window.streamdetView.frames >= 3")  # script, style and socket all got in
        href = view.page.get_attribute("#mjpeg-link", "href")
        assert href == f"/stream.mjpg?token={token}"
        view.page.screenshot(path=str(artefacts / "with-token.png"))
        assert view.errors == []
        view.page.close()


def test_several_sources_show_as_tiles_that_all_advance_and_share_the_prompts(browser, artefacts):
    """``streamdet run CAM1 CAM2 CAM3 --serve``: a tile per camera, each painting its own
    frames; one prompt edit changes the labels in all of them; a click selects and enlarges."""
    with live_runs(3) as lr:
        view = Watched(browser, lr.url)
        page = view.page
        view.wait("document.querySelectorAll('#tiles .tile').length == 3")
        view.wait("window.streamdetView.tiles.every((t) => t.frames >= 3)")
        counts = page.evaluate("window.streamdetView.tiles.map((t) => t.frames)")
        view.wait(f"window.streamdetView.tiles.every((t, k) => t.frames >= {counts}[k] + 5)")
        # each tile paints its own camera: the field's grey level is that source's
        shades = page.evaluate(
            "Array.from(document.querySelectorAll('#tiles canvas')).map((c) => "
            "c.getContext('2d').getImageData(150, 85, 1, 1).data[0])"
        )
        assert [abs(a - b) < 8 for a, b in zip(shades, SHADES, strict=False)] == [True] * 3
        view.wait("document.querySelectorAll('#tiles figcaption .name').length == 3")
        captions = page.locator("#tiles figcaption .name").all_inner_texts()
        assert captions == [f"rtsp://***@10.0.0.{7 + k}/stream" for k in range(3)]
        assert "hunter2" not in page.content()

        t0 = time.monotonic()
        page.fill("#new-prompt", "a red car")
        page.click("#add-prompt")
        view.wait(
            "window.streamdetView.tiles.every((t) => t.labels.includes('a red car'))", timeout=3.0
        )
        assert time.monotonic() - t0 < 3.0
        assert lr.detector.prompts == ("a thing", "a red car")
        view.wait("document.querySelectorAll('#prompts li').length == 2")  # one prompt panel

        page.screenshot(path=str(artefacts / "sources-grid.png"))
        page.click("#tiles .tile[data-source='2']")
        assert "big" in page.get_attribute("#tiles .tile[data-source='2']", "class")
        view.wait("document.getElementById('source').textContent.includes('10.0.0.9')")
        assert page.get_attribute("#mjpeg-link", "href") == "/stream.mjpg?source=2"
        big = page.locator("#tiles .tile[data-source='2']").bounding_box()
        small = page.locator("#tiles .tile[data-source='0']").bounding_box()
        assert big["width"] > 1.5 * small["width"]
        page.screenshot(path=str(artefacts / "sources-enlarged.png"))
        page.click("#tiles .tile[data-source='2']")  # a second click: back to the grid
        assert "big" not in page.get_attribute("#tiles .tile[data-source='2']", "class")
        assert view.errors == []
        page.close()
