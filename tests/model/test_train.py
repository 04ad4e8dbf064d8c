"""The two-stage trainer: the run directory it writes, exact resume, refusal to overwrite, stage-1-only runs, the
one-network-at-a-time freezing of stage 2, and two DistributedDataParallel replicas staying identical (gloo).

Data: a tiny SynthVox collection (4 identities x 2 videos x 8 frames, 32 px); 3 identities train, so with the tiny
preset an epoch is 12 steps and a run is 24 stage-1 plus 12 stage-2 steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from safetensors.torch import load_file

import model.train_phases as phases
from model.checkpoint import atomic_save_tensors, load_checkpoint, trained_on
from model.config import Config, load_config
from model.daegan import DAEGAN
from model.data.errors import DataError
from model.data.synthvox import synthesize
from model.discriminator import Discriminator
from model.face_embedder import FaceEmbedder
from model.generator import Generator
from model.pose_embedder import PoseEmbedder
from model.train import init_networks, train
from model.train_log import LOSS_TERMS, SAMPLE_GUTTER
from model.train_phases import Networks

CPU = torch.device("cpu")
STAGE2_TERMS = [t for t in LOSS_TERMS if t.startswith(("disc_", "gen_"))]


@pytest.fixture(scope="module")
def synthvox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "synthvox"
    synthesize(root, identities=4, videos_per_identity=2, frames=8, size=32, seed=0, workers=1, progress=False)
    return root


def tiny(**overrides: object) -> Config:
    return load_config("tiny", {f"train.{k}": v for k, v in overrides.items()})


def states(model: DAEGAN) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.detach().clone() for name, net in model.networks().items() for k, v in net.state_dict().items()
    }


def test_run_writes_config_checkpoint_state_log_plot_and_samples(synthvox: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tiny()
    result = train(config, [synthvox], out, device=CPU, progress=False)
    assert (result.step, result.stage, result.checkpoint) == (36, 2, out / "checkpoint.safetensors")
    assert load_config(out / "config.yaml") == config
    assert (out / "train_state.safetensors").is_file()

    table = pd.read_csv(out / "losses.csv")
    assert table["step"].tolist() == list(range(2, 37, 2))  # every log_every = 2 steps
    stage1, stage2 = table[table["stage"] == 1], table[table["stage"] == 2]
    assert stage1["step"].max() == 24 and stage2["step"].min() == 26
    assert stage1[STAGE2_TERMS].isna().all().all() and stage2[STAGE2_TERMS].notna().all().all()
    assert table[["reconstruction", "smoothness", "stage1_total"]].notna().all().all()
    # the embedders' lr: linear decay to 0 over the planned 36 steps, x0.1 in stage 2 (the last step uses 1/36)
    assert stage1["lr"].is_monotonic_decreasing
    assert stage2["lr"].iloc[0] == pytest.approx(config.train.lr * (1 - 25 / 36) * 0.1, rel=1e-4)
    assert table["lr"].iloc[-1] == pytest.approx(config.train.lr / 36 * 0.1, rel=1e-4)
    with Image.open(out / "losses.png") as plot:
        assert plot.size == (960, 640)

    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert samples == ["step_0000010.png", "step_0000020.png", "step_0000030.png", "step_0000036.png"]
    k, g = config.data.num_frames, SAMPLE_GUTTER
    with Image.open(out / "samples/step_0000020.png") as grid1, Image.open(out / "samples/step_0000036.png") as grid2:
        cell = (grid1.width - g) // (k + 5)  # columns: K inputs, face, flow, warp only, reconstruction, target
        assert grid1.width == (k + 5) * cell + g and grid2.width == (k + 6) * cell + g  # stage 2 adds G(f, p)
        assert cell >= 64 and grid2.height > 3 * cell  # three examples, cells upscaled to >= 64 px

    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.config == config
    assert set(checkpoint.states) == {"face_embedder", "pose_embedder", "generator", "discriminator"}  # no critic
    assert checkpoint.metadata["step"] == "36" and checkpoint.metadata["stage"] == "2"
    assert json.loads(checkpoint.metadata["losses"])["gen_total"] == pytest.approx(result.losses.gen_total)
    size = config.data.size
    rebuilt = Networks(
        FaceEmbedder.from_config(config.model, size=size),
        PoseEmbedder.from_config(config.model, size=size),
        Generator.from_config(config.model, size=size),
        Discriminator.from_config(config.model, size=size),
    )
    for name, net in zip(Networks._fields, rebuilt[:4]):
        net.load_state_dict(checkpoint.states[name])
        net.eval()
    frames = torch.rand(2, k, 3, size, size) * 2 - 1
    with torch.no_grad():
        face = rebuilt.face_embedder(frames).face
        assert torch.equal(face, result.model.face_embedder(frames).face)
        rec = rebuilt.pose_embedder(frames[:, 0], face)
        fake = rebuilt.generator(face, rec.pose_code, rec.reconstruction)  # tiny's G refines P's rendering
        assert torch.equal(fake, result.model.generate(face, rec.pose_code, rec.reconstruction))


def test_resume_continues_exactly(synthvox: Path, tmp_path: Path) -> None:
    """30 steps straight == 15 steps, stop, resume, 15 more: bit-identical weights, optimiser moments and log.
    Step 15 is mid-epoch (12 steps an epoch) and step 24 starts stage 2, so both are crossed after the resume."""
    straight = train(tiny(max_steps=30), [synthvox], tmp_path / "a", device=CPU, progress=False)
    first = train(tiny(max_steps=15), [synthvox], tmp_path / "b", device=CPU, progress=False)
    assert first.step == 15
    resumed = train(tiny(max_steps=30), [synthvox], tmp_path / "b", device=CPU, resume=True, progress=False)
    assert resumed.step == 30 and resumed.stage == 2
    a, b = states(straight.model), states(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    state_a, state_b = (load_file(tmp_path / run / "train_state.safetensors") for run in "ab")
    optimiser_keys = [key for key in state_a if key.startswith("optimizer.")]
    assert any(key.startswith("optimizer.generator.") for key in optimiser_keys)
    assert all(torch.equal(state_a[key], state_b[key]) for key in optimiser_keys)
    log_a, log_b = pd.read_csv(tmp_path / "a/losses.csv"), pd.read_csv(tmp_path / "b/losses.csv")
    assert log_b["step"].tolist() == sorted({*log_a["step"], 15})  # plus the row of the stop at step 15
    assert log_b[log_b["step"] != 15].reset_index(drop=True).equals(log_a)
    assert load_config(tmp_path / "b/config.yaml").train.max_steps == 30
    # a finished run resumes to nothing to do
    again = train(tiny(max_steps=30), [synthvox], tmp_path / "b", device=CPU, resume=True, progress=False)
    assert again.step == 30 and again.losses is None


def test_refuses_to_overwrite_or_resume_what_is_not_there(synthvox: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(max_steps=2), [synthvox], out, device=CPU, progress=False)
    before = (out / "checkpoint.safetensors").read_bytes()
    with pytest.raises(DataError, match="already holds a run; pass --resume or choose another folder") as err:
        train(tiny(max_steps=2), [synthvox], out, device=CPU, progress=False)
    assert err.value.path == out and (out / "checkpoint.safetensors").read_bytes() == before
    with pytest.raises(DataError, match="holds no run to resume"):
        train(tiny(), [synthvox], tmp_path / "empty", device=CPU, resume=True, progress=False)
    with pytest.raises(DataError, match=r"started with train\.lr=0\.001"):
        train(tiny(max_steps=4, lr=0.01), [synthvox], out, device=CPU, resume=True, progress=False)


def test_init_starts_a_new_run_from_a_checkpoints_matching_networks(synthvox: Path, tmp_path: Path) -> None:
    """--init: the networks whose shapes match load (here G's design changed, so G starts fresh); with no stage-1
    epochs the new run is stage 2 from its first step; --init with --resume, or a checkpoint that fits nothing,
    is refused."""
    trained = train(tiny(max_steps=2), [synthvox], tmp_path / "a", device=CPU, progress=False)
    checkpoint = trained.checkpoint
    config = load_config(
        "tiny", {"model.gen_refines_decoder": False, "train.stage1_epochs": 0, "train.warp_warmup_epochs": 0}
    )  # no stage 1: no warm-up within it
    fresh = DAEGAN.from_config(config)
    assert init_networks(fresh, checkpoint, CPU) == ["face_embedder", "pose_embedder", "discriminator"]
    saved = load_checkpoint(checkpoint).states
    for name in ("face_embedder", "pose_embedder", "discriminator"):
        net = getattr(fresh, name)
        assert all(torch.equal(v, saved[name][k]) for k, v in net.state_dict().items())
    assert not torch.equal(fresh.generator.stem[0].weight[:, :3], trained.model.generator.stem[0].weight[:, :3])
    result = train(config, [synthvox], tmp_path / "b", device=CPU, init=checkpoint, progress=False)
    table = pd.read_csv(tmp_path / "b/losses.csv")
    assert result.stage == 2 and result.step == 12 and (table["stage"] == 2).all()
    with pytest.raises(DataError, match="cannot be combined with --resume"):
        train(config, [synthvox], tmp_path / "b", device=CPU, resume=True, init=checkpoint, progress=False)
    other = load_config("tiny", {f"model.{k}_hidden_dim": 4 for k in ("face", "pose", "gen", "disc")})
    with pytest.raises(DataError, match="no network of this checkpoint matches"):
        init_networks(DAEGAN.from_config(other), checkpoint, CPU)


def test_a_frozen_pose_encoder_keeps_every_stored_code_while_the_rest_trains(synthvox: Path, tmp_path: Path) -> None:
    """train.freeze_pose_encoder on a run from --init: P's encoder (frame -> p) ends with its init weights, so a
    frame's pose code is the same before and after, while F and P's decoder move, and reconstruction improves."""
    init = train(tiny(max_steps=2), [synthvox], tmp_path / "a", device=CPU, progress=False).checkpoint
    before = DAEGAN.from_config(tiny())
    init_networks(before, init, CPU)
    config = tiny(stage2_epochs=0, freeze_pose_encoder=True)
    after = train(config, [synthvox], tmp_path / "b", device=CPU, init=init, progress=False).model
    frames = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(before.pose_embedder.encode(frames), after.pose_embedder.encode(frames))
    moved = {
        name: not all(torch.equal(a, b) for a, b in zip(getattr(before, name).parameters(), net.parameters()))
        for name, net in (("face_embedder", after.face_embedder), ("pose_embedder", after.pose_embedder))
    }
    assert moved == {"face_embedder": True, "pose_embedder": True}  # P's decoder trained
    losses = pd.read_csv(tmp_path / "b/losses.csv")["reconstruction"]
    assert losses.iloc[-3:].mean() < losses.iloc[:3].mean()


def test_real_frames_fill_their_share_of_each_epoch(synthvox: Path, tmp_path: Path) -> None:
    """64 labelled SynthVox frames beside 16 real ones at data.real_share 0.5: the real frames come 4 times an epoch,
    so an epoch is 128 targets (32 steps of 4) and the learning rate decays over 2 x 32 planned steps, not 2 x 20."""
    from tests.conftest import write_frame

    real = tmp_path / "real"
    for person in range(4):
        for frame in range(4):
            write_frame(real / f"r{person}" / "v0" / f"{frame:05d}.png", 40 * person + frame, size=32)
    overrides = {"data.test_fraction": 0.0, "train.stage2_epochs": 0, "train.max_steps": 2}
    for share, planned in ((0.5, 64), (0.0, 40)):
        config = load_config("tiny", {**overrides, "data.real_share": share})
        train(config, [synthvox, real], tmp_path / f"run{share}", device=CPU, progress=False)
        lr = pd.read_csv(tmp_path / f"run{share}" / "losses.csv")["lr"].iloc[-1]  # step 2
        assert lr == pytest.approx(config.train.lr * (1 - 1 / planned), rel=1e-5)


def test_a_resumed_run_keeps_what_its_init_weights_saw(synthvox: Path, tmp_path: Path) -> None:
    """The trained_on record of a run started with --init holds the init's collections, and still does once the
    run is resumed (--resume cannot repeat --init); trained_with chains the commands of all three runs."""
    other = tmp_path / "seed1"
    synthesize(other, identities=4, videos_per_identity=2, frames=8, size=32, seed=1, workers=1, progress=False)
    init = train(tiny(max_steps=1), [other], tmp_path / "a", device=CPU, progress=False, command="A").checkpoint
    out = tmp_path / "b"
    train(tiny(max_steps=1), [synthvox], out, device=CPU, init=init, progress=False, command="B")
    train(tiny(max_steps=2), [synthvox], out, device=CPU, resume=True, progress=False, command="C")
    metadata = load_checkpoint(out / "checkpoint.safetensors").metadata
    record = trained_on(metadata)
    assert record is not None and record.complete
    assert sorted(c.synthvox_seed for c in record.collections) == [0, 1]
    assert metadata["trained_with"] == "A; then: B; resumed: C"


def test_without_adversarial_stage_g_and_d_never_train(
    synthvox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: set[str] = set()
    real_set_trainable = phases.set_trainable

    def set_trainable(model: DAEGAN, *names: str) -> None:
        trained.update(names)
        real_set_trainable(model, *names)

    monkeypatch.setattr(phases, "set_trainable", set_trainable)
    config = tiny(adversarial=False)
    result = train(config, [synthvox], tmp_path / "run", device=CPU, progress=False)
    assert result.step == 24 and result.stage == 1 and trained == {"face_embedder", "pose_embedder"}
    torch.manual_seed(config.train.seed)  # the trainer's initialisation, in its order
    size = config.data.size
    initial = [
        FaceEmbedder.from_config(config.model, size=size),
        PoseEmbedder.from_config(config.model, size=size),
        Generator.from_config(config.model, size=size),
        Discriminator.from_config(config.model, size=size),
    ]
    for (name, net), fresh in zip(result.model.networks().items(), initial):
        same = all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
        assert same == (name in ("generator", "discriminator")), name
    table = pd.read_csv(tmp_path / "run/losses.csv")
    assert (table["stage"] == 1).all() and table[STAGE2_TERMS].isna().all().all()
    assert "optimizer.generator.0.exp_avg" not in load_file(tmp_path / "run/train_state.safetensors")


def test_each_phase_trains_only_its_networks(synthvox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each phase changes only its own networks (stage 1: F and P together; stage 2: D, G, F, P one at a time):
    parameters and buffers of the others (spectral norm's vectors included) are bit-identical from the phase's
    start to the end of its update."""
    phase: dict[str, object] = {}
    order: list[tuple[str, ...]] = []
    real_set_trainable, real_update = phases.set_trainable, phases.update

    def set_trainable(model: DAEGAN, *names: str) -> None:
        real_set_trainable(model, *names)
        phase.update(model=model, names=names, before=states(model))

    def update(loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
        real_update(loss, *optimizers)
        names = phase["names"]
        order.append(names)
        after = states(phase["model"])
        for key, value in after.items():
            if not key.startswith(tuple(f"{name}." for name in names)):
                assert torch.equal(value, phase["before"][key]), f"{key} moved while training {names}"
        for name in names:
            assert any(not torch.equal(after[key], phase["before"][key]) for key in after if key.startswith(name + "."))

    monkeypatch.setattr(phases, "set_trainable", set_trainable)
    monkeypatch.setattr(phases, "update", update)
    result = train(tiny(max_steps=27), [synthvox], tmp_path / "run", device=CPU, progress=False)
    assert result.stage == 2
    stage2 = [("discriminator",), ("generator",), ("face_embedder",), ("pose_embedder",)]
    assert order == [("face_embedder", "pose_embedder")] * 24 + stage2 * 3  # stage 1, then steps 25, 26, 27


def test_warp_warmup_renders_with_the_warp_alone(synthvox: Path, tmp_path: Path) -> None:
    """`train.warp_warmup_epochs`: P's residual heads stay exactly zero through the warm-up (the reconstruction does
    not use them, and the residual budget's gradient at zero is zero), and learn after it."""
    config = tiny(adversarial=False, warp_warmup_epochs=1)  # 2 stage-1 epochs of 12 steps: 12 warm-up steps
    heads = ("low_head", "high_head")
    during = train(
        dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=12)),
        [synthvox],
        tmp_path / "a",
        device=CPU,
        progress=False,
    )
    for head in heads:
        assert all((p == 0).all() for p in getattr(during.model.pose_embedder, head).parameters()), head
    assert (during.model.pose_embedder.flow_head.weight != 0).any()  # the warp learned meanwhile
    after = train(config, [synthvox], tmp_path / "b", device=CPU, progress=False)
    for head in heads:
        assert any((p != 0).any() for p in getattr(after.model.pose_embedder, head).parameters()), head


@pytest.mark.parametrize("through_generator", [True, False])
def test_pose_embedder_learns_through_the_generator_only_when_told(
    synthvox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through_generator: bool
) -> None:
    """Phase P optimises eq. 5 + eq. 6 (paper), or eq. 5 alone with `train.gen_trains_pose_embedder: false`."""
    seen: dict[str, list[float]] = {"pose": []}
    real_update = phases.update

    def update(loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
        if phase_names == ("pose_embedder",):
            seen["pose"].append(loss.item())
        real_update(loss, *optimizers)

    phase_names: tuple[str, ...] = ()
    real_set_trainable = phases.set_trainable

    def set_trainable(model: DAEGAN, *names: str) -> None:
        nonlocal phase_names
        phase_names = names
        real_set_trainable(model, *names)

    monkeypatch.setattr(phases, "update", update)
    monkeypatch.setattr(phases, "set_trainable", set_trainable)
    config = tiny(max_steps=25, log_every=1, gen_trains_pose_embedder=through_generator)
    train(config, [synthvox], tmp_path / "run", device=CPU, progress=False)
    logged = pd.read_csv(tmp_path / "run/losses.csv").set_index("step")
    assert len(seen["pose"]) == 1  # step 25, the first of stage 2
    eq5 = logged.loc[25, "stage1_total"]  # the P phase's eq. 5 (+ budget), as logged
    if through_generator:
        assert seen["pose"][0] > eq5 + 1e-3  # eq. 6 through G added (lambda_R x content alone exceeds 0.1)
    else:
        assert seen["pose"][0] == pytest.approx(eq5, rel=1e-5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    """One torchrun-like process: environment, train, save this replica's weights for the parent to compare."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    config = load_config("tiny", {"train.stage1_epochs": 1, "train.stage2_epochs": 1})
    result = train(config, [Path(data)], Path(out), device=CPU, progress=False)
    atomic_save_tensors(states(result.model), Path(out) / f"replica{rank}.safetensors", {"step": str(result.step)})
    torch.distributed.destroy_process_group()


def test_two_ddp_processes_keep_identical_replicas(synthvox: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    mp.spawn(ddp_worker, args=(2, free_port(), str(synthvox), str(out)), nprocs=2, join=True)
    replicas = [load_file(out / f"replica{rank}.safetensors") for rank in range(2)]
    assert replicas[0].keys() == replicas[1].keys()
    assert all(torch.equal(replicas[0][key], replicas[1][key]) for key in replicas[0])
    checkpoint = load_checkpoint(out / "checkpoint.safetensors")  # written by rank 0 only, from the same weights
    assert checkpoint.metadata["step"] == "12" and checkpoint.metadata["stage"] == "2"  # 48 frames / 2 / 4 = 6 a epoch
    for name, state in checkpoint.states.items():
        assert all(torch.equal(value, replicas[0][f"{name}.{key}"]) for key, value in state.items())
    assert pd.read_csv(out / "losses.csv")["step"].is_unique  # one writer
