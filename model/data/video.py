"""Videos: what one holds (frame rate, frame count, size), which frames sampling takes, and decoding them.

The one place that opens a video with OpenCV: the collection reader, `daegan prepare` and reenactment from a
driving video all go through it, so they agree on frame numbers and on what counts as a bad video.

Variable frame rate (a phone's video, say): OpenCV states one rate (frames / duration) and numbers frames as if it
held, so frame i is not at i / fps. Choices:
- `decode_frames` checks each frame's real timestamp (``CAP_PROP_POS_MSEC``) against i / fps and raises a
  `DataError` naming the rate change unless told the caller samples by timestamp; a constant-rate video decodes
  exactly as before. `decode_timed_frames` yields each frame with its timestamp, for callers that follow time.
- `frame_times` reads every frame's timestamp; `daegan prepare` and the collection reader sample by those
  (`time_frame_indices`), so their frames are the ones at the right times. When OpenCV decodes fewer frames than
  the container lists and the rate varies (a frame table that disagrees with the header's duration), the lost
  frames cannot be recovered: that is an error asking for a constant-rate re-encode, never frames silently dropped.
- Reenactment writes a constant-rate video: a variable-rate driver is resampled as a player shows it
  (`constant_rate_schedule`: each output slot takes the frame on screen at that time, so slow spans repeat frames)
  at its steady rate (`steady_rate`: one over the median frame interval, the rate most of the video runs at, so
  a phone's 30 fps clip with a few long frames stays 30 fps and drops nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from model.data.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# FFmpeg inside OpenCV prints its own complaints ("moov atom not found") straight to the process's stderr, a second
# line beside the one `DataError` line a bad video gets; quiet (AV_LOG_QUIET) unless the user sets the variable.
# OpenCV reads it when the first video is opened, so setting it at import is early enough.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

RATE_TOLERANCE = 0.5  # in frame periods: a timestamp further than this from i / fps means the rate varies
TIME_EPSILON = 1e-6  # in sampling slots: a frame at exactly k / fps starts slot k despite rounding in the timestamp
REENCODE = "re-encode at a constant rate, e.g. ffmpeg -i in.mp4 -vsync cfr out.mp4"


def video_frame_indices(num_frames: int, native_fps: float, fps: float) -> list[int]:
    """Which frames of a video sampling at ``fps`` takes: the first frame of each 1/fps interval (0: all)."""
    if fps == 0 or native_fps <= 0 or fps >= native_fps:
        return list(range(num_frames))
    slot = np.floor(np.arange(num_frames) / native_fps * fps)  # which 1/fps interval each frame falls in
    first = np.concatenate([[True], slot[1:] != slot[:-1]])
    return np.flatnonzero(first).tolist()


def time_frame_indices(times: Sequence[float], fps: float) -> list[int]:
    """`video_frame_indices` by real timestamps (seconds): the first frame in each 1/fps interval (0: all)."""
    if fps == 0:
        return list(range(len(times)))
    slot = np.floor(np.asarray(times, dtype=float) * fps + TIME_EPSILON)
    first = np.concatenate([[True], slot[1:] != slot[:-1]])[: len(times)]
    return np.flatnonzero(first).tolist()


def sampled_frame_indices(times: Sequence[float], native_fps: float, fps: float) -> list[int]:
    """The frames sampling at ``fps`` takes, given every frame's timestamp: by frame number at a constant rate
    (`video_frame_indices`), by real timestamp when the rate varies (`time_frame_indices`)."""
    if is_constant_rate(times, native_fps):
        return video_frame_indices(len(times), native_fps, fps)
    return time_frame_indices(times, fps)


def is_constant_rate(times: Sequence[float], native_fps: float) -> bool:
    """Whether frame i of `times` (seconds, from the first frame) lies within `RATE_TOLERANCE` periods of i / fps."""
    expected = np.arange(len(times)) / native_fps
    return bool(np.all(np.abs(np.asarray(times, dtype=float) - expected) <= RATE_TOLERANCE / native_fps))


def steady_rate(times: Sequence[float]) -> float:
    """The rate a variable-rate video mostly runs at: one over its median frame interval (module docstring)."""
    intervals = np.diff(np.asarray(times, dtype=float))
    intervals = intervals[intervals > 0]
    if len(intervals) == 0:
        raise ValueError("a steady rate needs two frames at different times")
    return float(1.0 / np.median(intervals))


def constant_rate_schedule(times: Sequence[float], rate: float) -> list[int]:
    """Which frame a player shows at each tick k / `rate` from the first frame to the last: the latest frame whose
    timestamp (seconds from the first) is not after the tick. A frame longer than a tick repeats; one shorter than
    a tick may be skipped."""
    times = np.asarray(times, dtype=float)
    ticks = np.arange(int(np.floor(times[-1] * rate + TIME_EPSILON)) + 1) / rate
    return (np.searchsorted(times, ticks + TIME_EPSILON / rate, side="right") - 1).tolist()


def frame_times(video: Path) -> list[float]:
    """Every decodable frame's timestamp in seconds from the first frame (grabs each frame, converts none).

    A `DataError` when the rate varies and OpenCV decodes fewer frames than the container lists (those frames are
    lost to OpenCV: only a re-encode gets them back).
    """
    native_fps, num_frames, _ = probe_video(video)
    capture = cv2.VideoCapture(str(video))
    times: list[float] = []
    try:
        while capture.grab():
            times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    except cv2.error as err:
        raise DataError(video, f"OpenCV failed decoding: {err}") from err
    finally:
        capture.release()
    times = [t - times[0] for t in times]
    check_no_frames_lost(video, times, num_frames, native_fps)
    return times


def check_no_frames_lost(video: Path, times: Sequence[float], num_frames: int, native_fps: float) -> None:
    """A `DataError` when OpenCV decoded fewer frames (`times`) than the container lists and the rate varies."""
    if len(times) < num_frames and not is_constant_rate(times, native_fps):
        raise DataError(
            video,
            f"variable frame rate: the container lists {num_frames} frames, OpenCV decodes {len(times)}; {REENCODE}",
        )


def probe_video(video: Path) -> tuple[float, int, tuple[int, int]]:
    """The video's frame rate, frame count and (width, height); a `DataError` when OpenCV cannot use it."""
    if not video.exists():
        raise DataError(video, "no such file")
    if video.stat().st_size == 0:
        raise DataError(video, "empty video file (0 bytes)")
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise DataError(video, "OpenCV cannot open this video (not a video, or corrupt)")
        native_fps = capture.get(cv2.CAP_PROP_FPS)
        num_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frame_size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        readable = capture.grab()
    finally:
        capture.release()
    if num_frames <= 0 or not readable:
        raise DataError(video, "video has no frames")
    if native_fps <= 0:
        raise DataError(video, "video does not state its frame rate")
    return native_fps, num_frames, frame_size


def decode_frames(
    video: Path, indices: Sequence[int], *, variable_rate: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) for the wanted frame indices (ascending), decoding only those; stops at the end.

    A frame whose timestamp is not at index / fps (a variable frame rate) is a `DataError`, unless `variable_rate`
    says the caller chose `indices` by real timestamps (`frame_times`).
    """
    native_fps = probe_video(video)[0] if not variable_rate else 0.0
    for index, time, img in decode_timed_frames(video, indices):
        if not variable_rate and abs(time - index / native_fps) > RATE_TOLERANCE / native_fps:
            raise DataError(
                video,
                f"variable frame rate: frame {index} is at {time:.3f} s, not "
                f"{index / native_fps:.3f} s as at the stated {native_fps:g} fps; {REENCODE}",
            )
        yield index, img


def decode_timed_frames(video: Path, indices: Sequence[int]) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (index, seconds from the first frame, RGB frame) for the wanted frame indices (ascending), decoding
    only those; stops at the end of the video."""
    wanted = set(indices)
    last = max(indices, default=-1)
    capture = cv2.VideoCapture(str(video))
    try:
        first = 0.0
        for index in range(last + 1):
            if not capture.grab():
                return
            time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            first = time if index == 0 else first
            if index in wanted:
                ok, bgr = capture.retrieve()
                if not ok:
                    raise DataError(video, f"cannot decode frame {index}")
                yield index, time - first, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    except cv2.error as err:
        raise DataError(video, f"OpenCV failed decoding: {err}") from err
    finally:
        capture.release()


def read_video_frame(video: Path, frame: int) -> np.ndarray:
    """Frame number `frame` of a video as RGB uint8 ``(H, W, 3)``, by seeking (random access for training)."""
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise DataError(video, "OpenCV cannot open this video (not a video, or corrupt)")
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = capture.read()
    finally:
        capture.release()
    if not ok:
        raise DataError(video, f"cannot decode frame {frame}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
