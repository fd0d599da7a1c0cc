"""Indexing generated videos with the built-in model and searching them (the Python API)."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest
from conftest import TARGET, Indexed, make_timed

from streamdet import VideoIndex
from streamdet.errors import ConfigError, IndexFolderError, PromptError
from streamdet.search.store import MANIFEST, read_manifest
from streamdet.synth.timeline import Appearance


def _index(folder, cache, **kw) -> VideoIndex:
    return VideoIndex(folder, cache_dir=str(cache), **kw)


def test_the_best_hit_is_inside_the_interval_where_the_prompt_is_visible(indexed_source: Indexed):
    index = _index(indexed_source.index, indexed_source.cache)
    hits = index.search(TARGET.prompt, k=3)
    best = hits[0]
    assert best.file == str(indexed_source.video.resolve())
    assert TARGET.covers(best.time), best
    assert 0.0 <= best.score <= 1.0 and best.score > hits[-1].score
    # the box holds the circle as drawn at that time (or is the whole frame)
    scene = indexed_source.truth.scenes[round(best.time * indexed_source.truth.fps)]
    (circle,) = [o for o in scene.objects if o.kind == "circle" and o.colour == "red"]
    cx, cy = (circle.box[0] + circle.box[2]) / 2, (circle.box[1] + circle.box[3]) / 2
    x1, y1, x2, y2 = best.box
    assert x1 <= cx <= x2 and y1 <= cy <= y2
    assert best.frame_size == (320, 180)


def test_hits_are_different_moments(indexed_source: Indexed):
    index = _index(indexed_source.index, indexed_source.cache)
    hits = index.search(TARGET.prompt, k=10)
    assert len(hits) >= 3
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            assert a.file != b.file or abs(a.time - b.time) >= index.config.collapse
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_every_sampled_frame_gives_the_whole_frame_and_its_windows(indexed_source: Indexed):
    manifest = read_manifest(indexed_source.index)
    assert manifest.model.name == "streamdet/scenes-clip"
    assert dict(manifest.settings) == {"every": 1.0, "cells": 4, "window": 2}
    entry = manifest.files[str(indexed_source.video.resolve())]
    assert entry.frames == 10  # 10 s sampled every second
    # 320x180: cells of 45 px, 4 x 8 cells, windows of 2 cells -> 3 x 7 windows, + whole frame
    assert entry.rows == 10 * (1 + 21)
    rows = _index(indexed_source.index, indexed_source.cache).load()
    assert rows.matrix.shape == (2 * 10 * 22, 64) and rows.matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows.matrix, axis=1), 1.0, atol=2e-3)
    assert rows.whole.sum() == 20 and set(np.unique(rows.times)) == set(range(10))
    whole = rows.boxes[rows.whole]
    assert (whole == [0, 0, 320, 180]).all()


def test_unchanged_files_are_skipped_and_a_changed_one_is_embedded_again(indexed: Indexed):
    index = _index(indexed.index, indexed.cache)
    again = index.add(indexed.videos)
    assert again.indexed == () and len(again.skipped) == 2
    before = read_manifest(indexed.index)
    other = indexed.videos / "other.mp4"
    # the other video now shows the red circle from 1 s to 3 s
    make_timed(other, 3, (Appearance(TARGET.prompt, 1.0, 3.0),))
    report = index.add(indexed.videos)
    assert report.indexed == (str(other.resolve()),)
    assert report.skipped == (str(indexed.video.resolve()),)
    after = read_manifest(indexed.index)
    key = str(other.resolve())
    assert after.files[key].part != before.files[key].part
    assert not (indexed.index / before.files[key].part).exists()  # the old part is gone
    hits = index.search(TARGET.prompt, k=10)
    assert any(h.file == key and 1.0 <= h.time < 3.0 for h in hits)


def test_removed_files_drop_out(indexed: Indexed):
    index = _index(indexed.index, indexed.cache)
    gone = indexed.videos / "other.mp4"
    part = read_manifest(indexed.index).files[str(gone.resolve())].part
    gone.unlink()
    report = index.add(indexed.video)
    assert report.removed == (str(gone.resolve()),) and report.files == 1
    assert list(read_manifest(indexed.index).files) == [str(indexed.video.resolve())]
    assert not (indexed.index / part).exists()
    assert {h.file for h in index.search("a blue star", k=10)} == {str(indexed.video.resolve())}


def test_an_index_of_another_model_is_refused(indexed: Indexed):
    manifest = json.loads((indexed.index / MANIFEST).read_text())
    manifest["model"]["checksum"] = "0" * 64
    (indexed.index / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IndexFolderError, match="holds embeddings of model") as search_error:
        _index(indexed.index, indexed.cache).search(TARGET.prompt)
    with pytest.raises(IndexFolderError, match="holds embeddings of model") as add_error:
        _index(indexed.index, indexed.cache).add(indexed.video)
    for err in (search_error, add_error):
        assert "\n" not in str(err.value)


def test_a_part_of_another_model_is_refused(indexed: Indexed):
    from streamdet.search.store import read_part, write_part

    manifest = read_manifest(indexed.index)
    entry = manifest.files[str(indexed.video.resolve())]
    rows = read_part(indexed.index, entry.part, manifest.model.checksum)
    write_part(indexed.index, entry.part, rows, "f" * 64)
    with pytest.raises(IndexFolderError, match="embedded by another model"):
        _index(indexed.index, indexed.cache).search(TARGET.prompt)


def test_an_interrupted_write_leaves_the_old_index_intact(indexed: Indexed, monkeypatch):
    import pyarrow.parquet as pq

    index = _index(indexed.index, indexed.cache)
    before_manifest = (indexed.index / MANIFEST).read_bytes()
    before_hits = index.search(TARGET.prompt, k=5)
    real_write = pq.write_table

    def write_then_die(table, where, **kw):
        real_write(table.slice(0, 3), where, **kw)  # a part written half way...
        raise KeyboardInterrupt  # ... when the user presses Ctrl-C

    monkeypatch.setattr(pq, "write_table", write_then_die)
    os.utime(indexed.video)  # a newer mtime: the video is embedded again
    with pytest.raises(KeyboardInterrupt):
        index.add(indexed.videos)
    monkeypatch.undo()
    assert (indexed.index / MANIFEST).read_bytes() == before_manifest
    assert not [p for p in indexed.index.iterdir() if p.name.endswith(".tmp")]
    assert _index(indexed.index, indexed.cache).search(TARGET.prompt, k=5) == before_hits


def test_leftovers_of_a_killed_run_are_removed_by_the_next(indexed: Indexed):
    stray = indexed.index / ".abc.parquet.123.tmp"
    orphan = indexed.index / "0123456789abcdef01234567.parquet"
    stray.write_bytes(b"half a file")
    orphan.write_bytes(b"a part no manifest names")
    _index(indexed.index, indexed.cache).add(indexed.videos)
    assert not stray.exists() and not orphan.exists()


def test_other_settings_embed_every_video_again(indexed: Indexed):
    from streamdet.config import IndexConfig

    report = _index(indexed.index, indexed.cache, config=IndexConfig(every=2.0)).add(indexed.videos)
    assert len(report.indexed) == 2 and report.rows == 2 * 5 * 22
    assert read_manifest(indexed.index).settings["every"] == 2.0


def test_a_bad_file_is_reported_and_the_others_indexed(indexed: Indexed, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(indexed.video, folder / "good.mp4")
    (folder / "bad.mp4").write_bytes(b"not a video at all")
    report = _index(tmp_path / "mixed.index", indexed.cache).add(folder)
    assert report.indexed == (str((folder / "good.mp4").resolve()),)
    ((path, reason),) = report.failed
    assert path.endswith("bad.mp4") and "\n" not in reason and "not a readable video" in reason


def test_contact_sheets_show_the_hits(indexed_source: Indexed, tmp_path):
    index = _index(indexed_source.index, indexed_source.cache)
    hits = index.search(TARGET.prompt, k=3)
    png = index.contact_sheet(hits, tmp_path / "hits.png", TARGET.prompt)
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 3 * 320  # three thumbnails in a row
    assert image.std() > 10  # frames, not a blank page
    page = index.contact_sheet(hits, tmp_path / "hits.html", TARGET.prompt).read_text()
    assert page.count("data:image/jpeg;base64,") == 3
    assert page.count("<figcaption>") == 3 and TARGET.prompt in page
    for hit in hits:
        assert f"{hit.file}<br>{hit.time:.2f} s, score {hit.score:.4f}" in page
    with pytest.raises(ConfigError, match=r"must end in \.png"):
        index.contact_sheet(hits, tmp_path / "hits.gif")


def test_bad_queries_are_refused_in_one_line(indexed_source: Indexed, tmp_path):
    index = _index(indexed_source.index, indexed_source.cache)
    with pytest.raises(PromptError, match="empty"):
        index.search("  ")
    with pytest.raises(ConfigError, match="k must be"):
        index.search("a red circle", k=0)
    with pytest.raises(IndexFolderError, match="does not exist"):
        _index(tmp_path / "nothing", indexed_source.cache).search("a red circle")
    with pytest.raises(IndexFolderError, match="not a streamdet index"):
        _index(indexed_source.video, indexed_source.cache).search("a red circle")
    with pytest.raises(ConfigError, match="runtime settings only"):
        VideoIndex(tmp_path, stride=2)
