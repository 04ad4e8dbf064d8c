"""Videos: what one holds (frame rate, frame count, size), which frames sampling takes, and decoding them.

The one place that opens a video with OpenCV: the collection reader, `daegan prepare` and reenactment from a
driving video all go through it, so they agree on frame numbers and on what counts as a bad video.
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


def video_frame_indices(num_frames: int, native_fps: float, fps: float) -> list[int]:
    """Which frames of a video sampling at ``fps`` takes: the first frame of each 1/fps interval (0: all)."""
    if fps == 0 or native_fps <= 0 or fps >= native_fps:
        return list(range(num_frames))
    slot = np.floor(np.arange(num_frames) / native_fps * fps)  # which 1/fps interval each frame falls in
    first = np.concatenate([[True], slot[1:] != slot[:-1]])
    return np.flatnonzero(first).tolist()


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


def decode_frames(video: Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB frame) for the wanted frame indices (ascending), decoding only those; stops at the end."""
    wanted = set(indices)
    last = max(indices, default=-1)
    capture = cv2.VideoCapture(str(video))
    try:
        for index in range(last + 1):
            if not capture.grab():
                return
            if index in wanted:
                ok, bgr = capture.retrieve()
                if not ok:
                    raise DataError(video, f"cannot decode frame {index}")
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
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
