"""Query by motion: a clip's pose sequence in, the segments of indexed videos whose pose follows it out (issue 16).

"Who else nods like this, turns like this?": the clip's face is followed and encoded frame by frame (P's codes,
as the index holds them), and every indexed video is scanned for the stretch whose code sequence is nearest.

Choices:
- Distance: dynamic time warping (DTW) of the two code sequences with cosine distance (1 - p·q of unit codes),
  Sakoe and Chiba's symmetric step (a diagonal step counts twice) within a band of `BAND` of the query's length,
  normalised by the two lengths: the mean cosine distance along the best alignment. DTW tolerates a segment
  performed a little faster or slower, or with a pause, which a frame-by-frame (Euclidean) sum does not; the band
  keeps it from matching a whole clip to one frame. `score` = 1 - that mean, a cosine-like similarity.
- Windows: every stretch of an indexed video as many frames long as the query, sliding by one frame, never across
  two videos. Segments of one video that overlap a better one are dropped (each hit is a different moment), and
  `HitRules` caps and filters them like photo hits.
- Time: indexed videos are sampled sparsely (1 fps by default, SynthVox 1.5 fps) and the clip densely. Each indexed
  video's frame interval is its median `time_s` step (the index's median where a video has no times), and the
  clip is sampled at that interval (the clip frame nearest each tick), so both sequences move at the same pace.
  Videos are scanned in groups of equal interval.
- Exact and exhaustive: all codes are read from the index and every window is scored, vectorised over windows
  (L² array steps per interval group for a query of L samples). A folder of frames is a clip at `clip_fps`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.data.errors import DataError
from model.data.face_crop import crop_largest_face, crop_square
from model.data.images import DECODABLE_SUFFIXES, read_image
from model.data.video import decode_frames
from model.reenact import track_driving_face
from retrieval.hit_rules import HitRules
from retrieval.search import Retriever

BAND = 0.34  # DTW band half-width as a share of the query's samples: a third of the clip early or late
DEFAULT_INTERVAL_S = 1.0  # a video's frame interval when no frame of the index has a time (`index build --fps`)
SEGMENT_COLUMNS = ["rank", "score", "identity", "video", "start_frame", "end_frame", "start_s", "end_s"]


@dataclass(frozen=True)
class Clip:
    """A query clip as the model saw it: each frame's face crop, time and unit pose code."""

    crops: np.ndarray  # (T, S, S, 3) uint8
    times: np.ndarray  # (T,) seconds from the first frame
    codes: np.ndarray  # (T, dim) float32, unit rows

    def sampled(self, interval: float) -> np.ndarray:
        """Indices of the clip frames nearest each tick 0, interval, 2·interval, ... within the clip."""
        ticks = np.arange(int(np.floor(self.times[-1] / interval + 0.01)) + 1) * interval  # 1%: rounding slack
        return np.abs(self.times[None, :] - ticks[:, None]).argmin(axis=1)


@dataclass(frozen=True)
class MotionResult:
    """The best segments (`SEGMENT_COLUMNS` plus the ids of their frames) and the clip they answer."""

    segments: pd.DataFrame
    frame_ids: list[np.ndarray]  # per segment row: the indexed frame ids from start to end
    clip: Clip


def read_clip(retriever: Retriever, path: Path, *, clip_fps: float = 25.0) -> Clip:
    """A video file, or a folder of frames (name order, `clip_fps` apart), as a `Clip` of face crops and codes.

    A video's face is followed as `daegan reenact` follows a driver; each photo of a folder is cropped around its
    largest face. A `DataError` names the file when it cannot be used.
    """
    size = retriever.model.size
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix.lower() in DECODABLE_SUFFIXES and not p.name.startswith(".")
        )
        if len(files) < 2:
            raise DataError(path, "a clip needs at least two frames (images in name order)")
        crops = np.stack([crop_largest_face(read_image(f), size, source=f).crop for f in files])
        times = np.arange(len(files)) / clip_fps
    else:
        track = track_driving_face(path)
        crops = np.stack(
            [
                crop_square(img, track.squares[i], size)
                for i, img in decode_frames(path, range(len(track.squares)), variable_rate=True)
            ]
        )
        times = np.asarray(track.times[: len(crops)], dtype=float)
        if len(crops) < 2:
            raise DataError(path, "a clip needs at least two frames")
    codes = retriever.model.encode_pose(crops).numpy()  # (T, dim), unit rows
    return Clip(crops, times, codes)


def search_motion(retriever: Retriever, clip: Clip, k: int = 10, *, rules: HitRules | None = None) -> MotionResult:
    """The `k` best non-overlapping segments of indexed videos whose pose sequence follows `clip` (module
    docstring), best first."""
    rules = rules or HitRules()
    frames = retriever.frames(retriever.frame_ids()).sort_values(["identity", "video", "frame"], kind="stable")
    frames = frames[[rules.allows(identity) for identity in frames["identity"]]].reset_index(drop=True)
    codes = retriever.pose_codes(frames["id"].to_numpy())  # (N, dim), unit rows
    intervals = _video_intervals(frames)
    found = []
    for interval, group in frames.groupby(frames.set_index(["identity", "video"]).index.map(intervals)):
        picks = clip.sampled(interval)
        if len(picks) < 2:
            continue  # the clip is shorter than two of these videos' frames: nothing to follow
        rows = group.index.to_numpy()
        scores, starts = _window_scores(clip.codes[picks], codes[rows], group)
        found += [(float(score), rows[start], len(picks)) for score, start in zip(scores, starts)]
    if not found:
        raise DataError("clip", f"shorter than two frames of every indexed video ({clip.times[-1]:.2f} s)")
    return _best_segments(frames, sorted(found, key=lambda hit: -hit[0]), k, rules, clip)


def _video_intervals(frames: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Each video's frame interval in seconds: its median time step, else the index's median, else 1 s."""
    steps = frames.groupby(["identity", "video"])["time_s"].apply(
        lambda t: np.nanmedian(np.diff(t.to_numpy())) if t.notna().sum() > 1 else np.nan
    )
    known = steps[steps > 0]
    fallback = float(known.median()) if len(known) else DEFAULT_INTERVAL_S
    return {key: round(float(step), 3) if step > 0 else fallback for key, step in steps.items()}


def _window_scores(query: np.ndarray, codes: np.ndarray, group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """DTW score of `query` (L, dim) against every window of L consecutive frames of one video in `codes` (N, dim)
    (rows of `group`, sorted by video and frame); returns (scores, window start rows), windows inside one video."""
    length, count = len(query), len(codes)
    if count < length:
        return np.empty(0), np.empty(0, dtype=np.int64)
    video = group.groupby(["identity", "video"], sort=False).ngroup().to_numpy()  # (N,) video number per row
    starts = np.arange(count - length + 1)
    starts = starts[video[starts] == video[starts + length - 1]]  # windows that stay in one video
    distance = 1.0 - query @ codes.T  # (L, N): cosine distance of every query sample to every frame
    band = max(1, int(np.ceil(BAND * length)))
    inf = np.full(len(starts), np.inf)
    previous = [inf] * length
    for i in range(length):  # Sakoe-Chiba symmetric DTW, one row of the cost table at a time, over all windows
        current = [inf] * length
        for j in range(max(0, i - band), min(length, i + band + 1)):
            cost = distance[i, starts + j]
            if i == 0 and j == 0:
                current[j] = 2 * cost
                continue
            candidates = [
                previous[j] + cost,
                current[j - 1] + cost if j else inf,
                previous[j - 1] + 2 * cost if i and j else inf,
            ]
            current[j] = np.minimum.reduce(candidates)
        previous = current
    return 1.0 - previous[length - 1] / (2 * length), starts


def _best_segments(
    frames: pd.DataFrame, found: list[tuple[float, int, int]], k: int, rules: HitRules, clip: Clip
) -> MotionResult:
    """The first `k` windows of `found` (score, start row, length; best first) that overlap no better window of
    the same video and that `rules`' per-video and per-identity caps allow."""
    taken: dict[tuple[str, str], list[tuple[int, int]]] = {}
    per_video: Counter[tuple[str, str]] = Counter()
    per_identity: Counter[str] = Counter()
    rows, ids = [], []
    for score, start, length in found:
        if len(rows) == k:
            break
        first, last = frames.iloc[start], frames.iloc[start + length - 1]
        key = (first["identity"], first["video"])
        if any(start < end and begin < start + length for begin, end in taken.get(key, [])):
            continue
        if (rules.per_video is not None and per_video[key] >= rules.per_video) or (
            rules.per_identity is not None and per_identity[key[0]] >= rules.per_identity
        ):
            continue
        taken.setdefault(key, []).append((start, start + length))
        per_video[key] += 1
        per_identity[key[0]] += 1
        rows.append(
            {
                "rank": len(rows) + 1,
                "score": score,
                "identity": key[0],
                "video": key[1],
                "start_frame": int(first["frame"]),
                "end_frame": int(last["frame"]),
                "start_s": float(first["time_s"]),
                "end_s": float(last["time_s"]),
            }
        )
        ids.append(frames["id"].to_numpy()[start : start + length])
    return MotionResult(pd.DataFrame(rows, columns=SEGMENT_COLUMNS), ids, clip)
