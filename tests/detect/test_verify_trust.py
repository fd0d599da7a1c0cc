"""How far a box's heatmap peak lowers the view probability it needs (``verify_trust``): the two
added as log-odds, so that a box the frame's heatmap is sure of survives views that doubt it,
while a weak region still needs views that agree."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from streamdet import Detector
from streamdet.cli.flags import add_detector_flags, settings_from_args
from streamdet.detect.verify import rescore, trusted_floor
from streamdet.errors import ConfigError
from streamdet.types import Detections


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, np.float64)
    return np.log(p / (1 - p))


def test_no_trust_holds_every_box_to_the_floor() -> None:
    floors = trusted_floor(0.3, np.array([0.0, 0.5, 0.99, 1.0], np.float32), 0.0)
    np.testing.assert_allclose(floors, 0.3)


def test_trust_adds_the_peaks_log_odds_to_the_views() -> None:
    peaks = np.array([0.2, 0.5, 0.9, 0.99, 0.999], np.float32)
    floors = trusted_floor(0.7, peaks, 0.5)
    # kept exactly when 0.5 * logit(peak) + logit(view) reaches logit(0.7)
    np.testing.assert_allclose(0.5 * _logit(peaks) + _logit(floors), _logit(0.7), atol=1e-4)
    assert floors[1] == pytest.approx(0.7)  # a peak of 0.5 says nothing either way
    assert floors[0] > 0.7  # a weak region needs more than the floor
    assert np.all(np.diff(floors) < 0)  # the surer the heatmap, the less the views need say
    assert 0.15 < floors[3] < 0.25 and floors[4] < 0.1


def test_a_peak_of_one_still_needs_some_view() -> None:
    floors = trusted_floor(0.7, np.array([1.0, 0.0], np.float32), 0.5)
    assert np.isfinite(floors).all()
    assert 0.0 < floors[0] < 0.1 and 0.95 < floors[1] < 1.0


BOXES = Detections(
    np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], np.float32),
    np.array([0.999, 0.6, 0.6], np.float32),
    np.zeros(3, np.int64),
)


@pytest.mark.parametrize("combine", ["best", "mean"])
def test_a_sure_box_survives_doubting_views_a_weak_one_does_not(combine: str) -> None:
    # views (both margins alike): the sure box 0.15, the weak boxes 0.15 and 0.9
    probs = np.array([0.15, 0.15, 0.9, 0.15, 0.15, 0.9], np.float32)[:, None]
    plain = rescore(BOXES, probs, 0.7, combine=combine)
    assert plain.xyxy[:, 0].tolist() == [40]  # one floor: only the weak box its views like
    trusted = rescore(BOXES, probs, 0.7, combine=combine, trust=0.5)
    assert sorted(trusted.xyxy[:, 0].tolist()) == [0, 40]
    # the confidence is still peak x views, whatever the floor was
    by_x = dict(zip(trusted.xyxy[:, 0].tolist(), trusted.confidence.tolist(), strict=True))
    assert by_x[0] == pytest.approx(0.999 * 0.15) and by_x[40] == pytest.approx(0.6 * 0.9)


def test_the_second_opinions_floor_is_trusted_too() -> None:
    # first views reject every box; the second views give 0.3
    probs = np.array([0.01, 0.01, 0.01, 0.3, 0.3, 0.3], np.float32)[:, None]
    seen = np.ones((2, 3), bool)
    plain = rescore(BOXES, probs, 0.7, seen=seen, recheck_floor=0.4)
    assert len(plain) == 0
    trusted = rescore(BOXES, probs, 0.7, seen=seen, recheck_floor=0.4, trust=0.5)
    assert trusted.xyxy[:, 0].tolist() == [0]  # 0.3 rescues the sure box only


def test_bad_trust_is_refused_in_one_line_and_the_flag_sets_it() -> None:
    with pytest.raises(ConfigError, match="verify_trust must be a number of 0 or more"):
        Detector("streamdet/scenes-clip", ["a car"], verify_trust=-0.5)
    parser = argparse.ArgumentParser()
    add_detector_flags(parser)
    chosen = settings_from_args(parser.parse_args(["--verify-trust", "0.25"])).overrides
    assert chosen["verify_trust"] == 0.25
