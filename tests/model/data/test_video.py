"""model/data/video.py: sampling by frame number and by timestamp, and the variable-frame-rate checks."""

from __future__ import annotations

import numpy as np
import pytest

from model.data.errors import DataError
from model.data.video import (
    constant_rate_schedule,
    decode_frames,
    frame_times,
    is_constant_rate,
    steady_rate,
    time_frame_indices,
    video_frame_indices,
)
from tests.video_corpus import media_timescale, set_frame_durations, write_mp4


def frames(num: int = 12) -> list[np.ndarray]:
    return [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(num)]


def test_sampling_by_time_matches_sampling_by_number_at_a_constant_rate():
    for native, fps in [(25, 5), (10, 5), (30, 7), (25, 0), (10, 20)]:
        times = list(np.arange(60) / native)
        assert time_frame_indices(times, fps) == video_frame_indices(60, native, fps)


def test_a_constant_rate_video_has_frame_times_at_i_over_fps(tmp_path):
    video = write_mp4(tmp_path / "c.mp4", frames())
    times = frame_times(video)
    assert times == pytest.approx(list(np.arange(12) / 10))
    assert is_constant_rate(times, 10.0)
    assert [i for i, _ in decode_frames(video, range(12))] == list(range(12))


def test_a_variable_rate_video_is_refused_unless_sampled_by_time(tmp_path):
    video = write_mp4(tmp_path / "v.mp4", frames())
    tick = media_timescale(video) // 10
    set_frame_durations(video, [tick] * 6 + [3 * tick] * 6)
    times = frame_times(video)
    assert not is_constant_rate(times, 5.0)
    with pytest.raises(DataError, match="variable frame rate: frame 2 is at 0.200 s"):
        list(decode_frames(video, range(12)))
    decoded = dict(decode_frames(video, range(12), variable_rate=True))
    assert sorted(decoded) == list(range(12))
    assert [round(float(img.mean()) / 20) for img in decoded.values()] == list(range(12))  # each frame, in order


def test_a_variable_rate_plays_at_its_steady_rate_as_a_player_shows_it():
    """A 30 fps phone clip with one frame held for 0.1 s: still 30 fps, that frame shown three times, none lost."""
    times = [i / 30 for i in range(10)] + [9 / 30 + 0.1 + i / 30 for i in range(5)]
    assert steady_rate(times) == pytest.approx(30)
    schedule = constant_rate_schedule(times, 30)
    assert schedule == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 10, 11, 12, 13, 14]
    assert constant_rate_schedule(list(np.arange(12) / 10), 10) == list(range(12))  # a constant rate: each once
    assert constant_rate_schedule([0.0, 0.05, 0.3], 10) == [0, 1, 1, 2]  # a frame shorter than a tick is kept here
    assert constant_rate_schedule([0.0, 0.02, 0.04, 0.3], 10) == [0, 2, 2, 3]  # frame 1, shown 0.02 s, is skipped
