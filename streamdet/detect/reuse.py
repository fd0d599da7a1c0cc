"""Temporal reuse: compute only the windows whose pixels changed since their embeddings were made.

Most cameras do not move, and most of a still camera's picture does not change from one frame to
the next, yet every window of every frame goes through the image tower. A window's embedding
depends on nothing but its pixels, so a window whose pixels are (within a tolerance) those its
embedding was computed from can keep that embedding. This module decides which windows those are
and keeps the embeddings (and patch tokens) between frames; the detector then scores all windows
as before, so heatmaps, boxes and verification are unchanged in kind.

The signature of a window is a small picture of its pixels, cut from one small picture of the
whole frame made once per frame (``_Signer``):

* tolerance above 0: the frame's mean colour over blocks of a quarter cell on a side (one area
  resize); a window keeps its embedding while no block of it has moved by more than the
  tolerance x 255 in any colour channel. The block means average sensor noise and compression
  flicker away while a small object entering the window still changes the blocks it covers.
* tolerance 0 (exact): per cell, a count of the frames in which any pixel of the cell changed
  (the frame is compared with the previous one exactly); a window keeps its embedding only
  while none of its cells changed at all, so its outputs are those of computing every window.

A window's signature is compared with the one stored when the window was LAST COMPUTED, not with
the previous frame's, so a slow drift (light fading, a car creeping) adds up until it is
recomputed. No embedding is kept more than ``refresh`` frames. When the change since the
previous frame is spread over more than the fraction ``motion`` of the frame's cells (a moving
camera, a cut, a flash) every window is computed: reuse cannot win much then and the frame is
safest computed whole.
A new frame size starts afresh; ``reset`` forgets everything (a new stream). Embeddings do not
depend on the prompts, so prompt changes keep the cache.

Verification crops around boxes reuse the same way (``plan_views``): a box found again at the
very same place, whose crops' pixels did not change, keeps its crops' embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamdet.config import ReuseConfig
from streamdet.detect.verify import VIEW_MARGINS
from streamdet.detect.windows import WindowGrid, pad_to

#: Signature blocks per cell side (at 32-pixel cells, a block is 8 x 8 pixels).
BLOCKS_PER_CELL = 4


@dataclass(frozen=True)
class ReusePlan:
    """Which windows (or verification boxes) of this frame go through the image tower.

    compute: ascending indices of the windows (boxes) to compute; the others are reused.
    total: how many windows (boxes) the frame has.
    reason: why: "first" (nothing kept yet), "motion" (the picture changed too much), "changed"
    (only windows that changed or grew too old).
    """

    compute: np.ndarray
    total: int
    reason: str

    @property
    def reused(self) -> int:
        return self.total - len(self.compute)


class _Signer:
    """The per-frame signature picture and how two signatures are compared.

    The picture covers the frame's cells plus ``margin`` cells of padding on every side (for
    windows that hang over the frame edges; padding never changes). Its layout is
    (rows, cols, channels) with ``blocks`` rows and columns per cell.
    """

    def __init__(self, grid: WindowGrid, tolerance: float, fill: tuple[float, float, float]):
        self.grid = grid
        self.exact = tolerance == 0
        self.blocks = 1 if self.exact else BLOCKS_PER_CELL
        self.limit = float(tolerance) * 255.0
        self.margin = int(grid.windows[:, 2].max())
        self.fill = fill
        self._previous_frame: np.ndarray | None = None
        self._versions = np.zeros((grid.rows, grid.cols), np.int64)

    def picture(self, frame: np.ndarray) -> np.ndarray:
        """The padded signature picture of one frame."""
        g, m, b = self.grid, self.margin, self.blocks
        padded = pad_to(frame, g.rows * g.patch, g.cols * g.patch, self.fill)
        if self.exact:
            if self._previous_frame is not None:
                diff = padded != self._previous_frame  # (H, W, 3)
                cells = diff.reshape(g.rows, g.patch, g.cols, g.patch, 3).any(axis=(1, 3, 4))
                self._versions += cells
            self._previous_frame = padded.copy()
            inner = self._versions[:, :, None].copy()
            value: tuple[float, ...] = (0,)
        else:
            small = cv2.resize(padded, (g.cols * b, g.rows * b), interpolation=cv2.INTER_AREA)
            inner = small.astype(np.float32)
            value = self.fill
        shape = (inner.shape[0] + 2 * m * b, inner.shape[1] + 2 * m * b, inner.shape[2])
        out = np.empty(shape, inner.dtype)
        out[:] = np.asarray(value, inner.dtype)
        out[m * b : m * b + inner.shape[0], m * b : m * b + inner.shape[1]] = inner
        return out

    def differs(self, now: np.ndarray, then: np.ndarray) -> np.ndarray:
        """Elementwise: whether a signature element changed beyond the tolerance, reduced over
        the last (channel) axis."""
        if self.exact:
            return (now != then).any(axis=-1)
        return (np.abs(now - then) > self.limit).any(axis=-1)

    def motion(self, now: np.ndarray, then: np.ndarray) -> float:
        """The fraction of the frame's cells (padding left out) in which some block changed
        beyond the tolerance between two pictures: how widely the change is spread. Objects
        moving before a still camera change a few places; a moving camera changes most."""
        m, b, g = self.margin * self.blocks, self.blocks, self.grid
        inner = (slice(m, now.shape[0] - m), slice(m, now.shape[1] - m))
        changed = self.differs(now[inner], then[inner])  # (rows * b, cols * b)
        return float(changed.reshape(g.rows, b, g.cols, b).any(axis=(1, 3)).mean())

    def windows(self, picture: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """(n, side, side, channels) signatures of windows of one size (rows of grid.windows)."""
        b, m = self.blocks, self.margin
        side = int(windows[0, 2]) * b
        views = np.lib.stride_tricks.sliding_window_view(picture, (side, side), axis=(0, 1))
        ys = (windows[:, 0] + m) * b
        xs = (windows[:, 1] + m) * b
        return np.moveaxis(views[ys, xs], 1, -1)  # (n, side, side, C)

    def region(self, picture: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """The signature of a pixel rectangle (every block it touches, inside the picture)."""
        scale = self.blocks / self.grid.patch
        off = self.margin * self.blocks
        top = int(np.clip(np.floor(y0 * scale) + off, 0, picture.shape[0]))
        left = int(np.clip(np.floor(x0 * scale) + off, 0, picture.shape[1]))
        bottom = int(np.clip(np.ceil(y1 * scale) + off, top, picture.shape[0]))
        right = int(np.clip(np.ceil(x1 * scale) + off, left, picture.shape[1]))
        return picture[top:bottom, left:right].copy()


@dataclass
class _Views:
    """The kept verification crops of one box: their embeddings, signature and frame."""

    embeddings: np.ndarray  # (views, D)
    signature: np.ndarray
    frame: int


class WindowReuse:
    """Window embeddings kept between frames of one stream (see the module docstring).

    Per frame: ``plan`` (which windows to compute), the caller computes them, ``merge`` (all
    windows' embeddings, the new ones stored). The same for verification boxes with
    ``plan_views`` and ``merge_views``, after ``merge``.
    """

    def __init__(
        self,
        config: ReuseConfig,
        fill: tuple[float, float, float],
        margins: tuple[float, ...] = VIEW_MARGINS,
    ) -> None:
        if not config.enabled:
            raise ValueError("WindowReuse needs reuse enabled (a tolerance, not False)")
        self.config = config
        self.fill = fill
        self.margins = margins  # the verification crops' (``verify_margins``)
        self.reset()

    def reset(self) -> None:
        """Forget every kept embedding (a new stream; a new frame size does this itself)."""
        self._grid: WindowGrid | None = None
        self._signer: _Signer | None = None
        self._frame = -1
        self._embeddings: np.ndarray | None = None
        self._tokens: np.ndarray | None = None
        self._signatures: dict[int, np.ndarray] = {}  # window size -> (n, side, side, C)
        self._computed_at = np.zeros(0, np.int64)
        self._picture: np.ndarray | None = None
        self._pending: dict[int, np.ndarray] = {}
        self._full = True
        self._moved = False  # this frame changed over more than ``motion`` of the picture
        self._views: dict[bytes, _Views] = {}
        self._pass_picture: np.ndarray | None = None  # the dense method's last computed pass
        self._pass_frame = -1

    # ----------------------------------------------------------------- windows

    def _next_frame(
        self, frame: np.ndarray, grid: WindowGrid
    ) -> tuple[_Signer, np.ndarray | None, np.ndarray]:
        """Count a new frame and make its signature picture; a new frame size starts afresh.
        Returns the signer, the previous frame's picture (None at the start) and this one's."""
        if self._grid is None or (self._grid.frame_h, self._grid.frame_w) != (
            grid.frame_h,
            grid.frame_w,
        ):
            self.reset()
            self._grid = grid
            self._signer = _Signer(grid, float(self.config.threshold), self.fill)
        signer = self._signer
        assert signer is not None
        self._frame += 1
        previous, picture = self._picture, signer.picture(frame)
        self._picture = picture
        return signer, previous, picture

    def plan(self, frame: np.ndarray, grid: WindowGrid) -> ReusePlan:
        """Which windows of ``frame`` (HxWx3 uint8 BGR, cut by ``grid``) need computing."""
        signer, previous, picture = self._next_frame(frame, grid)
        sizes = grid.windows[:, 2]
        self._pending = {
            int(s): signer.windows(picture, grid.windows[sizes == s]) for s in np.unique(sizes)
        }
        everything = np.arange(len(grid), dtype=np.int64)
        if self._embeddings is None:
            self._full, self._moved = True, False
            return ReusePlan(everything, len(grid), "first")
        self._moved = previous is not None and signer.motion(picture, previous) > self.config.motion
        if self._moved:
            self._full = True
            return ReusePlan(everything, len(grid), "motion")
        stale = self._frame - self._computed_at >= self.config.refresh
        for s, now in self._pending.items():
            changed = signer.differs(now, self._signatures[s]).reshape(len(now), -1).any(axis=1)
            stale[sizes == s] |= changed
        self._full = bool(stale.all())
        return ReusePlan(np.flatnonzero(stale).astype(np.int64), len(grid), "changed")

    def merge(
        self, plan: ReusePlan, embeddings: np.ndarray | None, tokens: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Store the embeddings (and tokens) just computed for ``plan.compute`` (None when it
        is empty); return every window's: (N, D) and (N, g, g, D) or None."""
        grid = self._grid
        assert grid is not None, "plan comes before merge"
        idx = plan.compute
        if len(idx) == 0:
            assert self._embeddings is not None, "the first frame computes every window"
        elif self._embeddings is None or len(idx) == plan.total:
            assert embeddings is not None
            self._embeddings = np.array(embeddings, np.float32)
            self._tokens = None if tokens is None else np.array(tokens, np.float32)
            self._computed_at = np.full(plan.total, self._frame, np.int64)
            self._signatures = {s: sig.copy() for s, sig in self._pending.items()}
        else:
            assert embeddings is not None
            self._embeddings[idx] = embeddings
            if self._tokens is not None and tokens is not None:
                self._tokens[idx] = tokens
            self._computed_at[idx] = self._frame
            sizes = grid.windows[:, 2]
            for s, now in self._pending.items():
                rows = np.flatnonzero(sizes == s)  # this size's windows, in signature order
                pick = np.flatnonzero(np.isin(rows, idx))
                self._signatures[s][pick] = now[pick]
        self._pending = {}
        return self._embeddings, self._tokens

    def frame_changed(self, frame: np.ndarray, grid: WindowGrid) -> bool:
        """The dense method's question: must the whole frame go through the tower again? True
        when nothing is kept yet, the kept pass is ``refresh`` frames old, or some block of the
        frame changed beyond the tolerance since the kept pass was computed (every token sees
        the whole frame, so one changed place means a new pass). Only the frame's picture is
        compared, not each window's signature; verification crops reuse as in windows mode."""
        signer, previous, picture = self._next_frame(frame, grid)
        self._moved = previous is not None and signer.motion(picture, previous) > self.config.motion
        self._full = previous is None or self._moved
        kept = self._pass_picture
        changed = (
            kept is None
            or self._frame - self._pass_frame >= self.config.refresh
            or bool(signer.differs(picture, kept).any())
        )
        if changed:
            self._pass_picture, self._pass_frame = picture, self._frame
        return changed

    # ----------------------------------------------------------------- verification crops

    def _view_signature(self, box: np.ndarray) -> np.ndarray:
        """The signature of everything a box's widest verification crop shows."""
        assert self._signer is not None and self._picture is not None
        x1, y1, x2, y2 = (float(v) for v in box)
        half = max(max(x2 - x1, y2 - y1) * max(self.margins), 1.0) / 2.0 + 1.0  # +1: resampling
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        return self._signer.region(self._picture, cx - half, cy - half, cx + half, cy + half)

    def plan_views(self, xyxy: np.ndarray) -> ReusePlan:
        """Which boxes (n, 4) of this frame need their verification crops computed: boxes not
        kept from an earlier frame at exactly this place, or whose crops' pixels changed."""
        n = len(xyxy)
        if self._full or self._signer is None:
            return ReusePlan(np.arange(n, dtype=np.int64), n, "motion" if n else "changed")
        compute = [i for i, box in enumerate(xyxy) if not self._views_still_hold(box)]
        return ReusePlan(np.asarray(compute, np.int64), n, "changed")

    def _views_still_hold(self, box: np.ndarray) -> bool:
        """Whether the crops kept for exactly this box are young enough and show the same."""
        kept = self._views.get(np.asarray(box, np.float32).tobytes())
        if kept is None or self._frame - kept.frame >= self.config.refresh:
            return False
        now = self._view_signature(box)
        assert self._signer is not None
        if now.shape != kept.signature.shape:
            return False
        return not bool(self._signer.differs(now, kept.signature).any())

    def merge_views(self, plan: ReusePlan, xyxy: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """Store the crops' embeddings just computed for ``plan.compute`` (margin-major, as
        ``verify.box_views`` lays them out: (views * m, D)); return every box's (views * n, D).
        Only this frame's boxes stay kept; none on a frame that moved (``plan_views`` computed
        every box): the next frame would most likely move too, and a box's signature costs a
        crop of the signature picture (a moving camera verifies some 30 boxes a frame). Rows of
        views not taken yet are NaN (a second opinion: ``keep_later_views`` fills them in)."""
        n, m = len(xyxy), len(plan.compute)
        if self._moved and m == n:
            self._views = {}
            return embeddings.reshape(len(self.margins) * n, -1)
        views = len(self.margins)
        dim = embeddings.shape[-1]
        fresh = embeddings.reshape(views, m, dim)
        out = np.empty((views, n, dim), np.float32)
        kept: dict[bytes, _Views] = {}
        computed = {int(i): j for j, i in enumerate(plan.compute.tolist())}
        for i, box in enumerate(xyxy):
            key = np.asarray(box, np.float32).tobytes()
            if i in computed:
                out[:, i] = fresh[:, computed[i]]
                sig = self._view_signature(box) if self._signer is not None else np.zeros(0)
                kept[key] = _Views(out[:, i].copy(), sig, self._frame)
            else:
                out[:, i] = self._views[key].embeddings
                kept[key] = self._views[key]
        self._views = kept
        return out.reshape(views * n, dim)

    def keep_later_views(self, xyxy: np.ndarray, embeddings: np.ndarray) -> None:
        """Keep the later margins' views of boxes (k, 4) of this frame, computed after
        ``merge_views`` (a second opinion, ``streamdet.detect.verifier``): (views - 1, k, D),
        written into each kept box's rows 1.. (their first D columns). Boxes not kept (a frame
        that moved) are skipped."""
        dim = embeddings.shape[-1]
        for j, box in enumerate(xyxy):
            kept = self._views.get(np.asarray(box, np.float32).tobytes())
            if kept is not None:
                kept.embeddings[1:, :dim] = embeddings[:, j]
