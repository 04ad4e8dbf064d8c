"""Frame collections: one reader for every layout posedex accepts, returning one table of frames.

Layouts (DESIGN.md, "Data flow"), recognised per file by its place under the root:
- ``frames``:          ``<root>/<identity>/<video>/<frame>.{jpg,jpeg,png}`` (SynthVox, `daegan prepare`, your own);
- ``voxceleb1-crops``: ``<root>/<Name>/1.6/<video>/<frame>.jpg``, VoxCeleb1's 1-fps face-crop release; frame stems
  are 25 fps frame numbers, and `vox1_meta.csv` (beside the root or in it) maps names to VoxCeleb1 ids;
- ``video``:           ``<root>/<id>/<ytid>/<utt>.{mp4,...}``, sampled at ``fps`` with OpenCV; each utterance is one
  continuous clip and becomes the video ``<ytid>_<utt>`` (the name `daegan prepare` gives its frames). Frames are
  sampled by their real timestamps (`video.frame_times`, as `daegan prepare` samples), so a variable-rate video
  gives the frames at the right times; that reads every frame once while scanning (`benchmarks/video_scan.py`).

Choices:
- ``path`` is absolute: the table stands on its own; the index stores it relative to the root.
- ``time`` is seconds into the video when the layout knows it (VoxCeleb crops, videos, a ``time`` column in
  ``labels.csv``, a video folder's ``times.csv`` that `daegan prepare` writes), else NaN: a frame file alone does
  not say its frame rate. Times let a search tell one moment from another (`retrieval.hit_rules`).
- Hidden files and folders (``.*``) are ignored: atomic writers keep their unfinished work there.
- Unreadable videos are skipped and listed (`CollectionScan.skipped`); a root that matches no layout is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model.data.errors import DataError
from model.data.images import IMAGE_SUFFIXES, read_image
from model.data.video import VIDEO_SUFFIXES, frame_times, probe_video, read_video_frame, sampled_frame_indices
from model.data.voxceleb import VOX_FPS, normalise_name, read_meta

FRAME_COLUMNS = ["identity", "video", "frame", "time", "path", "layout"]
LABELS_FILE = "labels.csv"
TIMES_FILE = "times.csv"  # in a frames-layout video folder: frame, time (seconds), as `daegan prepare` writes it
META_FILE = "vox1_meta.csv"
VOX_CROP_VERSION_DIR = "1.6"  # the face-crop release's fixed middle folder
LAYOUT_HELP = (
    "expected <identity>/<video>/<frame>.jpg|png, <Name>/1.6/<video>/<frame>.jpg (VoxCeleb1 face crops) "
    "or <id>/<video>/<utt>.mp4 (videos)"
)

_TRAILING_DIGITS = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class CollectionScan:
    """What a scan of a collection root found: one row per frame, and the files it had to skip (path, reason)."""

    root: Path
    frames: pd.DataFrame
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def read_collection(root: str | Path, *, fps: float = 1.0, meta: str | Path | None = None) -> pd.DataFrame:
    """Read a frame collection into a table: identity, video, frame, time, path, layout, and any labels.

    ``fps`` samples video layouts (0 takes every frame). ``meta`` is a ``vox1_meta.csv``; found beside or inside
    the root when not given. Skipped files are dropped silently here; use `scan_collection` to list them.
    """
    return scan_collection(root, fps=fps, meta=meta).frames


def scan_collection(root: str | Path, *, fps: float = 1.0, meta: str | Path | None = None) -> CollectionScan:
    """Like `read_collection`, and also report the files that could not be used."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such folder")
    if not root.is_dir():
        raise DataError(root, "not a folder (a frame collection is a folder)")
    if fps < 0:
        raise DataError(root, f"fps must be >= 0, got {fps}")
    rows: list[dict] = []
    skipped: list[tuple[Path, str]] = []
    times: dict[tuple[str, str], dict[int, float]] = {}  # (identity, video) -> frame -> seconds, from times.csv
    for path, parts in _walk(root):
        suffix = path.suffix.lower()
        if parts[-1] == TIMES_FILE and len(parts) == 3:
            try:
                times[(parts[0], parts[1])] = _read_times(path)
            except DataError as err:
                skipped.append((err.path, err.reason))
        elif suffix in IMAGE_SUFFIXES and len(parts) == 3:
            identity, video, name = parts
            rows.append(_image_row(identity, video, name, path, "frames"))
        elif suffix in IMAGE_SUFFIXES and len(parts) == 4 and parts[1] == VOX_CROP_VERSION_DIR:
            name, _, video, stem = parts
            row = _image_row(name, video, stem, path, "voxceleb1-crops")
            row["time"] = row["frame"] / VOX_FPS
            rows.append(row)
        elif suffix in VIDEO_SUFFIXES and len(parts) == 3:
            identity, ytid, _ = parts
            try:
                rows.extend(_video_rows(path, identity, f"{ytid}_{path.stem}", fps))
            except DataError as err:
                skipped.append((err.path, err.reason))
    if not rows:
        reason = f"no readable frames found; {LAYOUT_HELP}" if skipped else f"no frames found; {LAYOUT_HELP}"
        raise DataError(root, reason)
    frames = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    if times:
        known = [
            times.get((i, v), {}).get(f, np.nan)
            for i, v, f in zip(frames["identity"], frames["video"], frames["frame"])
        ]
        frames["time"] = frames["time"].where(frames["time"].notna(), pd.Series(known, dtype=float))
    frames = _apply_meta(frames, root, meta)
    frames = _merge_labels(frames, root)
    frames = frames.sort_values(["identity", "video", "frame"], kind="stable").reset_index(drop=True)
    return CollectionScan(root=root, frames=frames, skipped=skipped)


def _walk(root: Path):
    """Yield (path, parts relative to root) for every non-hidden file, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).parts
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name, (*rel, name)


def _frame_number(stem: str, path: Path) -> int:
    """A frame's number from its file stem: all digits (``0000375``) or trailing digits (``frame_12``)."""
    match = _TRAILING_DIGITS.search(stem)
    if match is None:
        raise DataError(path, "frame file name has no frame number (expected digits, e.g. 00012.png)")
    return int(match.group(1))


def _image_row(identity: str, video: str, name: str, path: Path, layout: str) -> dict:
    stem = Path(name).stem
    return {
        "identity": identity,
        "video": video,
        "frame": _frame_number(stem, path),
        "time": np.nan,
        "path": str(path.resolve()),
        "layout": layout,
    }


def _video_rows(path: Path, identity: str, video: str, fps: float) -> list[dict]:
    native_fps, _, _ = probe_video(path)
    times = frame_times(path)  # every frame's real timestamp: a variable-rate video is sampled at the right times
    resolved = str(path.resolve())
    return [
        {
            "identity": identity,
            "video": video,
            "frame": index,
            "time": times[index],
            "path": resolved,
            "layout": "video",
        }
        for index in sampled_frame_indices(times, native_fps, fps)
    ]


def _read_times(path: Path) -> dict[int, float]:
    """A video folder's ``times.csv`` (frame, time) as frame -> seconds."""
    try:
        table = pd.read_csv(path)
        return dict(zip(table["frame"].astype(int), table["time"].astype(float)))
    except (OSError, KeyError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read frame times ({err.__class__.__name__})") from err


def _apply_meta(frames: pd.DataFrame, root: Path, meta: str | Path | None) -> pd.DataFrame:
    """Map VoxCeleb1 face-crop names to VoxCeleb1 ids (keeping the name) when a meta table is at hand."""
    crops = frames["layout"] == "voxceleb1-crops"
    if not crops.any():
        return frames
    if meta is None:
        candidates = [root / META_FILE, root.parent / META_FILE]
        meta = next((c for c in candidates if c.is_file()), None)
        if meta is None:
            return frames
    table = read_meta(Path(meta))
    name_to_id = dict(zip(table["name"], table["id"]))
    names = frames.loc[crops, "identity"]
    ids = names.map(lambda n: name_to_id.get(normalise_name(n)))
    unknown = sorted(names[ids.isna()].unique())
    if unknown:
        raise DataError(Path(meta), f"no VoxCeleb1 id for {len(unknown)} identities, e.g. {unknown[0]!r}")
    frames = frames.copy()
    frames["name"] = np.where(crops, frames["identity"], None)
    frames.loc[crops, "identity"] = ids
    return frames


def _merge_labels(frames: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Join ``labels.csv`` (ground truth per frame, e.g. SynthVox pose parameters) on identity, video, frame."""
    path = root / LABELS_FILE
    if not path.is_file():
        return frames
    try:
        labels = pd.read_csv(path, dtype={"identity": str, "video": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read labels ({err.__class__.__name__})") from err
    keys = ["identity", "video", "frame"]
    missing = [k for k in keys if k not in labels.columns]
    if missing:
        raise DataError(path, f"labels need columns identity, video, frame; missing {', '.join(missing)}")
    if labels.duplicated(keys).any():
        raise DataError(path, "labels have more than one row for the same identity, video, frame")
    clashing = [c for c in labels.columns if c in frames.columns and c not in keys and c != "time"]
    if clashing:
        raise DataError(path, f"label columns clash with the frame table: {', '.join(clashing)}")
    if "time" in labels.columns:
        frames = frames.drop(columns="time")
    merged = frames.merge(labels, on=keys, how="left", validate="one_to_one")
    return merged[[*FRAME_COLUMNS, *[c for c in merged.columns if c not in FRAME_COLUMNS]]]


def load_frame(path: str | Path, frame: int = 0) -> np.ndarray:
    """One frame as RGB uint8 ``(H, W, 3)``: an image file, or frame number ``frame`` of a video file."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return read_video_frame(path, frame)
    return read_image(path)
