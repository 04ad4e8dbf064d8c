"""Reenactment of files (`daegan reenact`): source photos of one person and a driving photo or video in, a picture
grid or a video of the source face in the driving poses out (paper sec. 3: F on the sources, P on the driver).

Faces are found and cropped exactly as `daegan prepare` crops training frames (`data.face_crop`), so the model
sees what it was trained on; then `DAEGAN.reenact` (G once trained, else P's decoder) draws the result, pasted over
the first source crop so that outside the head the source's own pixels show (`model.composite`).

Choices:
- Crops and results are `size` pixels a side (`OUTPUT_SIZE` by default, or the model's S if larger): the model
  sees the crops at S, and P's decoder draws the result from the source crops' own pixels at `size`
  (`DAEGAN.draw`, `model.sharp_render`), so the output keeps the source photo's detail; G draws at S, enlarged.
- Photo driver: the output is one row, source crops | driving crop | result, written as PNG (or JPEG by suffix).
- Video driver: every frame is used. The face is followed as `prepare` follows it (`prepare.follow_face`: one
  person, gaps up to a second interpolated, box smoothed); frames where it is still lost take the box of the
  nearest frame that has one, so the output keeps every frame and the input's timing. No face in any frame is an
  error. The video is decoded twice (detect all, then crop and render) so memory stays flat for long clips.
  Output: driving crop | result side by side, mp4v at the input's frame rate, one progress bar over both passes.
  A variable-rate driver (a phone's clip) is written at its steady rate, each output frame showing the driving
  frame on screen at that time (`video.constant_rate_schedule`), so the result plays in step with the driver.
- Video driver, `strip`: also a picture of `strip_columns` output frames evenly spaced over the video (the first
  and the last among them), driving crops in the top row and results below: what a person looks at before playing
  the video, and what the README shows. Written atomically with the video.
- Video driver, relative `motion`: one more pass (decode, crop, encode) gives the driving face's mean code over
  every frame; each frame is then drawn in the source photos' mean code plus its departure from that mean
  (`daegan.relative_pose`). A photo driver has no motion of its own: relative motion with one is refused.
- A photo of several faces gives its largest (`data.face_crop.crop_largest_face`); the result lists each such
  photo with its count, which `daegan reenact` prints.
- Every output is written through `model.atomic_write.atomic_file` (a hidden temporary beside it, moved into place
  by `os.replace`): a failure or Ctrl-C at any moment leaves no partial file, and an existing output is replaced
  whole or not at all.
- Bad input (a missing, corrupt or non-image/non-video file, no face, a wrong checkpoint, an output suffix that
  does not fit the driver) is a `DataError` naming the file; it is raised before anything is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from tqdm import tqdm

from model.atomic_write import atomic_file
from model.daegan import DAEGAN, Motion, Renderer, relative_pose
from model.data.errors import DataError
from model.data.face_crop import Box, FaceCrop, crop_largest_face, crop_square, detect_faces, face_square
from model.data.images import IMAGE_SUFFIXES, read_image, write_image
from model.data.prepare import follow_face
from model.data.video import (
    VIDEO_SUFFIXES,
    check_no_frames_lost,
    constant_rate_schedule,
    decode_frames,
    decode_timed_frames,
    is_constant_rate,
    probe_video,
    steady_rate,
)
from model.device import pick_device

VIDEO_CODEC = "mp4v"  # OpenCV's built-in MPEG-4 encoder: present in every opencv-python wheel, no ffmpeg needed
VIDEO_OUT_SUFFIXES = (".mp4",)  # what the mp4v stream is written into
STRIP_MIN_CELL = 128  # pixels: a 64-px model's crops are too small to look at in a strip
OUTPUT_SIZE = 128  # pixels a side of crops and results unless asked: twice the small model's S, from the photos


@dataclass(frozen=True)
class PhotoReenactment:
    """A photo reenacted in memory: the crops the model saw and what it made, RGB uint8 `(size, size, 3)` each."""

    sources: list[np.ndarray]  # the source face crops, in the order given
    driving: np.ndarray  # the driving face crop
    result: np.ndarray  # the source face in the driving pose
    renderer: Renderer  # "generator" or "decoder" (see `model.daegan`)
    num_faces: tuple[int, ...]  # faces found in each source photo, then in the driving photo (the largest is used)

    def grid(self) -> np.ndarray:
        """One row: sources | driving | result, `(size, (K + 2) * size, 3)` uint8."""
        return np.concatenate([*self.sources, self.driving, self.result], axis=1)


@dataclass(frozen=True)
class ReenactResult:
    """What `reenact_files` wrote."""

    out: Path  # the file written
    kind: Literal["image", "video"]  # a grid picture (photo driver) or a video (video driver)
    renderer: Renderer  # which network drew the results: "generator" (G) or "decoder" (P's decoder, stage 1)
    num_frames: int  # frames written: 1 for a photo; for a video every decoded frame, or its constant-rate resampling
    filled: int  # video frames where the face was lost and the nearest frame's box was used
    width: int  # output picture or video frame size in pixels
    height: int
    several_faces: tuple[tuple[Path, int], ...]  # (photo, faces found) for each photo showing more than one
    strip: Path | None = None  # the strip picture written beside a video, if one was asked for


def load_sources(paths: Sequence[Path], size: int) -> list[FaceCrop]:
    """Each source photo's largest face, cropped as `prepare` crops frames (`(size, size, 3)` uint8), and how many
    faces the photo shows."""
    if not paths:
        raise ValueError("give at least one source photo")
    return [crop_largest_face(read_image(path), size, source=path) for path in paths]


def reenact_photo(
    model: DAEGAN,
    sources: Sequence[np.ndarray],
    driving: np.ndarray,
    *,
    source_names: Sequence[str | Path] | None = None,
    driving_name: str | Path = "driving",
    renderer: Renderer | None = None,
    keep_background: bool = True,
    size: int | None = None,
) -> PhotoReenactment:
    """Reenact in memory: RGB uint8 photos in (whole pictures; faces are found and cropped here), crops and the
    result out, `size` a side (`output_size`). The names label the `DataError` raised when a photo has no face;
    `renderer` None is the model's default (see `DAEGAN.default_renderer`); `keep_background` as `DAEGAN.reenact`
    takes it."""
    if not sources:
        raise ValueError("give at least one source photo")
    size = output_size(model, size)
    names = list(source_names) if source_names is not None else [f"source {i}" for i in range(len(sources))]
    faces = [crop_largest_face(img, size, source=name) for img, name in zip(sources, names, strict=True)]
    driving_face = crop_largest_face(driving, size, source=driving_name)
    crops = [face.crop for face in faces]
    out = model.reenact(crops, driving_face.crop, renderer=renderer, keep_background=keep_background, size=size)
    return PhotoReenactment(
        crops,
        driving_face.crop,
        model.to_images(out.image[0]),
        out.renderer,
        tuple(face.num_faces for face in [*faces, driving_face]),
    )


def output_size(model: DAEGAN, size: int | None) -> int:
    """The side of crops and results: `size` when given, else `OUTPUT_SIZE` or the model's own size if larger."""
    if size is not None and size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return size or max(model.size, OUTPUT_SIZE)


def reenact_files(
    checkpoint: str | Path | DAEGAN,
    sources: Sequence[Path],
    driving: Path,
    out: Path,
    *,
    device: torch.device | str = "auto",
    renderer: Renderer | None = None,
    progress: bool = True,
    strip: Path | None = None,
    strip_columns: int = 8,
    keep_background: bool = True,
    size: int | None = None,
    motion: Motion = "absolute",
) -> ReenactResult:
    """Make the face of the `sources` photos (one person, K >= 1) follow `driving` (a photo or a video) into `out`.

    A photo driver writes a grid picture (`out` .png/.jpg); a video driver writes a video (`out` .mp4), and with
    `strip` a picture of `strip_columns` of its frames (module docstring). `checkpoint` is a checkpoint file or an
    already loaded model (then `device` is ignored). `renderer` picks G ("generator") or P's decoder ("decoder");
    None is the checkpoint's default. `keep_background`: results are pasted over the first source crop, which shows
    outside the head (`model.composite`); False: the renderer's whole frame. `size`: pixels a side of crops and
    results (`output_size`). `motion` "relative" (a video driver only): the source keeps its own face and resting
    pose and takes on the driver's motion about the driving video's mean code (`daegan.relative_pose`). Bad input
    raises `DataError` naming the file, and `out` is then left as it was.
    """
    sources, driving, out = [Path(s) for s in sources], Path(driving), Path(out)
    if not sources:
        raise ValueError("give at least one source photo")
    is_video = driving.suffix.lower() in VIDEO_SUFFIXES
    if motion not in ("absolute", "relative"):
        raise ValueError(f"motion must be 'absolute' or 'relative', got {motion!r}")
    if motion == "relative" and not is_video:
        raise ValueError("relative motion follows a driving video; a photo has no motion to follow")
    wanted = VIDEO_OUT_SUFFIXES if is_video else IMAGE_SUFFIXES
    if out.suffix.lower() not in wanted:
        driver = "a video" if is_video else "a photo"
        raise DataError(out, f"the output of {driver} driver must be {'/'.join(wanted)}")
    for path in (out, strip):
        if path is not None and path.is_dir():
            raise DataError(path, "is a folder; give an output file")
    if strip is not None:
        if not is_video:
            raise DataError(strip, "a strip is made of a video's frames; a photo driver's output is already a picture")
        if strip.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(strip, f"the strip is a picture: {'/'.join(IMAGE_SUFFIXES)}")
        if strip_columns < 1:
            raise ValueError(f"strip_columns must be at least 1, got {strip_columns}")
    if isinstance(checkpoint, DAEGAN):
        model = checkpoint
    else:
        model = DAEGAN.from_checkpoint(checkpoint, pick_device(device) if isinstance(device, str) else device)
    size = output_size(model, size)
    if is_video:
        faces = load_sources(sources, size)
        several = tuple((path, face.num_faces) for path, face in zip(sources, faces) if face.num_faces > 1)
        return _reenact_video(
            model,
            [face.crop for face in faces],
            driving,
            out,
            renderer=renderer,
            progress=progress,
            several_faces=several,
            strip=(strip, strip_columns) if strip is not None else None,
            keep_background=keep_background,
            size=size,
            motion=motion,
        )
    images = [read_image(path) for path in sources]
    photo = reenact_photo(
        model,
        images,
        read_image(driving),
        source_names=sources,
        driving_name=driving,
        renderer=renderer,
        keep_background=keep_background,
        size=size,
    )
    grid = photo.grid()
    with atomic_file(out) as tmp:
        write_image(tmp, grid)
    several = tuple((path, n) for path, n in zip([*sources, driving], photo.num_faces) if n > 1)
    return ReenactResult(out, "image", photo.renderer, 1, 0, grid.shape[1], grid.shape[0], several)


@dataclass(frozen=True)
class DrivingTrack:
    """The driving face followed through a video, and the constant-rate timeline the output is written at."""

    fps: float  # the output's frame rate: the stated rate, or a variable-rate video's steady rate
    squares: list[Box]  # the face's crop square in every decoded frame
    filled: int  # frames where no face was followed that took the nearest tracked frame's square
    times: list[float]  # each decoded frame's timestamp, seconds from the first
    schedule: list[int]  # the decoded frame shown at each output frame: every frame once, unless the rate varies


def track_driving_face(video: Path, *, progress: tqdm | None = None) -> DrivingTrack:
    """The driving face's crop square in every frame of `video`, followed as `prepare` follows a speaker, at the
    frames' real timestamps; a variable-rate video gets a constant-rate schedule (`video.constant_rate_schedule`)."""
    native_fps, num_frames, _ = probe_video(video)
    detections, times = [], []
    for _, time, img in decode_timed_frames(video, range(num_frames)):
        detections.append(detect_faces(img))
        times.append(time)
        if progress is not None:
            progress.update()
    if not detections:
        raise DataError(video, "no frame could be decoded")
    check_no_frames_lost(video, times, num_frames, native_fps)
    boxes = follow_face(detections, np.asarray(times))  # a Box, or the reason there is none, per frame
    have = [i for i, box in enumerate(boxes) if isinstance(box, Box)]
    if not have:
        raise DataError(video, f"no face found in any of its {len(boxes)} frames")
    nearest = np.asarray(have)
    squares = []
    for i, box in enumerate(boxes):
        if not isinstance(box, Box):
            box = boxes[int(nearest[np.abs(nearest - i).argmin()])]  # the nearest tracked frame's box
        squares.append(face_square(box))
    if len(times) < 2 or is_constant_rate(times, native_fps):
        return DrivingTrack(native_fps, squares, len(boxes) - len(have), times, list(range(len(squares))))
    fps = steady_rate(times)
    return DrivingTrack(fps, squares, len(boxes) - len(have), times, constant_rate_schedule(times, fps))


def _reenact_video(
    model: DAEGAN,
    crops: list[np.ndarray],
    driving: Path,
    out: Path,
    *,
    renderer: Renderer | None,
    progress: bool,
    several_faces: tuple[tuple[Path, int], ...],
    strip: tuple[Path, int] | None = None,
    keep_background: bool = True,
    size: int,
    motion: Motion = "absolute",
) -> ReenactResult:
    """The video half of `reenact_files`: track, then crop, reenact and write in chunks of the model's batch;
    `strip` (path, columns) also writes the strip picture. Crops and results are `size` a side. Relative `motion`
    takes one more pass over the video first: the driving face's mean code."""
    _, num_frames, _ = probe_video(driving)  # a DataError for a missing or unreadable video, before any work
    passes = 3 if motion == "relative" else 2
    with tqdm(total=passes * num_frames, unit="frame", disable=not progress, leave=False) as bar:
        bar.set_postfix_str(f"{driving.name}: track")
        track = track_driving_face(driving, progress=bar)
        repeats = Counter(track.schedule)  # how many output frames show each decoded frame
        # the container's frame count can be off; the decoded one not
        bar.total = (passes - 1) * len(track.squares) + len(repeats)
        motion_about = None  # relative motion: (the driving video's mean code, the sources' mean code)
        if motion == "relative":
            bar.set_postfix_str(f"{driving.name}: mean pose")
            motion_about = (
                _driving_mean(model, driving, track, size, bar),
                model.encode_pose(crops, normalize=False).mean(dim=0),
            )
        bar.set_postfix_str(f"{driving.name}: reenact")
        embedding = model.embed_face(crops)  # embedded once, drawn in every pose
        shown: dict[int, np.ndarray] = {}  # the strip's decoded frames -> their (size, 2 size, 3) driving | result
        if strip is not None:
            positions = np.linspace(0, len(track.schedule) - 1, min(strip[1], len(track.schedule)))
            shown = {track.schedule[int(round(p))]: None for p in positions}
        written = 0
        with atomic_file(out) as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*VIDEO_CODEC), track.fps, (2 * size, size))
            if not writer.isOpened():
                raise DataError(out, f"OpenCV cannot write a {VIDEO_CODEC} video here")
            try:
                frames = decode_frames(driving, sorted(repeats), variable_rate=True)  # timing checked by the track
                for batch in _batches(frames, model.batch_size):
                    driving_crops = np.stack([crop_square(img, track.squares[i], size) for i, img in batch])
                    pose_code = model.encode_pose(driving_crops, normalize=False)  # P sees them at S
                    if motion_about is not None:
                        pose_code = relative_pose(pose_code, *motion_about)
                    drawn = model.draw(
                        crops,
                        pose_code,
                        renderer=renderer,
                        keep_background=keep_background,
                        size=size,
                        embedding=embedding,
                    )
                    results = model.to_images(drawn)  # (n, size, size, 3)
                    pairs = np.concatenate([driving_crops, results], axis=2)  # (n, size, 2 size, 3): driving | result
                    for (index, _), pair in zip(batch, pairs):
                        if index in shown:
                            shown[index] = pair
                        for _ in range(repeats[index]):
                            writer.write(cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
                        written += repeats[index]
                    bar.update(len(batch))
            finally:
                writer.release()
            if strip is not None:  # inside the video's atomic write: both files appear, or neither changes
                with atomic_file(strip[0]) as strip_tmp:
                    write_image(strip_tmp, strip_picture([shown[i] for i in sorted(shown)], size))
    return ReenactResult(
        out,
        "video",
        renderer or model.default_renderer,
        written,
        track.filled,
        2 * size,
        size,
        several_faces,
        strip[0] if strip is not None else None,
    )


def _driving_mean(model: DAEGAN, driving: Path, track: DrivingTrack, size: int, bar: tqdm) -> torch.Tensor:
    """The mean raw pose code of the driving face over every decoded frame of `driving`, cropped as it is drawn."""
    total, count = torch.zeros(model.pose_dim, dtype=torch.float64), 0
    frames = decode_frames(driving, range(len(track.squares)), variable_rate=True)
    for batch in _batches(frames, model.batch_size):
        crops = np.stack([crop_square(img, track.squares[i], size) for i, img in batch])
        total += model.encode_pose(crops, normalize=False).double().sum(dim=0)
        count += len(batch)
        bar.update(len(batch))
    return (total / count).float()


def strip_picture(pairs: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Driving | result pairs `(S, 2S, 3)` as one picture: the driving crops in a row, the results below it, each
    enlarged by the whole factor that makes it at least `STRIP_MIN_CELL` pixels (nearest neighbour: the model's
    pixels, not invented ones), `(2 f S, n f S, 3)` uint8."""
    factor = -(-STRIP_MIN_CELL // size)  # ceil
    driving = np.concatenate([pair[:, :size] for pair in pairs], axis=1)
    results = np.concatenate([pair[:, size:] for pair in pairs], axis=1)
    picture = np.concatenate([driving, results], axis=0)
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def _batches(frames: Iterator[tuple[int, np.ndarray]], size: int) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Group an iterator of (index, frame) into lists of at most `size`."""
    batch: list[tuple[int, np.ndarray]] = []
    for item in frames:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
