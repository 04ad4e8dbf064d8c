"""Stage 2 runs (issue 3): after stage 1, the four networks train one at a time, every loss stays finite and the
generator's content loss (eq. 6) falls.

One trainer run (tiny preset, CPU): stage 1 then stage 2 on a SynthVox collection of 4 identities x 2 videos x 16
frames at 32 px (the seeded split holds one identity out, so 3 train: 24 steps/epoch).

Not asserted yet, because it does not hold at this scale: the issue's "generator output beats the embedded face
alone on L1 to the target". Measured on new frames of the training identities after this run: G 0.2143 against
the embedded face 0.1211 (and still 0.2143 after 12 stage-2 epochs). See the stop-7 note on issue 3.

Overrides of the tiny preset, and why: lengths in epochs chosen so that the run fits the time a test may take;
log every step so the content loss can be read per step; no samples or checkpoints until the end.
Measured (CPU, torch 2.13; the run is deterministic): see the printed figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.config import load_config
from model.data.synthvox import (
    synthesize,
)
from model.train import TrainResult, train

SEED, IDENTITIES, VIDEOS, FRAMES, SIZE = 0, 4, 2, 16, 32
NEW_FRAMES = 8  # evaluation frames rendered per training identity
CONFIG = {"train.stage1_epochs": 4, "train.stage2_epochs": 4, "train.log_every": 1,
          "train.sample_every": 100_000, "train.checkpoint_every": 100_000}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path, Path]:
    base = tmp_path_factory.mktemp("stage2")
    data = base / "synthvox"
    synthesize(data, identities=IDENTITIES, videos_per_identity=VIDEOS, frames=FRAMES, size=SIZE, seed=SEED,
               workers=1, progress=False)
    result = train(load_config("tiny", CONFIG), [data], base / "run", device=torch.device("cpu"), progress=False)
    return result, data, base / "run"


def test_stage2_losses_are_finite_and_content_loss_falls(trained: tuple[TrainResult, Path, Path]) -> None:
    result, _, run = trained
    table = pd.read_csv(run / "losses.csv")
    stage2 = table[table["stage"] == 2]
    assert result.stage == 2 and len(stage2) > 0
    terms = [c for c in table.columns if c.startswith(("disc_", "gen_"))]
    assert np.isfinite(stage2[terms].to_numpy()).all()
    content = stage2["gen_content"]
    first, last = content.iloc[:5].mean(), content.iloc[-5:].mean()
    print(f"G content L1 over {len(stage2)} stage-2 steps: first 5 steps {first:.4f} -> last 5 steps {last:.4f}")
    assert last < first
