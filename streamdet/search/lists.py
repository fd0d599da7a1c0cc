"""The index's inverted lists: a derived vector index that makes a query over millions of rows
score a few per cent of them (an IVF: inverted file of k-means clusters, as FAISS's IVF-Flat).

Why: a query over 100,000 frames with their windows (2.2 million rows of 64 floats, 563 MB in
memory) is one memory-bound pass over the whole matrix, 106-212 ms on two cores. Clustered, a
query ranks the cluster centres with the exact score (``query.score_rows``: calibrated or
cosine), scores the rows of the best clusters until ``IndexConfig.probe`` of the rows are scored,
and keeps the exact scores of those rows; the best moments of a query lie in the clusters whose
centres score best (docs/benchmarks.md measures recall@10 against scoring every row).

Why our own and not ``faiss-cpu``: the rows must be re-scored with the calibrated score anyway
(FAISS ranks by inner product), the lists are a few dozen lines of numpy, and the index stays
one optional extra (pyarrow) lighter. Centres are trained by spherical k-means on a sample.

Stored as ``lists.npz`` in the index folder, beside the Parquet parts (the source of truth):
the centres, the row count they were trained on, and per part its rows' list numbers. It is
derived: rebuilt when missing, damaged, of another model or dimension, or when the index has
grown to more than ``RETRAIN_GROWTH`` times the rows the centres were trained on; a new part
only has its rows assigned to the nearest centre (milliseconds); parts gone are dropped.
Indexes under ``MIN_ROWS`` rows have no lists: scoring every row takes under 10 ms there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("streamdet.search")

LISTS_FILE = "lists.npz"
#: Below this many rows an index is searched by scoring every row (100,000 rows: ~8 ms).
MIN_ROWS = 250_000
#: Centres are retrained when the index holds more than this many times their training rows.
RETRAIN_GROWTH = 4.0
#: Rows of the k-means sample per list (and k-means iterations).
SAMPLE_PER_LIST = 48
SEED_PER_LIST = 8
ITERATIONS = 8
_CHUNK = 32_768


def list_count(rows: int) -> int:
    """Lists for an index of ``rows`` rows: about the square root, between 16 and 4096."""
    return int(min(4096, max(16, round(math.sqrt(rows)))))


def assign(matrix: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N,) int32: each row's nearest centre by inner product (rows and centres unit length)."""
    out = np.empty(len(matrix), np.int32)
    for at in range(0, len(matrix), _CHUNK):
        out[at : at + _CHUNK] = np.argmax(matrix[at : at + _CHUNK] @ centres.T, axis=1)
    return out


def train(matrix: np.ndarray, lists: int, *, seed: int = 0) -> np.ndarray:
    """(lists, D) float32 unit centres by spherical k-means on a sample of ``matrix``'s rows."""
    rng = np.random.default_rng(seed)
    n = len(matrix)
    sample = matrix[np.sort(rng.choice(n, min(n, lists * SAMPLE_PER_LIST), replace=False))]
    sample = np.ascontiguousarray(sample, np.float32)
    centres = _seeds(sample, lists, rng)
    for _ in range(ITERATIONS):
        labels = assign(sample, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, sample)
        counts = np.bincount(labels, minlength=lists)
        empty = counts == 0
        sums[empty] = sample[rng.choice(len(sample), int(empty.sum()), replace=False)]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centres = sums / np.maximum(norms, 1e-12)
    return centres.astype(np.float32)


def _seeds(sample: np.ndarray, lists: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (in rounds of ``lists // 32`` centres, so that a few dozen matrix
    products pick them all) on up to ``SEED_PER_LIST`` rows a list of the (random) sample: the
    next centres are drawn with probability growing with their squared distance to the nearest
    centre so far (random seeds split one cluster and merge two)."""
    pool = sample[: lists * SEED_PER_LIST]
    batch = max(1, lists // 32)
    chosen = [int(rng.integers(len(pool)))]
    nearest = 2.0 - 2.0 * (pool @ pool[chosen[0]])  # squared distance of unit vectors
    while len(chosen) < lists:
        take = min(batch, lists - len(chosen))
        cumulative = np.cumsum(np.maximum(nearest, 0.0))
        if cumulative[-1] > 0:
            picks = np.searchsorted(cumulative, rng.random(take) * cumulative[-1], side="right")
            picks = np.minimum(picks, len(pool) - 1)
        else:
            picks = rng.integers(len(pool), size=take)
        chosen.extend(int(p) for p in picks)
        closest = 2.0 - 2.0 * (pool @ pool[picks].T).max(axis=1)
        np.minimum(nearest, closest, out=nearest)
    return pool[chosen].copy()


@dataclass(frozen=True)
class Lists:
    """Centres, and per part (by its Parquet name) its rows' list numbers, in row order."""

    centres: np.ndarray  # (C, D) float32
    trained_rows: int
    checksum: str
    parts: Mapping[str, np.ndarray]

    def save(self, folder: Path) -> None:
        """Write ``lists.npz`` (best effort: a read-only index is searched with lists in memory)."""
        names = list(self.parts)
        tmp = folder / f".{LISTS_FILE}.tmp"
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    centres=self.centres,
                    trained_rows=np.int64(self.trained_rows),
                    checksum=np.str_(self.checksum),
                    names=np.array(names, dtype=np.str_),
                    lengths=np.array([len(self.parts[p]) for p in names], np.int64),
                    labels=np.concatenate([self.parts[p] for p in names])
                    if names
                    else np.zeros(0, np.int32),
                )
            tmp.replace(folder / LISTS_FILE)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            log.info("index lists not saved in %s (%s); they are rebuilt next time", folder, err)

    @classmethod
    def read(cls, folder: Path) -> Lists | None:
        """The stored lists, or None when there are none or they cannot be read."""
        path = folder / LISTS_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(n) for n in data["names"]]
                ends = np.cumsum(data["lengths"])
                labels = np.split(data["labels"].astype(np.int32), ends[:-1]) if names else []
                return cls(
                    centres=data["centres"].astype(np.float32),
                    trained_rows=int(data["trained_rows"]),
                    checksum=str(data["checksum"]),
                    parts=dict(zip(names, labels, strict=True)),
                )
        except (OSError, ValueError, KeyError) as err:
            log.info("index lists in %s unreadable (%s); rebuilding them", folder, err)
            return None


def up_to_date(folder: Path, parts: Mapping[str, int], checksum: str) -> bool:
    """Whether the stored lists serve the index of these parts (name: rows) as they are: true
    for an index under ``MIN_ROWS`` rows (it has none)."""
    total = sum(parts.values())
    if total < MIN_ROWS:
        return True
    stored = Lists.read(folder)
    return (
        stored is not None
        and stored.checksum == checksum
        and total <= RETRAIN_GROWTH * stored.trained_rows
        and {p: len(v) for p, v in stored.parts.items()} == dict(parts)
    )


def current_lists(
    folder: Path,
    parts: Sequence[str],
    lengths: Sequence[int],
    matrix: np.ndarray,
    checksum: str,
) -> Lists | None:
    """The lists of the index whose parts (in manifest order, of ``lengths`` rows, together
    ``matrix``) are given: the stored ones brought up to date, trained when missing or stale,
    and saved when anything changed. None for an index under ``MIN_ROWS`` rows."""
    total = len(matrix)
    if total < MIN_ROWS:
        return None
    stored = Lists.read(folder)
    fresh = (
        stored is not None
        and stored.checksum == checksum
        and stored.centres.shape[1] == matrix.shape[1]
        and total <= RETRAIN_GROWTH * stored.trained_rows
    )
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if not fresh:
        count = list_count(total)
        log.info("training %d index lists over %d rows", count, total)
        centres = train(matrix, count)
        labels = assign(matrix, centres)
        lists = Lists(
            centres,
            total,
            checksum,
            {p: labels[starts[i] : starts[i + 1]] for i, p in enumerate(parts)},
        )
        lists.save(folder)
        return lists
    assert stored is not None
    changed = set(stored.parts) != set(parts)
    labels_of: dict[str, np.ndarray] = {}
    for i, name in enumerate(parts):
        have = stored.parts.get(name)
        if have is None or len(have) != lengths[i]:
            have = assign(matrix[starts[i] : starts[i + 1]], stored.centres)
            changed = True
        labels_of[name] = have
    lists = Lists(stored.centres, stored.trained_rows, checksum, labels_of)
    if changed:
        lists.save(folder)
    return lists


@dataclass(frozen=True)
class ListLayout:
    """Rows grouped by list: ``order`` is the permutation that makes each list contiguous, list
    ``c`` is rows ``offsets[c]:offsets[c + 1]`` of the permuted matrix."""

    centres: np.ndarray  # (C, D)
    offsets: np.ndarray  # (C + 1,) int64
    order: np.ndarray  # (N,) int64

    @classmethod
    def of(cls, lists: Lists, parts: Sequence[str]) -> ListLayout:
        labels = np.concatenate([lists.parts[p] for p in parts])
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=len(lists.centres))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(lists.centres, offsets, order)

    def probe(self, centre_keys: np.ndarray, rows: int) -> list[tuple[int, int]]:
        """Row ranges of the best-scoring lists (best first), together at least ``rows`` rows
        (every list when ``rows`` reaches the index's size)."""
        ranges: list[tuple[int, int]] = []
        total = 0
        for c in np.argsort(-centre_keys, kind="stable").tolist():
            a, b = int(self.offsets[c]), int(self.offsets[c + 1])
            if b > a:
                ranges.append((a, b))
                total += b - a
            if total >= rows:
                break
        return ranges
