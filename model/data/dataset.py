"""The training dataset: K frames of one video plus a target frame of the same video (paper sec. 3.1).

The face embedder fuses the K frames into the video's embedded face (eq. 1); the pose embedder reconstructs the
target from it (eq. 2). Choices where the paper is silent:
- Every frame is a target once per epoch; its K source frames are drawn from the *other* frames of its video
  (without replacement while there are enough, then with), so the target cannot simply be copied through.
- The draw is seeded by (seed, epoch, index), carried with the index by `EpochSampler`: a batch is the same
  whatever the number of workers, and a resumed run sees the same batches it would have seen.
- Real frames keep a share of each epoch (`data.real_share`): where labelled synthetic frames outnumber them, the
  real (unlabelled) frames are targets more than once per epoch, each time with a fresh draw of source frames (the
  copy's number joins the seed), so that a larger synthetic set does not dilute the faces the product is used on.
- Frames are centre-cropped to a square, then resized with area interpolation; tensors are `(3, S, S)` in [-1, 1].
- A target's labels (SynthVox's head pose and expression, `POSE_COLUMNS`) come standardised by the mean and
  standard deviation of the labelled frames of this table (for `loss.label_weight`); a frame without them (a real
  one) has NaN labels.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from model.data.collection import load_frame
from model.data.synthvox import POSE_COLUMNS


class VideoSample(NamedTuple):
    """One training example."""

    frames: torch.Tensor  # (K, 3, S, S) in [-1, 1]: frames of one video for the face embedder
    target: torch.Tensor  # (3, S, S) in [-1, 1]: a frame of the same video to reconstruct
    identity: int  # index into `VideoFramesDataset.identities`
    row: int  # row of the frame table the target came from
    labels: torch.Tensor  # (len(POSE_COLUMNS),): the target's standardised labels, NaN where it has none


def to_square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop an RGB `(H, W, 3)` image to a square and resize it to `(size, size, 3)`."""
    height, width = img.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = img[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 `(H, W, 3)` to float `(3, H, W)` in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(127.5).sub(1.0)


class VideoFramesDataset(Dataset):
    """K source frames and one target frame of a video, for every frame of a frame table."""

    def __init__(
        self, frames: pd.DataFrame, *, num_frames: int, size: int, seed: int = 0, real_share: float = 0.0
    ) -> None:
        if frames.empty:
            raise ValueError("the frame table is empty")
        self.frames = frames.reset_index(drop=True)
        self.num_frames = num_frames
        self.size = size
        self.seed = seed
        self.identities: list[str] = sorted(self.frames["identity"].unique())
        identity_index = {name: i for i, name in enumerate(self.identities)}
        self._identity = self.frames["identity"].map(identity_index).to_numpy()
        groups = self.frames.groupby(["identity", "video"], sort=False).indices
        self._video_rows = np.empty(len(self.frames), dtype=object)  # row -> rows of its video
        for rows in groups.values():
            for row in rows:
                self._video_rows[row] = rows
        self._labels = standardised_labels(self.frames)
        self.real_rows = np.flatnonzero(self._labels.isnan().all(dim=1).numpy())  # frames without labels
        self.real_copies = real_copies(len(self.real_rows), len(self.frames) - len(self.real_rows), real_share)

    def __len__(self) -> int:
        return len(self.frames)

    def source_rows(self, row: int, epoch: int = 0, copy: int = 0) -> np.ndarray:
        """The K rows drawn as source frames for target `row` in `epoch` (its `copy`-th time in that epoch)."""
        rng = np.random.default_rng([self.seed, epoch, row, copy] if copy else [self.seed, epoch, row])
        others = self._video_rows[row][self._video_rows[row] != row]
        if others.size == 0:  # a one-frame video: the target is all there is
            return np.full(self.num_frames, row)
        replace = others.size < self.num_frames
        return rng.choice(others, size=self.num_frames, replace=replace)

    def _load(self, row: int) -> torch.Tensor:
        record = self.frames.iloc[row]
        return to_tensor(to_square(load_frame(record["path"], int(record["frame"])), self.size))

    def __getitem__(self, key: int | tuple[int, ...]) -> VideoSample:
        """`key`: a row, or `EpochSampler`'s (row, epoch, copy) (a missing epoch or copy is 0)."""
        row, epoch, copy = (*(key if isinstance(key, tuple) else (key,)), 0, 0)[:3]
        sources = torch.stack([self._load(int(r)) for r in self.source_rows(row, epoch, copy)])  # (K, 3, S, S)
        return VideoSample(sources, self._load(row), int(self._identity[row]), int(row), self._labels[row])


def standardised_labels(frames: pd.DataFrame) -> torch.Tensor:
    """(N, len(POSE_COLUMNS)) float32: each frame's labels less the labelled frames' mean, over their standard
    deviation; a row of NaN for a frame without labels (or all NaN when no frame has them)."""
    labels = frames.reindex(columns=list(POSE_COLUMNS)).astype(np.float64)
    labelled = labels.notna().all(axis=1)
    if not labelled.any():
        return torch.full(labels.shape, float("nan"))
    labels.loc[~labelled] = np.nan
    spread = labels[labelled].std(ddof=0).replace(0.0, 1.0)  # a constant label: centred, not divided by 0
    return torch.from_numpy(((labels - labels[labelled].mean()) / spread).to_numpy(np.float32))


def real_copies(num_real: int, num_labelled: int, share: float) -> float:
    """Times per epoch each real frame is a target so that real frames make at least `share` of the epoch's targets
    beside `num_labelled` synthetic ones: 1 where they already do, or where either kind is missing."""
    if share <= 0 or num_real == 0 or num_labelled == 0:
        return 1.0
    return max(1.0, share * num_labelled / ((1 - share) * num_real))


class EpochSampler(Sampler):
    """Yields (row, epoch, copy) keys: a seeded permutation per epoch, sharded across `num_replicas` processes.

    Every row comes once (copy 0); the `repeated` rows come `copies` times in all (a float >= 1): each whole extra
    copy for all of them, and the fraction as one more copy of a seeded draw of them, so an epoch has a fixed length
    (`total`). Without repeats the order is the permutation of the rows alone.
    """

    def __init__(
        self,
        length: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        repeated: np.ndarray | None = None,
        copies: float = 1.0,
    ):
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.repeated = np.zeros(0, np.int64) if repeated is None else np.asarray(repeated, np.int64)
        self.whole_copies = int(copies)  # copies >= 1
        self.fraction_rows = round((copies - self.whole_copies) * len(self.repeated))  # rows given one more copy
        self.total = length + (self.whole_copies - 1) * len(self.repeated) + self.fraction_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and source-frame draws the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.total, self.num_replicas))

    def _keys(self) -> tuple[np.ndarray, np.ndarray]:
        """This epoch's rows and copy numbers, in order."""
        rows, copy = [np.arange(self.length)], [np.zeros(self.length, np.int64)]
        for number in range(1, self.whole_copies):
            rows.append(self.repeated)
            copy.append(np.full(len(self.repeated), number))
        if self.fraction_rows:
            drawn = np.random.default_rng([self.seed, self.epoch, 1]).choice(self.repeated, self.fraction_rows, False)
            rows.append(np.sort(drawn))
            copy.append(np.full(self.fraction_rows, self.whole_copies))
        rows_all, copy_all = np.concatenate(rows), np.concatenate(copy)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.total)
            rows_all, copy_all = rows_all[order], copy_all[order]
        return rows_all, copy_all

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        rows, copy = self._keys()
        for row, number in zip(rows[self.rank :: self.num_replicas], copy[self.rank :: self.num_replicas]):
            yield int(row), self.epoch, int(number)


def make_loader(
    dataset: VideoFramesDataset,
    *,
    batch_size: int,
    workers: int,
    shuffle: bool = True,
    drop_last: bool = True,
    device: torch.device = torch.device("cpu"),
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """The DataLoader recipe for training: worker processes decode frames, pinned memory feeds a GPU.

    Call ``loader.sampler.set_epoch(epoch)`` before each epoch.
    """
    sampler = EpochSampler(
        len(dataset),
        seed=dataset.seed,
        shuffle=shuffle,
        num_replicas=num_replicas,
        rank=rank,
        repeated=dataset.real_rows,
        copies=dataset.real_copies,
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
    )
