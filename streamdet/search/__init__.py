"""Search videos by text: ``streamdet index`` embeds sampled frames and windows into a Parquet
index folder; ``streamdet search`` ranks them against a prompt.

``store`` (the folder: Parquet parts and the manifest), ``sample`` (frames every few seconds),
``embed`` (the whole frame and a coarse window grid), ``indexer`` (incremental updates; per-file
``index_file`` for workers), ``query`` (scores and top moments), ``sheet`` (contact sheets) and
``video_index`` (``VideoIndex``, the Python API). pyarrow is the optional ``search`` extra.
"""

from streamdet.search.indexer import IndexProgress, IndexReport, index_file, update_index
from streamdet.search.query import SearchHit
from streamdet.search.video_index import VideoIndex

__all__ = [
    "IndexProgress",
    "IndexReport",
    "SearchHit",
    "VideoIndex",
    "index_file",
    "update_index",
]
