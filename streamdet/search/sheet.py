"""Contact sheets of search hits: each hit's frame with its box drawn and file, time and score.

``.png`` (or ``.jpg``): one image, the hits in a grid, best first, left to right.
``.html``: one self-contained page, each hit a JPEG thumbnail embedded as a data URI with its
caption, so the page can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamdet.errors import ConfigError, StreamdetError
from streamdet.search.query import SearchHit
from streamdet.search.sample import frame_at

SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".html", ".htm")
#: Width of one thumbnail in pixels, and thumbnails per row of a PNG sheet.
THUMB_WIDTH = 320
COLUMNS = 4
_CAPTION_H = 36
_GREEN = (60, 220, 60)


def check_sheet_path(path: str | Path) -> Path:
    """The sheet's path, refused in one line when its suffix names no sheet format."""
    p = Path(path)
    if p.suffix.lower() not in SHEET_SUFFIXES:
        raise ConfigError(f"--sheet '{p}' must end in .png, .jpg or .html")
    return p


def caption(hit: SearchHit) -> str:
    return f"{Path(hit.file).name}  {hit.time:.1f} s  {hit.score:.3f}"


def thumbnail(hit: SearchHit) -> np.ndarray:
    """The hit's frame, box drawn, scaled to ``THUMB_WIDTH`` (a grey tile if unreadable)."""
    w, h = hit.frame_size
    try:
        frame = frame_at(Path(hit.file), hit.time)
    except (StreamdetError, OSError):
        frame = np.full((max(h, 1), max(w, 1), 3), 90, np.uint8)
    scale = THUMB_WIDTH / frame.shape[1]
    size = (THUMB_WIDTH, max(1, round(frame.shape[0] * scale)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = (round(v * scale) for v in hit.box)
    cv2.rectangle(small, (x1, y1), (x2 - 1, y2 - 1), _GREEN, 2)
    return small


def _tile(hit: SearchHit, rank: int, height: int) -> np.ndarray:
    thumb = thumbnail(hit)
    tile = np.full((height + _CAPTION_H, THUMB_WIDTH, 3), 255, np.uint8)
    tile[: thumb.shape[0]] = thumb[:height]
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(tile, f"{rank}. {caption(hit)}", (4, height + 23), font, 0.42, (0, 0, 0), 1,
                cv2.LINE_AA)  # fmt: skip
    return tile


def png_sheet(hits: Sequence[SearchHit]) -> np.ndarray:
    """The hits as one BGR image, ``COLUMNS`` per row."""
    aspects = [h.frame_size[1] / max(h.frame_size[0], 1) for h in hits] or [0.5625]
    height = max(1, round(THUMB_WIDTH * max(aspects)))
    tiles = [_tile(hit, i + 1, height) for i, hit in enumerate(hits)]
    cols = max(1, min(COLUMNS, len(tiles)))
    rows = max(1, math.ceil(len(tiles) / cols))
    blank = np.full((height + _CAPTION_H, THUMB_WIDTH, 3), 255, np.uint8)
    tiles += [blank] * (rows * cols - len(tiles))
    lines = [np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)]
    return np.vstack(lines)


def html_sheet(hits: Sequence[SearchHit], prompt: str) -> str:
    """A self-contained page of the hits (thumbnails embedded as JPEG data URIs)."""
    items = []
    for i, hit in enumerate(hits):
        ok, buf = cv2.imencode(".jpg", thumbnail(hit), [cv2.IMWRITE_JPEG_QUALITY, 85])
        data = base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""
        items.append(
            f'<figure><img src="data:image/jpeg;base64,{data}" alt="hit {i + 1}">'
            f"<figcaption>{i + 1}. {html.escape(hit.file)}<br>{hit.time:.2f} s, "
            f"score {hit.score:.4f}, box {list(hit.box)}</figcaption></figure>"
        )
    title = html.escape(f"streamdet search: {prompt}")
    style = (
        "body{font-family:sans-serif}figure{display:inline-block;margin:6px;width:"
        f"{THUMB_WIDTH}px;vertical-align:top}}figcaption{{font-size:12px;word-break:break-all}}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h1>{title}</h1>\n" + "\n".join(items) + "\n"
        "</body></html>\n"
    )


def write_sheet(hits: Sequence[SearchHit], path: str | Path, prompt: str) -> Path:
    """Write the contact sheet of ``hits`` at ``path`` (format from its suffix)."""
    out = check_sheet_path(path)
    try:
        if out.suffix.lower() in (".html", ".htm"):
            out.write_text(html_sheet(hits, prompt), encoding="utf-8")
            return out
        ok, buf = cv2.imencode(out.suffix.lower(), png_sheet(hits))
        if not ok:
            raise StreamdetError(f"could not encode the contact sheet '{out}'")
        out.write_bytes(buf.tobytes())
    except OSError as err:
        raise StreamdetError(f"cannot write the contact sheet '{out}' ({err.strerror})") from None
    return out
