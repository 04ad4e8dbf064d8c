"""Evidence that SynthVox's labels teach the pose code what they name (`loss.label_weight`, L_Y; issue 11).

One stage-1 run of the tiny preset with L_Y on (SynthVox v3 at 32 px, 6 identities x 2 videos x 16 frames, plus an
unlabelled collection as real frames are, 12 epochs) is judged on 4 identities of another seed that it never saw:
the coordinates L_Y pulls must read the head pose there with a squared error well under that of the training
frames' mean (the mean's error is scale^2 = 4 per coordinate on standardised labels: the "knows nothing"
baseline), and the term must fall. Expressions are not asked of a run this small: at 32 px with 6 training people
their coordinates do no better than the mean on new people (errors 4.2-5.7 on every seed below); the shipped
checkpoint's figures are `daegan evaluate`'s (README).

Overrides of the tiny preset as in tests/model/test_disentangle.py (P with 16 channels and a 32-long code, lr 2e-3,
Adam betas 0.9 / 0.999), and lambda_Y 0.3 as in configs/small.yaml. Measured with one torch thread on train seeds
0 / 1 / 2 (0 is the test's): held-out error of yaw / pitch / roll 2.73 / 1.39 / 1.04, 3.17 / 1.24 / 1.33, 2.26 /
1.12 / 1.55 (means 1.72, 1.91, 1.64; asserted under 2.4) against the mean's 4; the last ten logged L_Y 0.43, 0.50
and 0.46 of the first three (asserted under 0.65).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.config import load_config
from model.data.collection import load_frame, read_collection
from model.data.dataset import standardised_labels, to_square, to_tensor
from model.data.synthvox import POSE_COLUMNS, synthesize
from model.train import TrainResult, train
from tests.conftest import write_frame

pytestmark = pytest.mark.slow  # a stage-1 run of a few hundred steps: not in `make test-fast`

SIZE, SEED = 32, 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path, pd.DataFrame]:
    base = tmp_path_factory.mktemp("labels")
    synthesize(
        base / "train", identities=6, videos_per_identity=2, frames=16, size=SIZE, seed=0, workers=1, progress=False
    )
    synthesize(
        base / "held_out", identities=4, videos_per_identity=1, frames=16, size=SIZE, seed=1, workers=1, progress=False
    )
    for frame in range(8):  # an unlabelled collection beside SynthVox, as real frames are in `make train`
        write_frame(base / "real" / "person" / "clip" / f"{frame:05d}.png", 40 + 20 * frame, size=SIZE)
    config = load_config(
        "tiny",
        {
            "model.pose_hidden_dim": 16,
            "model.pose_dim": 32,
            "model.face_hidden_dim": 16,
            "data.test_fraction": 0.0,
            "loss.label_weight": 0.3,
            "train.adversarial": False,
            "train.stage1_epochs": 12,
            "train.lr": 2e-3,
            "train.betas": [0.9, 0.999],
            "train.seed": SEED,
            "train.log_every": 1,
            "train.sample_every": 10_000,
            "train.checkpoint_every": 10_000,
        },
    )
    result = train(config, [base / "train", base / "real"], base / "run", device=torch.device("cpu"), progress=False)
    return result, base, read_collection(base / "train")


def held_out_errors(result: TrainResult, base: Path, train_frames: pd.DataFrame) -> np.ndarray:
    """Mean squared error per parameter between the coordinates L_Y pulls and the labels they are pulled to
    (standardised by the training frames, times the scale) on the held-out identities' frames."""
    held_out = read_collection(base / "held_out")
    frames = torch.stack([to_tensor(to_square(load_frame(path, 0), SIZE)) for path in held_out["path"]])
    with torch.no_grad():
        codes = result.model.encode_pose(frames, normalize=False).numpy()
    scale = result.model.config.loss.label_scale
    table = pd.concat([train_frames, held_out], ignore_index=True)  # the training frames' mean and spread
    labels = standardised_labels(table).numpy()[len(train_frames) :]
    return ((codes[:, : len(POSE_COLUMNS)] - scale * labels) ** 2).mean(0)


def test_the_label_term_falls(trained: tuple[TrainResult, Path, pd.DataFrame]) -> None:
    losses = pd.read_csv(trained[1] / "run" / "losses.csv")["labels"].to_numpy()
    assert losses[-10:].mean() < 0.65 * losses[:3].mean(), f"L_Y {losses[:3].mean():.3f} -> {losses[-10:].mean():.3f}"


def test_the_code_reads_the_labels_of_people_it_never_saw(trained: tuple[TrainResult, Path, pd.DataFrame]) -> None:
    errors = held_out_errors(*trained)
    scale = trained[0].model.config.loss.label_scale
    by_name = dict(zip(POSE_COLUMNS, errors.round(2)))
    head_pose = [errors[POSE_COLUMNS.index(name)] for name in ("yaw", "pitch", "roll")]
    assert np.mean(head_pose) < 0.6 * scale**2, by_name
