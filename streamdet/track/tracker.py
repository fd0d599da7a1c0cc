"""``Tracker``: ids that stay with each prompt's objects across the frames of a video.

    from streamdet import Detector
    from streamdet.track import Tracker
    det, tracker = Detector("streamdet/scenes-clip", ["a red car"]), Tracker()
    for frame in frames:
        result = tracker.update(det.detect(frame))   # result.detections.track_id

Each prompt has its own tracks (``PromptTracks``), keyed by the prompt's TEXT: a box of one prompt
never continues a track of another, and when the prompts change between frames (``set_prompts``)
the tracks of a prompt that stays keep their ids whatever its new index, while those of a removed
prompt end. Ids come from one counter per tracker, so they are unique within a run across prompts
and increase in the order tracks start. The streaming pipeline builds one per run
(``tracker_for``) when the detector's ``track`` setting is on and the source is a video.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from streamdet.config.checks import check_settings
from streamdet.config.settings import SETTINGS, TrackConfig
from streamdet.errors import ConfigError
from streamdet.track.prompt_tracks import PromptTracks
from streamdet.types import Detections, FrameResult

#: The flat setting names of tracking (``track``, ``track_min_hits``, ...).
TRACK_SETTINGS: tuple[str, ...] = tuple(k for k, (group, _) in SETTINGS.items() if group == "track")


def track_config(config: TrackConfig | None = None, **settings: Any) -> TrackConfig:
    """``config`` (default: the built-in one) with ``settings`` by flat name
    (``track_min_hits=2``), each checked like any detector setting (one-line ConfigError)."""
    unknown = [k for k in settings if k not in TRACK_SETTINGS]
    if unknown:
        names = ", ".join(TRACK_SETTINGS)
        raise ConfigError(f"unknown tracking setting {unknown[0]!r}; tracking settings: {names}")
    checked = check_settings(settings, "tracking settings")
    changes = {SETTINGS[k][1]: v for k, v in checked.items()}
    return dataclasses.replace(config or TrackConfig(), **changes)


class Tracker:
    """Ids, short-miss memory and steady boxes for a stream of ``FrameResult``s.

    ``Tracker()`` uses the built-in tracking settings; ``Tracker(detector.config.track)`` a
    detector's; keyword arguments by flat name (``Tracker(track_min_hits=1)``) change some.
    ``update`` takes each frame's result in order; ``reset`` starts a new stream (ids from 1).
    """

    def __init__(self, config: TrackConfig | None = None, **settings: Any) -> None:
        self.config = track_config(config, **settings)
        self._prompts: dict[str, PromptTracks] = {}
        self._last_id = 0
        self._frames = 0

    def reset(self) -> None:
        """Forget every track; the next frame starts a new stream and ids start at 1 again."""
        self._prompts.clear()
        self._last_id = 0
        self._frames = 0

    def _new_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def update(self, result: FrameResult) -> FrameResult:
        """This frame's result with tracked boxes: each box carries its track's id
        (``detections.track_id``) and its smoothed box; boxes of tracks not yet confirmed are
        left out, and confirmed tracks missed for a few frames (``hold``) are kept at their
        predicted box with their last score."""
        first = self._frames == 0
        self._frames += 1
        d = result.detections
        for gone in set(self._prompts) - set(result.prompts):
            del self._prompts[gone]  # a removed prompt's tracks end
        boxes, scores, classes, ids = [], [], [], []
        for k, prompt in enumerate(result.prompts):
            tracks = self._prompts.get(prompt)
            if tracks is None:
                tracks = self._prompts[prompt] = PromptTracks(self.config, self._new_id)
            mine = d.class_id == k
            shown = tracks.update(
                d.xyxy[mine].astype(np.float64),
                d.confidence[mine].astype(np.float64),
                result.frame_shape,
                first_frame=first,
            )
            for s in shown:
                boxes.append(s.box)
                scores.append(s.score)
                classes.append(k)
                ids.append(s.track_id)
        tracked = Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            confidence=np.array(scores, np.float32),
            class_id=np.array(classes, np.int64),
            track_id=np.array(ids, np.int64),
        )
        return dataclasses.replace(result, detections=tracked)


def tracker_for(detector: Any, source: Any) -> Tracker | None:
    """The tracker a pipeline run applies, or None: tracking is on in the detector's settings
    (``detector.config.track``; a detector without a config is not tracked) and the source is a
    video or a live stream (a still image has no frames to follow its boxes across)."""
    config = getattr(getattr(detector, "config", None), "track", None)
    if not isinstance(config, TrackConfig) or not config.enabled:
        return None
    if not source.live and source.frame_count == 1:
        return None
    return Tracker(config)
