"""One prompt's tracks: ByteTrack's association, short-miss memory and steadiness for one class.

Per frame (``PromptTracks.update``):

1. every track's Kalman filter predicts where its box is now; a lost track keeps its size, and
   one whose prediction left the frame is held at the edge with the size it had when last seen
   whole (it is looked for where it went out, as it comes back in);
2. boxes scoring at least ``high`` are matched first, to the confirmed tracks, found or lost
   (most total IoU, at least ``iou``, with the predicted boxes cut by the frame edge as the
   found ones are);
3. weaker boxes are matched to the confirmed tracks found in the previous frame that are still
   unmatched: a weak box where an object just was is that object (ByteTrack's second stage);
4. boxes left over, strong ones first, are matched to the tentative tracks (not yet ``min_hits``
   finds), then to the confirmed tracks still unmatched: a weak box where a lost track is
   predicted is that object coming back, so it keeps its id instead of starting a new track
   (and, as a new track would be, is shown after ``min_hits`` finds in a row:
   ``_Track.found``). A tentative track that misses a frame is dropped, and boxes still left
   start tentative tracks (confirmed at once in the tracker's first frame: what is there when
   a stream starts is shown from its first frame, as in ByteTrack). Unlike ByteTrack, a weak box
   may start a track too: ByteTrack's weak boxes are those its detector would have dropped,
   while every box streamdet's detector returns is above the threshold the user chose, so none
   is hidden for its score alone (``min_hits`` still hides one-frame boxes);
5. a confirmed track missed in this frame keeps its id for ``max_missed`` frames and is still
   shown, at the box its motion predicts, for the first ``hold`` of them (a short miss does not
   blink); then it is dropped.

A shown box is smoothed: ``smoothing`` x (the previous shown box moved by the track's velocity)
+ (1 - ``smoothing``) x the found box. Moving the previous box first keeps the smoothing from
lagging behind a moving object, while it still averages out the found boxes' jitter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamdet.config.settings import TrackConfig
from streamdet.track.kalman import BoxKalman, to_cxcywh, to_xyxy
from streamdet.track.match import match


@dataclass
class _Track:
    """One track's state (mutable: it lives inside one ``PromptTracks``)."""

    track_id: int
    kalman: BoxKalman
    shown: np.ndarray  # the smoothed box, cxcywh
    score: float
    whole: np.ndarray | None = None  # (w, h) when last found clear of the frame edges
    hits: int = 1
    missed: int = 0  # frames in a row without a box
    confirmed: bool = False
    returning: bool = False  # hidden, then found by weak boxes: not shown until min_hits again

    def found(
        self, box: np.ndarray, score: float, config: TrackConfig, frame: tuple[int, int]
    ) -> None:
        """A box of this track in this frame (after ``predict``); ``frame``: (height, width).

        A confirmed track that was hidden (missed for more than ``hold`` frames) and is found
        by a weak box keeps its id but is shown again only after ``min_hits`` finds in a row,
        as a new track would be: a detector's weak false box that recurs where a track was
        lost does not flash up at once. A strong box shows it at once (ByteTrack's rule)."""
        moved = self.shown + self.kalman.velocity
        fresh = to_cxcywh(box)
        if not touches_edge(box, frame):
            self.whole = fresh[2:4]
        if self.missed > config.hold:  # back after an unseen gap: start the smoothing over
            moved = fresh
            if self.confirmed and score < config.high:
                self.returning, self.hits = True, 0
        self.kalman.update(box)
        self.shown = config.smoothing * moved + (1.0 - config.smoothing) * fresh
        self.score = score
        self.hits += 1
        self.missed = 0
        if score >= config.high or self.hits >= config.min_hits:
            self.returning = False
        if self.hits >= config.min_hits:
            self.confirmed = True

    def coast(self) -> None:
        """No box in this frame: the shown box moves on with the track's velocity (a
        returning track's finds in a row start again)."""
        self.missed += 1
        self.shown = self.shown + self.kalman.velocity
        if self.returning:
            self.hits = 0


def touches_edge(box: np.ndarray, frame: tuple[int, int]) -> bool:
    """Whether an xyxy box reaches the edge of a (height, width) frame (within a pixel)."""
    height, width = frame
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 <= 1 or y1 <= 1 or x2 >= width - 1 or y2 >= height - 1


@dataclass(frozen=True)
class Shown:
    """One box a prompt's tracks show in a frame."""

    track_id: int
    box: np.ndarray  # xyxy, float64
    score: float


class PromptTracks:
    """The tracks of one prompt. ``new_id`` gives the next id (shared by every prompt of a
    tracker, so ids are unique within a run)."""

    def __init__(self, config: TrackConfig, new_id: Callable[[], int]) -> None:
        self.config = config
        self._new_id = new_id
        self.tracks: list[_Track] = []

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        frame_shape: tuple[int, int],
        first_frame: bool = False,
    ) -> list[Shown]:
        """This frame's (n, 4) xyxy boxes and (n,) scores -> the boxes to show, with ids."""
        cfg = self.config
        height, width = frame_shape
        for track in self.tracks:
            if track.missed:
                track.kalman.keep_size()
            track.kalman.predict()
            if track.missed:
                track.kalman.hold_inside(width, height, track.whole)
        strong = np.flatnonzero(scores >= cfg.high)
        weak = np.flatnonzero(scores < cfg.high)
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]
        matched: set[int] = set()  # ids of the tracks found in this frame

        def pair(tracks: list[_Track], picks: np.ndarray) -> list[int]:
            """Match ``tracks`` with boxes[picks]; update the matched; the boxes left over."""
            # boxes are cut by the frame edge, so the predictions they are compared with are too
            predicted = np.array([t.kalman.box for t in tracks]).reshape(-1, 4)
            predicted = np.clip(predicted, 0.0, [width, height, width, height])
            pairs, _, left = match(predicted, boxes[picks], cfg.iou)
            for t, b in pairs:
                tracks[t].found(boxes[picks[b]], float(scores[picks[b]]), cfg, frame_shape)
                matched.add(tracks[t].track_id)
            return [int(picks[b]) for b in left]

        left_strong = pair(confirmed, strong)
        recent = [t for t in confirmed if t.track_id not in matched and t.missed == 0]
        left_weak = pair(recent, weak)
        # what is left, strong boxes first, continues or starts tentative tracks: every box the
        # detector gave (it is above the user's threshold) can become a track
        left = np.asarray(left_strong + left_weak, dtype=np.intp)
        left = np.asarray(pair(tentative, left), dtype=np.intp)
        # a weak box where a lost track is predicted is that object back, not a new one
        lost = [t for t in confirmed if t.track_id not in matched]
        left_boxes = pair(lost, left)
        kept: list[_Track] = []
        for track in self.tracks:
            if track.track_id in matched:
                kept.append(track)
            elif track.confirmed:
                track.coast()
                if track.missed <= cfg.max_missed:
                    kept.append(track)
            # a tentative track that missed a frame is dropped
        for b in left_boxes:
            box = boxes[b]
            track = _Track(self._new_id(), BoxKalman(box), to_cxcywh(box), float(scores[b]))
            if not touches_edge(box, frame_shape):
                track.whole = track.shown[2:4].copy()
            track.confirmed = first_frame or cfg.min_hits <= 1
            kept.append(track)
        self.tracks = kept
        return self._shown(width, height)

    def _shown(self, width: int, height: int) -> list[Shown]:
        """Confirmed tracks found now or missed for at most ``hold`` frames, inside the frame."""
        out = []
        for track in self.tracks:
            if not track.confirmed or track.returning or track.missed > self.config.hold:
                continue
            x1, y1, x2, y2 = to_xyxy(track.shown)
            box = np.array([max(x1, 0.0), max(y1, 0.0), min(x2, width), min(y2, height)])
            if box[2] > box[0] and box[3] > box[1]:  # a held box that left the frame is not shown
                out.append(Shown(track.track_id, box, track.score))
        return out
