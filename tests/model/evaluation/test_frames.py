"""The ground truth of a labelled collection: a SynthVox identity re-rendered in the scene of one of its videos (v2),
or in the scene v1 tied to the identity; frames that the recipe does not re-render are refused; and the driving
videos each protocol video is reenacted by."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.daegan import relative_pose
from model.data.errors import DataError
from model.data.images import read_image, write_image
from model.data.synthvox import POSE_COLUMNS, Identity, Pose, render, synthesize, version1_scene
from model.data.synthvox_render import SMILE_V2
from model.evaluation.cross_identity import draw_drivers, reenact_cross
from model.evaluation.frames import load_collection
from model.evaluation.protocol import draw_videos
from tests.model.test_daegan import make_model

SIZE, SEED = 32, 5
READ = dict(size=SIZE, fps=1.0, max_frames=1000, seed=0, progress=False)


def _poses(table: pd.DataFrame) -> np.ndarray:
    return table[list(POSE_COLUMNS)].to_numpy(dtype=np.float64)  # (N, 7)


def test_truth_is_the_identity_in_its_videos_scene(tmp_path: Path) -> None:
    synthesize(
        tmp_path / "sv", identities=2, videos_per_identity=2, frames=3, size=SIZE, seed=SEED, workers=1, progress=False
    )
    collection = load_collection(tmp_path / "sv", **READ)
    table = collection.frames
    for (identity, video), rows in table.groupby(["identity", "video"]):
        frames = np.stack([read_image(p) for p in rows["path"]])
        assert np.array_equal(collection.render_truth(identity, video, _poses(rows)), frames)
    driver = _poses(table[table["identity"] == "sv0001"])  # cross-identity: sv0000 in sv0001's poses
    in_own_scene = collection.render_truth("sv0000", "v01", driver)
    assert not np.array_equal(in_own_scene, collection.render_truth("sv0000", "v00", driver))
    assert not np.array_equal(
        in_own_scene, np.stack([read_image(p) for p in table[table["identity"] == "sv0001"]["path"]])
    )
    with pytest.raises(DataError, match="not a SynthVox video folder"):
        collection.render_truth("sv0000", "clip", driver)


def test_ideal_faces_are_the_person_frontal_and_neutral_in_each_videos_scene(tmp_path: Path) -> None:
    synthesize(
        tmp_path / "sv", identities=2, videos_per_identity=2, frames=3, size=SIZE, seed=SEED, workers=1, progress=False
    )
    collection = load_collection(tmp_path / "sv", **READ)
    ideal = collection.ideal_faces()
    assert ideal.shape == collection.images.shape
    table = collection.frames
    for (identity, video), rows in table.groupby(["identity", "video"]):
        truth = collection.render_truth(identity, video, np.zeros((1, len(POSE_COLUMNS))))
        expected = torch.from_numpy(truth).permute(0, 3, 1, 2).float() / 127.5 - 1  # model input, [-1, 1]
        assert torch.allclose(ideal[list(rows.index)], expected.expand(len(rows), -1, -1, -1), atol=1e-6)
    # one person's two videos: the same head in two scenes, so two ideal faces (what a probe across scenes meets)
    first, second = (table.index[(table.identity == "sv0000") & (table.video == v)][0] for v in ("v00", "v01"))
    assert not torch.equal(ideal[first], ideal[second])
    # frontal and neutral, whatever the frame's own pose
    assert not torch.equal(ideal[first], collection.images[first])


def test_frames_of_another_video_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "sv"
    synthesize(root, identities=1, videos_per_identity=2, frames=2, size=SIZE, seed=SEED, workers=1, progress=False)
    first, other = root / "sv0000" / "v00" / "00000.png", root / "sv0000" / "v01" / "00000.png"
    shutil.copyfile(other, first)  # right identity, right labels file, the other video's scene and pose
    with pytest.raises(DataError, match="re-render") as raised:
        load_collection(root, **READ)
    assert raised.value.path == first


def test_version1_collections_still_evaluate(tmp_path: Path) -> None:
    """A v1 collection (no version in synthvox.json): each identity in the scene v1 tied to it, smiling as v1 did."""
    root = tmp_path / "v1"
    rows = []
    for index in range(2):
        identity, scene = Identity.from_seed(SEED, index), version1_scene(SEED, index)
        (root / f"sv{index:04d}" / "v00").mkdir(parents=True)
        for frame, yaw in enumerate((-10.0, 15.0)):
            pose = Pose(yaw=yaw, smile=0.5)
            write_image(
                root / f"sv{index:04d}" / "v00" / f"{frame:05d}.png", render(identity, pose, SIZE, scene, SMILE_V2)
            )
            rows.append(
                {
                    "identity": f"sv{index:04d}",
                    "video": "v00",
                    "frame": frame,
                    "time": frame / 25.0,
                    **{c: getattr(pose, c) for c in POSE_COLUMNS},
                }
            )
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    (root / "synthvox.json").write_text(json.dumps({"seed": SEED, "size": SIZE}))
    collection = load_collection(root, **READ)
    assert collection.synth_seed == SEED
    truth = collection.render_truth("sv0001", "v00", _poses(collection.frames))
    assert np.array_equal(truth[2:], np.stack([read_image(p) for p in collection.frames["path"].iloc[2:]]))


def test_short_videos_keep_the_embedders_sources_before_driving_frames(tmp_path: Path) -> None:
    """The protocol gives F its K source frames and drives with the rest (at least one): a 6-frame video with K = 4
    gives 2 driving frames, not 5 with one source; a video shorter than K + 1 still drives one frame."""
    synthesize(
        tmp_path / "sv", identities=2, videos_per_identity=1, frames=6, size=SIZE, seed=SEED, workers=1, progress=False
    )
    collection = load_collection(tmp_path / "sv", **READ)
    for num_sources, driving, sources in ((4, 2, 4), (1, 5, 1), (6, 1, 5)):
        draws = draw_videos(
            collection, num_videos=2, num_driving=32, num_sources=num_sources, rng=np.random.default_rng(0)
        )
        assert [(len(d.driving), len(d.sources)) for d in draws] == [(driving, sources)] * 2
        for d in draws:
            assert not set(d.driving) & set(d.sources)
            assert set(d.driving) | set(d.sources) <= set(np.flatnonzero(collection.videos == d.video))


def test_each_source_is_driven_by_several_videos_of_other_people_when_asked(tmp_path: Path) -> None:
    """`cross_identity.draw_drivers`: `per_source` distinct videos of other identities per source video, the driving
    frames split evenly among them; one per source draws exactly as a single driver always did."""
    synthesize(
        tmp_path / "sv", identities=4, videos_per_identity=2, frames=12, size=SIZE, seed=SEED, workers=1, progress=False
    )
    collection = load_collection(tmp_path / "sv", **READ)
    draws = draw_videos(collection, num_videos=8, num_driving=8, num_sources=2, rng=np.random.default_rng(0))
    several = draw_drivers(collection, draws, [collection], num_driving=9, rng=np.random.default_rng(1), per_source=4)
    assert len(several) == 4 * len(draws)
    for draw in draws:
        mine = [c for c in several if c.source is draw]
        own = collection.identities[draw.sources[0]]
        videos = {collection.videos[c.driving[0]] for c in mine}
        assert len(videos) == 4  # four different videos, none of the source's identity
        assert all((collection.identities[c.driving] != own).all() for c in mine)
        assert all(len(set(collection.videos[c.driving])) == 1 for c in mine)  # each share from its own video
        assert sorted(len(c.driving) for c in mine) == [2, 2, 2, 3]  # 9 frames split evenly
    one = draw_drivers(collection, draws, [collection], num_driving=9, rng=np.random.default_rng(1))
    rng = np.random.default_rng(1)  # the single-driver draw, call for call
    videos = [(name, np.flatnonzero(collection.videos == name)) for name in sorted(set(collection.videos))]
    for draw, crossed in zip(draws, one, strict=True):
        own = collection.identities[draw.sources[0]]
        others = [rows for _, rows in videos if collection.identities[rows[0]] != own]
        rows = others[rng.integers(len(others))]
        assert np.array_equal(crossed.driving, np.sort(rng.choice(rows, size=9, replace=False)))


def test_relative_motion_reenacts_each_drivers_motion_about_its_whole_videos_mean(tmp_path: Path) -> None:
    """`cross_identity.reenact_cross(motion="relative")`: the driving codes' departure from the mean code of the
    driver's whole video (not only the frames drawn), on the source frames' mean code; the SynthVox target stays the
    driver's absolute pose."""
    synthesize(
        tmp_path / "sv", identities=3, videos_per_identity=1, frames=12, size=SIZE, seed=SEED, workers=1, progress=False
    )
    collection = load_collection(tmp_path / "sv", **READ)
    model = make_model()
    draws = draw_videos(collection, num_videos=3, num_driving=4, num_sources=2, rng=np.random.default_rng(0))
    crossed = draw_drivers(collection, draws, [collection], num_driving=4, rng=np.random.default_rng(1))
    absolute = reenact_cross(model, collection, crossed, renderer="decoder", progress=False)
    relative = reenact_cross(model, collection, crossed, renderer="decoder", motion="relative", progress=False)
    assert torch.equal(absolute.target, relative.target)
    first = crossed[0]
    video = np.flatnonzero(collection.videos == collection.videos[first.driving[0]])
    codes = model.encode_pose(collection.images, normalize=False)
    expected = relative_pose(codes[first.driving], codes[video].mean(dim=0), codes[first.source.sources].mean(dim=0))
    drawn = model.draw(collection.images[first.source.sources], expected)
    assert torch.allclose(relative.reenacted[: len(first.driving)], drawn, atol=1e-4)  # codes encoded in other batches
    assert not torch.allclose(absolute.reenacted, relative.reenacted)
