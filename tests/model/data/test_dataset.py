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
    rows = sorted(row for shard in shards for row, _, _ in shard)
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


def _mixed_table(num_synthetic: int, num_real: int) -> pd.DataFrame:
    """A frame table of labelled (synthetic) videos of 10 frames and unlabelled (real) ones; no files behind it."""
    synthetic = pd.DataFrame(
        {
            "identity": [f"s{i // 20}" for i in range(num_synthetic)],
            "video": [f"v{i // 10}" for i in range(num_synthetic)],
        }
    ).assign(**{c: np.linspace(-1, 1, num_synthetic) for c in POSE_COLUMNS})
    real = pd.DataFrame({"identity": [f"r{i // 10}" for i in range(num_real)], "video": "v0"})
    table = pd.concat([synthetic, real], ignore_index=True)
    return table.assign(path="unused.png", frame=0)


def test_real_frames_repeat_to_their_share_of_each_epoch() -> None:
    """90 synthetic frames beside 10 real ones at real_share 0.25: real frames are 30 of the epoch's 120 targets
    (3 copies each, no fraction), every row comes at least once, and each (row, copy) key once."""
    dataset = VideoFramesDataset(_mixed_table(90, 10), num_frames=2, size=16, real_share=0.25)
    assert dataset.real_rows.tolist() == list(range(90, 100)) and dataset.real_copies == pytest.approx(3.0)
    sampler = EpochSampler(len(dataset), seed=2, repeated=dataset.real_rows, copies=dataset.real_copies)
    keys = list(sampler)
    assert len(keys) == sampler.total == 120 and len(set(keys)) == 120
    rows = np.array([row for row, _, _ in keys])
    assert set(rows) == set(range(100)) and (rows >= 90).sum() == 30
    assert not np.array_equal(rows[:20], np.sort(rows[:20]))  # shuffled together, not appended


def test_a_fractional_share_draws_which_real_frames_come_once_more() -> None:
    """copies 2.5 over 10 real rows: 5 of them a third time, a seeded draw that changes with the epoch; the epoch's
    length stays fixed."""
    sampler = EpochSampler(20, seed=0, repeated=np.arange(10, 20), copies=2.5)
    third_copies = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert len(keys) == sampler.total == 20 + 10 + 5
        third_copies.append(sorted(row for row, _, copy in keys if copy == 2))
        assert all(len(c) == 5 and set(c) <= set(range(10, 20)) for c in third_copies)
    assert len({tuple(c) for c in third_copies}) > 1


def test_real_share_already_met_or_one_kind_missing_repeats_nothing() -> None:
    from model.data.dataset import real_copies

    assert real_copies(620, 4800, 0.1) == 1.0  # make train's data: 11% real already
    assert real_copies(620, 18000, 0.1) == pytest.approx(0.1 * 18000 / (0.9 * 620))  # 300 identities: 3.23 copies
    assert real_copies(0, 100, 0.5) == real_copies(100, 0, 0.5) == real_copies(10, 100, 0.0) == 1.0
    sampler = EpochSampler(23, seed=1, repeated=np.arange(5), copies=1.0)
    sampler.set_epoch(3)  # without repeats: the permutation of the rows alone, as before the share existed
    assert [row for row, _, _ in sampler] == np.random.default_rng([1, 3]).permutation(23).tolist()


def test_a_repeated_frame_draws_other_source_frames(frames_tree: Path) -> None:
    dataset = _dataset(frames_tree, num_frames=3)
    assert dataset.source_rows(4, 1, 0).tolist() == dataset.source_rows(4, 1).tolist()  # copy 0: the usual draw
    draws = {tuple(dataset.source_rows(row, 1, copy)) for row in range(4) for copy in range(3)}
    assert len(draws) > 4
