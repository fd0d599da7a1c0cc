"""Tracking: ids that follow each prompt's objects across video frames, steadier boxes.

A small ByteTrack-style tracker (Zhang et al., 2022) written for streamdet, numpy only:

* ``kalman``: a constant-velocity Kalman filter per box;
* ``match``: IoU and an exact assignment (Hungarian method);
* ``prompt_tracks``: one prompt's tracks: two-stage association (strong boxes first, then weak
  ones against the tracks just seen, then the rest), tentative tracks confirmed after
  ``min_hits`` finds, a lost-track buffer (``max_missed``), short misses bridged (``hold``) and
  box smoothing;
* ``tracker``: ``Tracker``, per prompt text over whole ``FrameResult``s, and ``tracker_for``,
  what the streaming pipeline uses.

Why our own and not a library's: tracking is on by default, so it must work in the default
install (numpy, opencv-python-headless, onnxruntime, ...). supervision's ``ByteTrack`` is the
maintained implementation that fits, but supervision is an optional extra here, pinned below 0.31
because 0.31 dropped ByteTrack; the ``trackers`` package requires opencv-python, which clashes with
opencv-python-headless (two cv2 builds break each other). Neither can be a core dependency, and
ByteTrack is small: this package follows its paper and reference code (two-stage association,
the Kalman filter's noise model, the lost-track buffer) and adds what streamdet's boxes need: one
tracker per prompt, a short hold so a missed frame does not blink, and smoothing of the shown
box. ``tests/track/test_sv_crosscheck.py`` runs it beside supervision 0.30's ``sv.ByteTrack`` on
the same inputs.
"""

from streamdet.track.tracker import TRACK_SETTINGS, Tracker, track_config, tracker_for

__all__ = ["TRACK_SETTINGS", "Tracker", "track_config", "tracker_for"]
