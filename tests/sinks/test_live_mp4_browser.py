"""A live MP4 plays in a real browser (Debian's chromium through Playwright): while the sink is
still writing it, and once closed. Skipped without Playwright or chromium."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sink_helpers import H, W, frame

from streamdet.sinks import Mp4Sink

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Loads the video, plays it for a moment and reports what the browser made of it.
PAGE = """<!doctype html><html><body><video id="v" src="{name}" muted playsinline></video><script>
const v = document.getElementById("v");
window.result = null;
v.addEventListener("error", () => {{ window.result = {{error: v.error ? v.error.code : -1}}; }});
v.addEventListener("loadeddata", () => {{
  v.play().catch(() => {{}});
  const done = () => {{ window.result = {{width: v.videoWidth, height: v.videoHeight,
    duration: v.duration, played: v.currentTime,
    frames: v.getVideoPlaybackQuality().totalVideoFrames}}; }};
  v.addEventListener("timeupdate", () => {{ if (v.currentTime > 0.2) done(); }});
  v.addEventListener("ended", done);
}});
</script></body></html>"""


def play(browser: Any, page_path: Path, video: Path) -> dict[str, Any]:
    page_path.write_text(PAGE.format(name=video.name), encoding="utf-8")
    page = browser.new_page()
    try:
        page.goto(page_path.as_uri())
        page.wait_for_function("window.result !== null", timeout=20_000)
        return page.evaluate("window.result")
    finally:
        page.close()


def test_a_live_mp4_plays_in_chromium_mid_run_and_after_close(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    out = tmp_path / "live.mp4"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        try:
            sink = Mp4Sink(out, fps=24, live=True, keyframe_interval=0.5)
            for i in range(48):
                sink.write(frame(i, pts=i / 24))
            during = play(browser, tmp_path / "during.html", out)  # the sink is still open
            sink.close()
            after = play(browser, tmp_path / "after.html", out)
        finally:
            browser.close()
    for result in (during, after):
        assert "error" not in result, result
        assert (result["width"], result["height"]) == (W, H)
        assert result["played"] > 0.2 and result["frames"] > 0
    assert 0.5 <= during["duration"] < 2.0  # the fragments written so far
    assert after["duration"] == pytest.approx(2.0, abs=0.05)  # all 48 frames
