"""The frames an evaluation reads: one collection root, what kind it is, and its frames as model input.

A collection whose ``labels.csv`` carries SynthVox's pose columns is *labelled*: its ground truth drives the
cross-identity and retrieval metrics, and its ``synthvox.json`` holds the recipe (seed, version) that re-renders its
identities in any pose, in the scene of any of its videos. A collection without ``labels.csv`` (prepared videos,
photos, VoxCeleb) is *real*: the landmark model judges it. A ``labels.csv`` without the pose columns, or a labelled
collection without its seed, is bad input.

Choices:
- Frames are read from their files as they are on disk (PNG for SynthVox and `daegan prepare`; no re-encoding).
- A collection larger than `max_frames` keeps whole videos drawn at random (seeded) up to that many frames, so every
  video the evaluation sees is complete.
- Identities are named ``<collection>/<identity>`` across collections, so two roots never share an identity by name.
- Given the checkpoint's `TrainingRecord` and `held_out_only`, the identities it trained on are left out of a
  collection it partly saw (`EvalCollection.left_out`; `provenance` says why), before the draw of whole videos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from model.checkpoint import TrainingRecord
from model.daegan import images_to_frames
from model.data.collection import LABELS_FILE, load_frame, read_collection
from model.data.errors import DataError
from model.data.synthvox import POSE_COLUMNS, RECIPE_FILE, Pose, Recipe, identity_index, video_index

RENDER_TOLERANCE = 4.0  # mean 8-bit difference allowed between a frame and its re-render (JPEG collections differ)


@dataclass
class EvalCollection:
    """One collection's frames as the evaluation uses them."""

    name: str  # the root's folder name (made unique among roots): labels sections, pictures and identities
    root: Path
    frames: pd.DataFrame  # the frame table (`read_collection`), the rows in use, index 0..N-1
    images: torch.Tensor  # (N, 3, S, S) in [-1, 1]: every row's frame as model input
    synth_seed: int | None  # SynthVox seed of a labelled collection, None for real frames
    frame_size: int  # side of the frames on disk (renders of the ground truth are made at it)
    left_out: tuple[str, ...] = ()  # identities on disk left out because the checkpoint trained on them
    raw: list[np.ndarray] = field(default_factory=list)  # every row's frame as on disk, RGB uint8 (frame_size a side)

    @property
    def labelled(self) -> bool:
        return self.synth_seed is not None

    @property
    def poses(self) -> np.ndarray:
        """(N, 7) ground-truth pose parameters in `POSE_COLUMNS` order (labelled collections only)."""
        assert self.labelled, "real frames have no ground-truth pose"
        return self.frames[list(POSE_COLUMNS)].to_numpy(dtype=np.float64)

    @property
    def identities(self) -> np.ndarray:
        """(N,) identity of each row, prefixed with the collection's name."""
        return (self.name + "/" + self.frames["identity"].astype(str)).to_numpy()

    @property
    def videos(self) -> np.ndarray:
        """(N,) video of each row, unique across identities and collections."""
        return (
            self.name + "/" + self.frames["identity"].astype(str) + "/" + self.frames["video"].astype(str)
        ).to_numpy()

    @cached_property
    def recipe(self) -> Recipe:
        """The SynthVox recipe of a labelled collection (its ``synthvox.json``), read once."""
        assert self.labelled, "real frames have no SynthVox recipe"
        return Recipe.read(self.root / RECIPE_FILE)

    def render_truth(self, identity: str, video: str, poses: np.ndarray) -> np.ndarray:
        """SynthVox identity `identity` (a folder name, ``sv0007``) in the scene of its video `video` (``v01``), in
        each pose `(M, 7)`: `(M, s, s, 3)` uint8. Cross-identity reenactment's ground truth is the source identity
        in its own video's scene, in the driver's poses."""
        number, video_number = identity_index(identity), video_index(video)
        if number is None or video_number is None:
            raise DataError(self.root / identity / video, "not a SynthVox video folder (svNNNN/vNN): no ground truth")
        return np.stack(
            [
                self.recipe.render(
                    number, video_number, Pose(**dict(zip(POSE_COLUMNS, map(float, p)))), self.frame_size
                )
                for p in poses
            ]
        )

    def ideal_faces(self) -> torch.Tensor:
        """Each row's person rendered frontal and neutral in its own video's scene, `(N, 3, S, S)` as `images`: the
        embedded face eq. 1 asks F for. It keeps the video's scene, light and framing, since warped by P it rebuilds
        that video's frames (eq. 2); so no face embedder gives a probe more identity than these do."""
        neutral = np.zeros((1, len(POSE_COLUMNS)))
        videos = self.frames[["identity", "video"]].astype(str)
        rendered = {
            (identity, video): self.render_truth(identity, video, neutral)[0]
            for identity, video in videos.drop_duplicates().itertuples(index=False, name=None)
        }
        rows = [rendered[key] for key in videos.itertuples(index=False, name=None)]
        return images_to_frames(np.stack(rows), self.images.shape[-1])


def load_collection(
    root: str | Path,
    *,
    size: int,
    fps: float,
    max_frames: int,
    seed: int,
    name: str | None = None,
    training: TrainingRecord | None = None,
    held_out_only: bool = False,
    progress: bool = True,
) -> EvalCollection:
    """Read `root` for evaluation at the model's frame side `size` (module docstring); `DataError` on bad input.
    With `held_out_only`, the identities `training` (the checkpoint's record) trained on are left out when some,
    not all, of the collection's are."""
    root = Path(root)
    table = read_collection(root, fps=fps)
    seed_of_synth = _labelled_seed(root, table)
    left_out = _seen_in_training(table, seed_of_synth, training) if held_out_only else ()
    table = table[~table["identity"].isin(left_out)]
    table = _keep_whole_videos(table, max_frames, seed).reset_index(drop=True)
    name = name or root.resolve().name
    first = load_frame(table["path"].iloc[0], table["frame"].iloc[0])
    collection = EvalCollection(name, root, table, torch.zeros(0), seed_of_synth, first.shape[0], left_out)
    if collection.labelled:
        _check_renders(collection, first)  # before the long read: bad input fails at once
    raw = [
        load_frame(p, f)
        for p, f in tqdm(
            zip(table["path"], table["frame"]),
            total=len(table),
            unit="frame",
            desc=f"reading {name}",
            disable=not progress,
            leave=False,
        )
    ]
    collection.images = images_to_frames(raw, size)  # (N, 3, S, S)
    collection.raw = raw
    return collection


def _labelled_seed(root: Path, table: pd.DataFrame) -> int | None:
    """The SynthVox seed of a labelled collection, None for one without labels; `DataError` when half-labelled."""
    labels = root / LABELS_FILE
    if not labels.is_file():
        return None
    missing = [c for c in POSE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(
            labels,
            f"no pose columns {', '.join(missing)}: the ground-truth metrics need SynthVox "
            "labels (yaw, pitch, roll, mouth_open, smile, blink, brow_raise)",
        )
    unlabelled = int(table[list(POSE_COLUMNS)].isna().any(axis=1).sum())
    if unlabelled:
        raise DataError(labels, f"{unlabelled} frames have no pose label")
    return Recipe.read(root / RECIPE_FILE).seed


def _seen_in_training(table: pd.DataFrame, synth_seed: int | None, training: TrainingRecord | None) -> tuple[str, ...]:
    """The identities of `table` that `training` trained on, when some but not all were; else none."""
    identities = sorted(set(table["identity"].astype(str)))
    seen = tuple(i for i in identities if training is not None and training.trained_as(i, synth_seed))
    return seen if len(seen) < len(identities) else ()


def _keep_whole_videos(table: pd.DataFrame, max_frames: int, seed: int) -> pd.DataFrame:
    """At most `max_frames` rows, whole videos drawn at random (all of them when they fit)."""
    if len(table) <= max_frames:
        return table
    groups = list(table.groupby(["identity", "video"], sort=True).indices.values())
    order = np.random.default_rng(seed).permutation(len(groups))
    kept, total = [], 0
    for g in order:
        if total + len(groups[g]) > max_frames and kept:
            continue
        kept.append(groups[g])
        total += len(groups[g])
    return table.iloc[np.sort(np.concatenate(kept))]


def _check_renders(collection: EvalCollection, first: np.ndarray) -> None:
    """The recipe and labels must re-render the first frame (in its video's scene, for a v2 recipe): otherwise every
    ground truth would be wrong."""
    row = collection.frames.iloc[0]
    truth = collection.render_truth(str(row["identity"]), str(row["video"]), collection.poses[:1])[0]
    if truth.shape != first.shape:
        raise DataError(Path(row["path"]), f"frame is {first.shape[:2]}, its SynthVox render {truth.shape[:2]}")
    difference = float(np.abs(truth.astype(np.float64) - first).mean())
    if difference > RENDER_TOLERANCE:
        raise DataError(
            Path(row["path"]),
            f"differs from its SynthVox re-render by {difference:.1f} levels on "
            f"average: {RECIPE_FILE} or {LABELS_FILE} do not belong to these frames",
        )
