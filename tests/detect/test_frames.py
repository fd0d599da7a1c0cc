"""Frame validation at the API boundary."""

from __future__ import annotations

import numpy as np
import pytest

from streamdet.detect.frames import as_bgr
from streamdet.errors import FrameError, FrameTypeError


def test_bgr_passes_through_untouched():
    f = np.zeros((4, 5, 3), np.uint8)
    assert as_bgr(f) is f


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1), (4, 5, 4)])
def test_gray_and_alpha_become_bgr(shape):
    f = np.full(shape, 7, np.uint8)
    out = as_bgr(f)
    assert out.shape == (4, 5, 3) and (out == 7).all()


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        ([[1, 2]], FrameTypeError, "numpy array"),
        (None, FrameTypeError, "NoneType"),
        (np.zeros((4, 5, 3)), FrameError, "float64"),
        (np.zeros((0, 5, 3), np.uint8), FrameError, "empty"),
        (np.zeros((4, 5, 2), np.uint8), FrameError, r"\(4, 5, 2\)"),
        (np.zeros((2, 4, 5, 3), np.uint8), FrameError, "shape"),
    ],
)
def test_bad_frames_say_expected_vs_got(frame, error, match):
    with pytest.raises(error, match=match):
        as_bgr(frame)
    assert issubclass(error, TypeError if error is FrameTypeError else ValueError)
