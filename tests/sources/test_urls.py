"""Stream URLs: recognised, and their credentials masked in any text that carries them."""

from __future__ import annotations

import pytest

from streamdet.sources.urls import SUPPORTED_SCHEMES, is_url, mask_url


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rtsp://user:pass@host/x", "rtsp://***@host/x"),
        ("rtsp://user@host:554/x", "rtsp://***@host:554/x"),
        ("rtsp://admin:p@ss:w0rd@10.0.0.5:554/s", "rtsp://***@10.0.0.5:554/s"),
        ("rtsp://u:pa/ss@host/x", "rtsp://***@host/x"),
        ("rtsp://u:pa?ss@host/x", "rtsp://***@host/x"),
        ("rtsp://host:554/stream", "rtsp://host:554/stream"),
        ("https://h/live.m3u8?token=abc&x=1", "https://h/live.m3u8?token=***&x=1"),
        ("http://h/v?PASSWORD=a&pwd=b&api_key=c&auth=d", "http://h/v?PASSWORD=***&pwd=***&api_key=***&auth=***"),
        ("http://h:8/x?email=a@b.com", "http://h:8/x?email=a@b.com"),
        (
            "error opening 'rtsp://a:b@h/1' then 'rtmp://c:d@h/2'",
            "error opening 'rtsp://***@h/1' then 'rtmp://***@h/2'",
        ),
        ("http://h/?next=rtsp://u:p@cam/x", "http://h/?next=rtsp://***@cam/x"),
        ("no url here, key=1 and user:pass@host", "no url here, key=1 and user:pass@host"),
        (r"C:\videos\clip.mp4", r"C:\videos\clip.mp4"),
    ],
)  # fmt: skip
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_is_url() -> None:
    assert is_url("rtsp://h/x") and is_url("HTTPS://h") and is_url("srt://h:9000")
    assert not is_url("clip.mp4") and not is_url("/a/b.mp4") and not is_url(r"C:\a.mp4")
    assert not is_url("C://a.mp4") and not is_url("0")
    schemes = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
    assert schemes == SUPPORTED_SCHEMES
