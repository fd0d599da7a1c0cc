"""The generated videos search is graded on: each prompt's object is there only in its interval."""

from __future__ import annotations

import av
import numpy as np

from streamdet.synth.scenes import parse_prompt
from streamdet.synth.timeline import Appearance, timed_video, write_video


def test_objects_appear_only_in_their_intervals_and_distractors_never_match(tmp_path):
    appearances = (Appearance("a red circle", 1.0, 2.0), Appearance("a blue star", 0.4, 1.4))
    video = timed_video(
        np.random.default_rng(0), appearances, seconds=3, fps=5, exclude=("a green cross",)
    )
    assert len(video.scenes) == 15 and video.duration == 3.0
    queries = {a.prompt: parse_prompt(a.prompt) for a in appearances}
    for i, scene in enumerate(video.scenes):
        t = i / video.fps
        for a in appearances:
            count = sum(queries[a.prompt].matches(o) for o in scene.objects)
            assert count == (1 if a.covers(t) else 0), (a, t)
        assert not any(parse_prompt("a green cross").matches(o) for o in scene.objects)
    path = write_video(tmp_path / "v.mp4", [s.image for s in video.scenes], video.fps)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 15 and abs(float(frames[5].time) - 1.0) < 1e-6
