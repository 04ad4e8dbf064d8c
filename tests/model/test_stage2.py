"""Stage 2 runs (issue 3): after stage 1, the four networks train one at a time, every loss stays finite, the
generator's content loss (eq. 6) falls, and G's output, which refines P's rendering, stays near that rendering on new
frames rather than undoing it.

One trainer run (tiny preset, CPU): stage 1 then stage 2 on a SynthVox collection of 4 identities x 2 videos x 64
frames at 32 px (the seeded split holds one identity out, so 3 train: 96 steps/epoch). The tiny preset's G refines
P's rendering (`model.gen_refines_decoder`; model/generator.py says why) with lambda_R = 10 (configs/tiny.yaml).
The comparison uses new frames of the training identities: poses of a trajectory the run never saw, each frame
reenacted from the identity's first training video (self-reenactment, so the driving frame is the target).

Overrides of the tiny preset, and why (as tests/model/test_disentangle.py): P gets 16 channels and a 32-long code,
F 16 channels, lr 2e-3 with Adam betas (0.9, 0.999), so that P renders new poses better than the unchanged face
within a test's time; 64 frames a video rather than more epochs over fewer, because what P learns from 16-frame
videos does not carry to new poses (4 identities x 16 frames, 16 + 4 epochs: P's decoder 0.109 against the face's
0.122 on new frames; 64 frames, 4 + 1 epochs: 0.076 against 0.107). Log every step so the content loss can be read
per step; no samples or checkpoints until the end.
SynthVox v2 data; the evaluation targets are rendered in the source video's own scene (`Recipe.render`).
Measured with one torch thread (tests/conftest.py) on data and train seeds 0 / 1 / 2 (seed 0 is the test's), with
tiny's within-video contrast on (lambda_C 0.2), on two machines' CPUs (the same code gives other float sums, and
training amplifies them). First machine: G's content L1 over stage 2 0.129 -> 0.076, 0.132 -> 0.087, 0.151 ->
0.099; L1 to new frames, G 0.080, 0.105, 0.118, P's decoder 0.079, 0.105, 0.117, the embedded face alone 0.117,
0.145, 0.160. Second machine (2026-12-02; /root/scratch/s2.py of that session): G 0.0976, 0.0875, 0.1138, P's
decoder 0.0679, 0.0872, 0.0938, the embedded face 0.0862, 0.1064, 0.1143, the unchanged source frame 0.0945,
0.1373, 0.1324. So "G beats the embedded face" held on one machine and not the other (seed 0 there: 0.098 against
0.086); what holds on all six runs is that G stays within 1.44x of P's rendering, which it refines (1.00-1.44x).
Asserted: G under 1.6x P's decoder, and the content loss falling. Stage 2 at this scale does not improve on P's
rendering (the shipped checkpoint reenacts with P's decoder for that reason: checkpoints/README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from model.config import load_config
from model.data.collection import load_frame, read_collection
from model.data.dataset import to_tensor
from model.data.split import TRAIN, split_by_identity
from model.data.synthvox import RECIPE_FILE, Recipe, identity_index, synthesize, talking_trajectory, video_index
from model.train import TrainResult, train

pytestmark = pytest.mark.slow  # a two-stage run (about 100 s on one core): not in `make test-fast`

SEED, IDENTITIES, VIDEOS, FRAMES, SIZE = 0, 4, 2, 64, 32
NEW_FRAMES = 8  # evaluation frames rendered per training identity
CONFIG = {
    "model.pose_hidden_dim": 16,
    "model.pose_dim": 32,
    "model.face_hidden_dim": 16,
    "train.stage1_epochs": 4,
    "train.stage2_epochs": 1,
    "train.lr": 2e-3,
    "train.betas": [0.9, 0.999],
    "train.log_every": 1,
    "train.sample_every": 100_000,
    "train.checkpoint_every": 100_000,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path, Path]:
    base = tmp_path_factory.mktemp("stage2")
    data = base / "synthvox"
    synthesize(
        data,
        identities=IDENTITIES,
        videos_per_identity=VIDEOS,
        frames=FRAMES,
        size=SIZE,
        seed=SEED,
        workers=1,
        progress=False,
    )
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


def test_the_generator_stays_near_the_rendering_it_refines(trained: tuple[TrainResult, Path, Path]) -> None:
    result, data, run = trained
    nets, config = result.model, load_config(run / "config.yaml")
    assert nets.generator.refines_decoder
    collection = read_collection(data)
    split = split_by_identity(collection, test_fraction=config.data.test_fraction, seed=config.data.seed)
    training = sorted(collection.loc[split == TRAIN, "identity"].unique())
    poses = talking_trajectory(np.random.default_rng(SEED + 1), NEW_FRAMES)  # a trajectory no video used
    recipe = Recipe.read(data / RECIPE_FILE)
    errors: dict[str, list[float]] = {"G": [], "face": [], "decoder": []}
    for network in nets.networks().values():
        network.eval()
    with torch.no_grad():
        for identity in training:
            videos = collection[collection["identity"] == identity]
            rows = videos[videos["video"] == videos["video"].min()]
            picks = np.linspace(0, len(rows) - 1, config.data.num_frames).round().astype(int)
            paths = rows["path"].iloc[picks]
            sources = torch.stack([to_tensor(np.array(load_frame(p))) for p in paths])  # (K, 3, S, S)
            number, video = identity_index(identity), video_index(rows["video"].iloc[0])
            targets = torch.stack(
                [to_tensor(recipe.render(number, video, pose, SIZE)) for pose in poses]
            )  # (N, 3, S, S): in the source video's own scene
            face = nets.face_embedder(sources[None]).face.expand(len(targets), -1, -1, -1)  # (N, 3, S, S)
            rec = nets.pose_embedder(targets, face)
            fake = nets.generator(face, rec.pose_code, rec.reconstruction).clamp(-1, 1)
            for name, image in (("G", fake), ("face", face), ("decoder", rec.reconstruction.clamp(-1, 1))):
                errors[name].append((image - targets).abs().mean().item())
    mean = {name: float(np.mean(values)) for name, values in errors.items()}
    print(
        f"L1 to the target over {len(training)} identities x {NEW_FRAMES} new frames: G {mean['G']:.4f}, "
        f"embedded face alone {mean['face']:.4f}, P's decoder {mean['decoder']:.4f}"
    )
    assert mean["G"] < 1.6 * mean["decoder"], mean
