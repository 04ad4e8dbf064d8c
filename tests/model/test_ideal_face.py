"""Synthetic supervision of the embedded face (`loss.ideal_face_weight`, L_I): the term counts SynthVox frames only,
the dataset renders each SynthVox source frame's ideal face (its person frontal and at rest in its video's scene) and
none for real frames, F's residual starts at 0 (a warp-only F's weights load into it), and training with the term
and the residual makes F's face of a single frame nearer that ideal face.

The learning test trains the tiny preset twice on the same SynthVox collection, with and without L_I, and measures
the L1 between each frame's single-frame embedded face (K = 1, as the index and the evaluation's probe use it) and
its ideal face, after 6 epochs (96 steps) of stage 1. Measured on training seeds 0-2 (0 is the test's),
lambda_I 5: without / with 0.0751 / 0.0548, 0.0750 / 0.0559, 0.0764 / 0.0576 (0.73x-0.75x); asserted: with L_I
under 0.85x without.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.config import load_config
from model.data.dataset import VideoFramesDataset, to_tensor
from model.data.synthvox import Pose, synthesize
from model.losses import ideal_face_loss, pyramid_l1, stage1_loss
from model.train import read_collections, train
from tests.conftest import write_frame

CPU = torch.device("cpu")


def test_the_term_counts_the_items_with_an_ideal_face_only() -> None:
    warped = torch.zeros(3, 2, 3, 8, 8, requires_grad=True)
    ideal = torch.full((3, 2, 3, 8, 8), float("nan"))
    ideal[0], ideal[2, 0] = 0.5, 1.0  # item 0's two frames, item 2's first; item 1 is a real video's
    loss = ideal_face_loss(warped, ideal, levels=2)
    assert loss.item() == pytest.approx(2 / 3)  # (0.5 + 0.5 + 1.0) / 3 frames, every level
    loss.backward()
    assert warped.grad[1].abs().sum() == 0 and warped.grad[2, 1].abs().sum() == 0  # frames without one: left alone
    assert warped.grad[0].abs().sum() > 0 and warped.grad[2, 0].abs().sum() > 0

    none = ideal_face_loss(warped, torch.full((3, 2, 3, 8, 8), float("nan")), levels=2)
    assert none.item() == 0.0 and none.requires_grad  # every process's backward pass sees the same graph


def test_the_stage1_total_weighs_the_term_and_the_paper_has_none() -> None:
    target = torch.zeros(2, 3, 8, 8)
    flows = (torch.zeros(2, 1, 2, 8, 8), torch.zeros(2, 2, 8, 8))
    weighted = stage1_loss(
        target, target, *flows, smooth_weight=0.0, ideal_face=torch.tensor(0.4), ideal_face_weight=0.5
    )
    assert weighted.ideal_face.item() == pytest.approx(0.4) and weighted.total.item() == pytest.approx(0.2)
    assert stage1_loss(target, target, *flows, smooth_weight=0.0).ideal_face.item() == 0.0


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("ideal")
    synthesize(
        base / "synthvox", identities=4, videos_per_identity=2, frames=8, size=32, seed=3, workers=1, progress=False
    )
    for frame in range(4):  # an unlabelled collection: real frames, which have no ideal face
        write_frame(base / "real" / "person" / "clip" / f"{frame:05d}.png", 40 + 20 * frame, size=32)
    return [base / "synthvox", base / "real"]


def test_the_dataset_renders_each_synthvox_frames_ideal_face_and_none_for_real_frames(mixed_data: list[Path]) -> None:
    frames, recipes = read_collections(mixed_data, fps=1.0)
    assert set(recipes) == {f"sv{i:04d}" for i in range(4)}  # the real collection has no recipe
    dataset = VideoFramesDataset(frames, num_frames=2, size=32, recipes=recipes)
    row = int(frames.index[(frames["identity"] == "sv0002") & (frames["video"] == "v01")][0])
    sample = dataset[row]
    for ideal in sample.ideal_faces:  # every frame of the video: its person frontal and at rest, in its scene
        assert torch.equal(ideal, to_tensor(recipes["sv0002"].render(2, 1, Pose(), 32)))
    assert (dataset[row].frames - sample.ideal_faces).abs().mean() > 0.01  # a frame's head is turned; its ideal's not
    other_video = int(frames.index[(frames["identity"] == "sv0002") & (frames["video"] == "v00")][0])
    assert not torch.equal(dataset.ideal_face(other_video), dataset.ideal_face(row))  # another scene
    real = int(frames.index[frames["identity"] == "person"][0])
    assert dataset[real].ideal_faces.isnan().all()
    assert VideoFramesDataset(frames, num_frames=2, size=32)[row].ideal_faces.isnan().all()  # not asked for


def single_frame_distance(model: torch.nn.Module, dataset: VideoFramesDataset) -> float:
    """Mean L1 between each SynthVox frame's single-frame embedded face and its ideal face."""
    rows = [row for row in range(len(dataset)) if not dataset.ideal_face(row).isnan().any()]
    frames = torch.stack([dataset[row].target for row in rows])
    ideal = torch.stack([dataset.ideal_face(row) for row in rows])
    with torch.no_grad():
        faces = model.embed_face(frames.unsqueeze(1)).face
    return pyramid_l1(faces, ideal, 1).item()


def test_training_with_the_term_brings_a_single_frames_embedded_face_nearer_its_ideal_face(
    mixed_data: list[Path], tmp_path: Path
) -> None:
    frames, recipes = read_collections(mixed_data[:1], fps=1.0)
    dataset = VideoFramesDataset(frames, num_frames=2, size=32, recipes=recipes)
    distances = []
    for weight in (0.0, 5.0):
        config = load_config(
            "tiny",
            {
                "data.test_fraction": 0.0,
                "model.face_residual": weight > 0,
                "loss.ideal_face_weight": weight,
                "train.stage1_epochs": 6,
                "train.stage2_epochs": 0,
            },
        )
        result = train(config, mixed_data[:1], tmp_path / str(weight), device=CPU, progress=False)
        distances.append(single_frame_distance(result.model, dataset))
    without, with_term = distances
    assert with_term < 0.85 * without, distances
