"""The training dataset and its loader: K frames and a target of one video, seeded, the same across workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.data.collection import read_collection
from model.data.dataset import EpochSampler, VideoFramesDataset, make_loader, standardised_labels, to_square
from model.data.synthvox import POSE_COLUMNS


def _dataset(root: Path, num_frames: int = 2) -> VideoFramesDataset:
    return VideoFramesDataset(read_collection(root), num_frames=num_frames, size=16, seed=5)


def _level(img: torch.Tensor) -> int:
    """The grey level a fixture frame was written with, from its [-1, 1] tensor."""
    return round(float((img.mean() + 1) * 127.5))


def test_sample_holds_k_frames_of_the_targets_video(frames_tree: Path) -> None:
    dataset = _dataset(frames_tree, num_frames=3)
    sample = dataset[(9, 0)]
    assert sample.frames.shape == (3, 3, 16, 16) and sample.target.shape == (3, 16, 16)
    assert sample.frames.min() >= -1 and sample.frames.max() <= 1
    target = dataset.frames.iloc[sample.row]
    sources = dataset.frames.iloc[dataset.source_rows(sample.row)]
    assert (sources["video"] == target["video"]).all() and (sources["identity"] == target["identity"]).all()
    assert target.name not in sources.index  # the target itself is never a source while others exist
    assert _level(sample.target) == 10 * 1 + 3 * 0 + 1  # row 9 is p1/v0/00001.png
    assert dataset.identities[sample.identity] == target["identity"]


def test_labels_are_standardised_over_labelled_frames_and_nan_elsewhere() -> None:
    """SynthVox rows beside real ones (no label columns after the concat): the labelled rows come out with mean 0 and
    standard deviation 1 per parameter, a constant parameter centred at 0, real rows all NaN."""
    synth = pd.DataFrame({c: [1.0, 3.0] for c in POSE_COLUMNS}).assign(smile=[0.4, 0.4])
    frames = pd.concat([synth, pd.DataFrame({"identity": ["real"]})], ignore_index=True)
    labels = standardised_labels(frames)
    assert labels.shape == (3, len(POSE_COLUMNS))
    assert labels[0, 0].item() == pytest.approx(-1.0) and labels[1, 0].item() == pytest.approx(1.0)
    assert labels[:2, POSE_COLUMNS.index("smile")].tolist() == [0.0, 0.0]
    assert labels[2].isnan().all()
    assert standardised_labels(pd.DataFrame({"identity": ["a", "b"]})).isnan().all()  # no labelled frame at all


def test_short_videos_repeat_frames_and_one_frame_videos_use_the_target(tmp_path: Path) -> None:
    from tests.conftest import write_frame

    write_frame(tmp_path / "r" / "a" / "v" / "00000.png", 1)
    write_frame(tmp_path / "r" / "b" / "v" / "00000.png", 2)
    write_frame(tmp_path / "r" / "b" / "v" / "00001.png", 3)
    dataset = _dataset(tmp_path / "r", num_frames=4)
    assert dataset.source_rows(0).tolist() == [0, 0, 0, 0]
    assert dataset.source_rows(1).tolist() == [2, 2, 2, 2]


def test_draws_are_seeded_by_epoch(frames_tree: Path) -> None:
    dataset = _dataset(frames_tree)
    draws = [tuple(dataset.source_rows(row, epoch)) for epoch in range(6) for row in range(3)]
    assert draws[:3] == [tuple(dataset.source_rows(row, 0)) for row in range(3)]  # repeatable
    assert len(set(draws)) > 3  # and they change across epochs


def test_loader_batches_do_not_depend_on_workers(frames_tree: Path) -> None:
    dataset = _dataset(frames_tree)

    def first_epochs(workers: int) -> list[torch.Tensor]:
        loader = make_loader(dataset, batch_size=4, workers=workers)
        out = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            out += [torch.cat([batch.frames.flatten(), batch.target.flatten()]) for batch in loader]
        return out

    serial, parallel = first_epochs(0), first_epochs(2)
    assert len(serial) == 2 * (24 // 4)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    assert not torch.equal(serial[0], serial[6])  # epoch 1 is another order


def test_sampler_shards_cover_every_row_once() -> None:
    shards = [list(EpochSampler(23, seed=1, num_replicas=3, rank=r)) for r in range(3)]
    rows = sorted(row for shard in shards for row, _ in shard)
    assert rows == list(range(23)) and [len(s) for s in shards] == [8, 8, 7]


def test_to_square_centre_crops_before_resizing() -> None:
    img = np.zeros((10, 30, 3), np.uint8)
    img[:, 10:20] = 200  # the centre square
    assert to_square(img, 5).min() == 200


def test_a_corrupt_frame_is_reported_by_path(frames_tree: Path) -> None:
    import pytest

    from model.data.errors import DataError

    dataset = _dataset(frames_tree)
    bad = Path(dataset.frames.iloc[5]["path"])
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match="not an image|corrupt") as err:
        dataset[(5, 0)]
    assert err.value.path == bad
