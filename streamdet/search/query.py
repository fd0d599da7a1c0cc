"""Ranking an index's rows against one prompt: the loaded matrix, the scores, the top moments.

All rows of an index are loaded once into one (N, D) float32 matrix (Parquet holds float16;
numpy multiplies float16 without BLAS, about 30x slower, so the matrix is widened once on
load and kept). A query is then one matrix product of the matrix with the prompt's embedding and
the model's background prompts, a score per row, and a partial sort: no per-row Python.

Scores (``IndexConfig.scoring``):

``calibrated``
    P(prompt | row) against the background prompts, as detection scores windows
    (``streamdet.detect.scoring.prompt_vs_background``): a probability that means the same for
    every prompt, so one threshold or one ranking across queries is meaningful.
``cosine``
    The raw cosine similarity of row and prompt.

Moments: the best rows of a video are its windows and frames around one appearance. Hits of one
file closer in time than ``collapse`` seconds are one moment, and only the best row of a moment is
returned, so the top-k are k different moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamdet.detect.scoring import background_log_odds
from streamdet.search.lists import ListLayout
from streamdet.search.store import FileRows


@dataclass(frozen=True)
class SearchHit:
    """One moment found: the video, the time (s), the score, and the best row's box.

    box: (x1, y1, x2, y2) in the frame's pixels (the whole frame for a whole-frame row);
    frame_size: (width, height); whole: whether the best row was the whole frame.
    """

    file: str
    time: float
    score: float
    box: tuple[int, int, int, int]
    frame_size: tuple[int, int]
    whole: bool

    def to_record(self) -> dict[str, object]:
        """JSON-ready: ``file``, ``time``, ``score``, ``box`` (and ``frame_size``, ``whole``)."""
        return {
            "file": self.file,
            "time": round(self.time, 3),
            "score": round(self.score, 6),
            "box": list(self.box),
            "frame_size": list(self.frame_size),
            "whole": self.whole,
        }


@dataclass(frozen=True)
class IndexMatrix:
    """Every row of an index in memory: the embedding matrix and what each row is."""

    files: tuple[str, ...]
    file_ids: np.ndarray  # (N,) int32 into files
    times: np.ndarray  # (N,) float64
    boxes: np.ndarray  # (N, 4) float32
    sizes: np.ndarray  # (N, 2) int32
    whole: np.ndarray  # (N,) bool
    matrix: np.ndarray  # (N, D) float32
    layout: ListLayout | None = None  # the rows grouped by inverted list (``lists``), or None

    @classmethod
    def from_parts(cls, parts: Sequence[FileRows], dim: int) -> IndexMatrix:
        """Concatenate the parts of an index (in manifest order)."""
        n = sum(len(p) for p in parts)
        matrix = np.empty((n, dim), np.float32)
        at = 0
        for part in parts:
            matrix[at : at + len(part)] = part.embeddings  # widened from float16 here, once
            at += len(part)

        def cat(name: str, empty: np.ndarray) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if arrays else empty

        return cls(
            files=tuple(p.file for p in parts),
            file_ids=np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts]),
            times=cat("times", np.zeros(0)),
            boxes=cat("boxes", np.zeros((0, 4), np.float32)).astype(np.float32, copy=False),
            sizes=cat("sizes", np.zeros((0, 2), np.int32)),
            whole=cat("whole", np.zeros(0, bool)),
            matrix=matrix,
        )

    def __len__(self) -> int:
        return len(self.times)

    def grouped(self, layout: ListLayout) -> IndexMatrix:
        """The same rows reordered so that each inverted list is contiguous (``layout.order``)."""
        o = layout.order
        return IndexMatrix(
            self.files, self.file_ids[o], self.times[o], self.boxes[o], self.sizes[o],
            self.whole[o], np.ascontiguousarray(self.matrix[o]), layout,
        )  # fmt: skip


def score_rows(
    matrix: np.ndarray,
    prompt: np.ndarray,
    background: np.ndarray,
    logit_scale: float,
    scoring: str,
) -> np.ndarray:
    """(N,) ranking keys of every row for one prompt embedding (D,): the cosine, or for
    ``calibrated`` the log-odds of prompt against background (``probability`` turns the kept
    ones into the calibrated probability; the sigmoid keeps the order)."""
    if scoring == "cosine":
        return matrix @ prompt.astype(np.float32)
    if len(background) == 0:  # as the detector: the sigmoid of the prompt's logit
        return matrix @ (logit_scale * prompt.astype(np.float32))
    texts = np.concatenate([prompt[None], background]).astype(np.float32)
    # (1 + B, N): one product for the prompt and its background; texts first, so that each
    # text's logits are one contiguous row and the logsumexp runs along rows (several times
    # faster than along the short axis of (N, 1 + B))
    logits = (logit_scale * texts) @ matrix.T
    return background_log_odds(logits[:1].T, logits[1:].T)[:, 0]


def probability(keys: np.ndarray, scoring: str) -> np.ndarray:
    """The score reported for ranking keys: P(prompt | row) against the background for
    ``calibrated`` (``streamdet.detect.scoring.prompt_vs_background``), else the cosine."""
    if scoring == "cosine":
        return keys
    return 1.0 / (1.0 + np.exp(-np.clip(keys, -80.0, 80.0)))


def top_moments(
    scores: np.ndarray,
    file_ids: np.ndarray,
    times: np.ndarray,
    k: int,
    collapse: float,
) -> list[int]:
    """Row indices of the best ``k`` moments, best first: a row is dropped when a better row of
    the same file lies within ``collapse`` seconds of it."""
    n = len(scores)
    pool = min(n, max(64 * k, 1024))
    while True:
        candidates = np.argpartition(-scores, pool - 1)[:pool] if pool < n else np.arange(n)
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        kept: list[int] = []
        seen: dict[int, list[float]] = {}
        for row in order.tolist():
            f, t = int(file_ids[row]), float(times[row])
            near = seen.setdefault(f, [])
            if any(abs(t - u) < collapse for u in near):
                continue
            near.append(t)
            kept.append(row)
            if len(kept) == k:
                return kept
        if pool >= n:
            return kept
        pool = min(n, pool * 4)  # too many rows of the same moments: look deeper


def rank(
    rows: IndexMatrix,
    prompt: np.ndarray,
    background: np.ndarray,
    logit_scale: float,
    scoring: str,
    k: int,
    collapse: float,
    probe: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the best ``k`` moments (best first) and their ranking keys.

    With inverted lists (``rows.layout``) and ``probe`` < 1, the rows of the lists whose centres
    score best are scored, at least ``probe`` of the index's rows, and deeper when they hold
    fewer than ``k`` moments; otherwise every row is scored.
    """
    n = len(rows)
    layout = rows.layout
    if layout is None or probe >= 1.0:
        keys = score_rows(rows.matrix, prompt, background, logit_scale, scoring)
        best = np.asarray(top_moments(keys, rows.file_ids, rows.times, k, collapse), np.int64)
        return best, keys[best]
    centre_keys = score_rows(layout.centres, prompt, background, logit_scale, scoring)
    want = max(int(probe * n), 1)
    while True:
        ranges = layout.probe(centre_keys, want)
        index = np.concatenate([np.arange(a, b) for a, b in ranges])
        keys = np.concatenate(
            [
                score_rows(rows.matrix[a:b], prompt, background, logit_scale, scoring)
                for a, b in ranges
            ]
        )
        found = top_moments(keys, rows.file_ids[index], rows.times[index], k, collapse)
        if len(found) >= k or len(index) >= n:
            chosen = np.asarray(found, np.int64)
            return index[chosen], keys[chosen]
        want *= 4  # the probed lists hold fewer than k moments: look wider
