"""The two-stage DAE-GAN trainer (paper sec. 3.3 "Training Strategy", sec. 4 "Implementation details").

Stage 1 trains the face embedder F and the pose embedder P jointly on eq. 5 (L_REC + lambda_S L_S). Stage 2 lowers
their learning rate by 10x and adds the generator G and the discriminator D; "the four networks are optimized one
by one; when one is under training, the parameters of the rest are frozen". Read `train` top to bottom:
processes, run folder (`model.train_run`), data, the model (one `DAEGAN`) with its optimisers and schedules
(`model.train_schedule`), resume, then the loop. Each step of the loop is one batch through the phases of its
stage (`model.train_phases`):
- stage 1: the embedder phase for F and P together on eq. 5;
- stage 2: phase D (eq. 7), phase G (eq. 6), then the embedder phase for F and again for P (eq. 5 + eq. 6 through
  the frozen G and D); one pass of the frozen F and P serves phases D and G;
then the schedules advance and, when due, the loss row, the sample grid (`model.train_log`, drawn through the
model's own `reconstruct` and `render`) and the checkpoint with its train state (`RunFolder.write`) are written.

Notable choices (the paper is silent):
- Learning rates decay linearly over the *planned* run; `train.max_steps` only stops early (`model.train_schedule`).
- Resume is exact: networks (checkpoint), optimisers, schedulers and RNG states (train_state) are restored, and
  the data order is a pure function of (seed, epoch), so the batches already done in the current epoch are
  skipped at the sampler without decoding a frame; P's input augmentation and L_C's views draw from generators per
  (seed, step, rank) (`model.augment.step_generator`, `make_batch`), not torch's global one, which a DataLoader
  iterator also draws from. Checkpoint and state are written as one unit: a kill in the middle of a write still
  resumes from the last complete pair (`model.train_run`).
- Departures that keep the pose code on motion (DESIGN.md; each a config switch, off in the paper preset): P's
  encoder sees an augmented copy of the target (`config.augment`), the first `train.warp_warmup_epochs` render
  with P's warp alone, P's residuals are under a budget (`loss.residual_weight`), with
  `train.gen_trains_pose_embedder: false` P's phase optimises eq. 5 alone, and `loss.contrast_weight` adds the
  within-video contrastive term L_C wherever P trains (`model.train_phases`).
- Multi-GPU (torchrun): one process per device, each network in DistributedDataParallel, data sharded by rank;
  rank 0 alone writes. The network being trained runs through its DDP wrapper, frozen ones as plain modules.
"""

from __future__ import annotations

import itertools
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model.checkpoint import TRAINED_ON_KEY, TRAINED_WITH_KEY, load_checkpoint, training_commands, training_record
from model.config import Config
from model.daegan import DAEGAN
from model.data.collection import read_collection
from model.data.dataset import VideoFramesDataset, make_loader
from model.data.errors import DataError
from model.data.split import TRAIN, split_by_identity
from model.device import pick_device  # noqa: F401  (re-exported: `from model.train import pick_device`)
from model.train_log import LossLog, StepLosses, plot_losses, sample_examples, write_samples
from model.train_phases import Networks, Trainee, make_batch, set_trainable, stage1_step, stage2_step
from model.train_run import (  # noqa: F401  (the file names and check_resumable re-exported for model.evaluation)
    CHECKPOINT_FILE,
    CONFIG_FILE,
    STATE_FILE,
    RunFolder,
    check_resumable,
)
from model.train_schedule import Plan, build_optimizers, build_schedulers, step_schedulers
from model.train_state import TrainProgress


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    step: int  # batches trained in all
    stage: int  # 1 or 2: the stage of the last step
    losses: StepLosses | None  # the last step's terms (None when this call trained no step)
    checkpoint: Path  # out/checkpoint.safetensors
    model: DAEGAN  # the trained model (this process's replica), in eval mode


def train(
    config: Config,
    data_roots: list[Path],
    out: Path,
    *,
    device: torch.device,
    resume: bool = False,
    init: Path | None = None,
    progress: bool = True,
    command: str | None = None,
) -> TrainResult:
    """Train DAE-GAN on the frame collections `data_roots` (concatenated), writing the run into `out`.

    `out` gets config.yaml, checkpoint.safetensors, train_state.safetensors, losses.csv, losses.png and
    samples/step_NNNNNNN.png. With `resume`, continue the run in `out` exactly where its last state left it.
    With `init`, a new run starts from that checkpoint's weights (`init_networks`); steps, optimisers and schedules
    start from zero, so `train.stage1_epochs: 0` fine-tunes a trained model's stage 2 alone.
    `command` (the CLI passes its command line) is recorded in each checkpoint as ``trained_with``, after the
    commands of the weights `init` or the resumed checkpoint came from.
    Launched by torchrun (RANK, WORLD_SIZE set), each process trains one replica on its shard of the data.
    """
    tc = config.train
    # -- processes: one per device under torchrun, else a single one ----------------------------------------------
    world, rank, device = join_processes(device)
    distributed, main_process = world > 1, rank == 0

    def say(message: str) -> None:
        if main_process and progress:
            tqdm.write(message)

    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and device.type == "cuda")
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    # -- the run folder: a new run, or the one to resume -----------------------------------------------------------
    run = RunFolder(Path(out))
    run.open(config, resume=resume, init=init, main_process=main_process, distributed=distributed)

    # -- data: the training identities of every collection, K source frames + one target per item ---------------
    frames = read_collections(data_roots, fps=config.data.fps)
    split = split_by_identity(
        frames, test_fraction=config.data.test_fraction, seed=config.data.seed, hold_out=config.data.hold_out
    )
    train_frames = frames[split == TRAIN]
    if train_frames.empty:
        say(
            f"no training identities after the split ({frames['identity'].nunique()} identities, all held out): "
            "training on all of them"
        )
        train_frames = frames
    dataset = VideoFramesDataset(
        train_frames,
        num_frames=config.data.num_frames,
        size=config.data.size,
        seed=config.data.seed,
        real_share=config.data.real_share,
    )
    loader = make_loader(
        dataset,
        batch_size=config.data.batch_size,
        workers=config.data.workers,
        device=device,
        num_replicas=world,
        rank=rank,
    )
    targets = loader.sampler.total  # an epoch's targets: every frame, real ones repeated (`data.real_share`)
    steps_per_epoch = targets // world // config.data.batch_size  # the same on every rank
    if steps_per_epoch == 0:
        raise DataError(
            data_roots[0],
            f"{targets} training frames make no batch of {config.data.batch_size}"
            f"{f' per process ({world} processes)' if distributed else ''}",
        )
    plan = Plan.from_config(tc, steps_per_epoch=steps_per_epoch)
    repeats = f" ({len(dataset.real_rows)} real, each {dataset.real_copies:.2f} times an epoch)"
    say(
        f"training on {len(dataset)} frames of {dataset.frames['identity'].nunique()} identities"
        f"{repeats if dataset.real_copies > 1 else ''}: "
        f"{steps_per_epoch} steps/epoch, stage 1 {plan.stage1_steps} steps, stage 2 {plan.stage2_steps} steps"
        f"{f', stopping at {plan.last_step}' if plan.last_step < plan.planned_steps else ''}; {device}"
        f"{', bf16' if use_bf16 else ''}{f', {world} processes' if distributed else ''}"
    )

    # -- the model, its optimisers (Adam, sec. 4) and linear-decay schedules ------------------------------------
    torch.manual_seed(tc.seed)
    model = DAEGAN.from_config(config).to(device)
    if init is not None:  # before DDP wraps the networks: every rank loads the same weights
        loaded = init_networks(model, Path(init), device)
        say(f"initialised from {init}: {', '.join(loaded)} (the rest start fresh)")
    nets = Networks(**model.networks())
    wrapped = (
        Networks(
            *(
                DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
                if net is not None
                else None
                for net in nets
            )
        )
        if distributed
        else nets
    )
    optimizers = build_optimizers(model, tc)
    schedulers = build_schedulers(optimizers, plan, tc)
    trainee = Trainee(model, wrapped, optimizers, ctx, config)

    # -- resume: weights from the checkpoint, everything else from the train state ------------------------------
    step = 0
    record: str | None = None  # the checkpoints' trained_on metadata (model.checkpoint.training_record)
    if resume:
        resumed = run.resume(model, optimizers, schedulers, steps_per_epoch=steps_per_epoch, device=device)
        step, record = resumed.step, resumed.trained_on
        say(f"resuming at step {step}")
    if record is None:  # made once per run; a resumed checkpoint without a record is merged in (so: incomplete)
        record = training_record(data_roots, frames, train_frames, init=run.checkpoint if resume else init)
    commands = (
        training_commands(command, run.checkpoint if resume else init, verb="resumed" if resume else "then")
        if command
        else None
    )
    log = LossLog(run.losses_csv)
    if main_process:
        log.start(resume_step=step if resume else None)
    examples = sample_examples(dataset, tc.num_samples, device) if main_process else None

    def write_checkpoint(step: int, losses: StepLosses | None) -> None:
        """The checkpoint and train state of `step` as one unit (`RunFolder.write`), then the loss plot (rank 0)."""
        if not main_process:
            return
        epoch = step // steps_per_epoch
        metadata = {
            "step": str(step),
            "epoch": str(epoch),
            "losses": json.dumps(losses.present() if losses else {}),
            TRAINED_ON_KEY: record,
            **({TRAINED_WITH_KEY: commands} if commands else {}),
        }  # and "stage", from model.generator_trained (`DAEGAN.save`)
        run.write(
            model, optimizers, schedulers, progress=TrainProgress(step, epoch, steps_per_epoch), metadata=metadata
        )
        plot_losses(log.read(), run.losses_png)

    # -- the loop: a batch through its stage's phases, then the schedules; rows, samples, checkpoints when due -----
    bar = tqdm(
        total=plan.last_step,
        initial=step,
        unit="step",
        desc="train",
        disable=not (progress and main_process),
        dynamic_ncols=True,
    )
    losses: StepLosses | None = None
    stage = plan.stage_of(step)
    while step < plan.last_step:
        epoch, skip = divmod(step, steps_per_epoch)
        for frames_k, target, _, _, labels in epoch_batches(
            loader, epoch, skip * config.data.batch_size, steps_per_epoch - skip
        ):
            batch = make_batch(frames_k, target, config, step=step, rank=rank, device=device, labels=labels)
            stage = plan.stage_of(step)
            model.generator_trained = stage == 2  # from here on, samples show G and checkpoints say stage 2
            if stage == 1:
                terms = stage1_step(trainee, batch, residuals=step >= plan.warmup_steps)
            else:
                terms = stage2_step(trainee, batch)
            step_schedulers(schedulers, stage)
            step += 1
            bar.update(1)

            if step % tc.log_every == 0 or step == plan.last_step:
                losses = StepLosses.from_terms(*terms)
                if main_process:
                    lr = tc.lr * plan.embedder_lr(step - 1, tc.embedder_lr_factor_stage2)  # what this step used
                    log.append(step=step, stage=stage, epoch=epoch, lr=lr, losses=losses)
                    bar.set_postfix(
                        {
                            k: f"{v:.3g}"
                            for k, v in losses.present().items()
                            if k in ("reconstruction", "disc_total", "gen_total")
                        },
                        refresh=False,
                    )
            if main_process and (step % tc.sample_every == 0 or step == plan.last_step):
                write_samples(model, examples, run.sample(step))
            if step % tc.checkpoint_every == 0 or step == plan.last_step:
                write_checkpoint(step, losses)
            if step == plan.last_step:
                break
    bar.close()
    if resume and losses is None and main_process:  # nothing left to train: still leave a fresh plot
        plot_losses(log.read(), run.losses_png)
    set_trainable(model)  # hand back networks in eval mode, without gradients
    if distributed:
        dist.barrier()
    if step < plan.planned_steps:
        say(
            f"stopped at step {step} of {plan.planned_steps} (train.max_steps); --resume with a higher max_steps "
            "continues"
        )
    return TrainResult(step=step, stage=stage, losses=losses, checkpoint=run.checkpoint, model=model)


def join_processes(device: torch.device) -> tuple[int, int, torch.device]:
    """(world size, rank, device) of this process: under torchrun (WORLD_SIZE > 1) it joins the process group and
    takes the CUDA device of its LOCAL_RANK; alone, (1, 0, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return world, 0, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return world, dist.get_rank(), device


def init_networks(model: DAEGAN, path: Path, device: torch.device) -> list[str]:
    """Load each network of the checkpoint at `path` whose tensors match `nets`' names and shapes exactly; the
    others keep their fresh weights (e.g. a G whose design the config changed). Returns the loaded networks' names."""
    checkpoint = load_checkpoint(path, device)
    loaded = []
    for name, net in model.networks().items():
        state = checkpoint.states.get(name, {})
        expected = net.state_dict()
        if state.keys() == expected.keys() and all(state[k].shape == v.shape for k, v in expected.items()):
            net.load_state_dict(state)
            loaded.append(name)
    if not loaded:
        raise DataError(path, "no network of this checkpoint matches the config's shapes")
    return loaded


def read_collections(roots: list[Path], *, fps: float) -> pd.DataFrame:
    """One frame table from several collections; an identity may appear in one collection only."""
    if not roots:
        raise ValueError("give at least one data root")
    tables = [read_collection(root, fps=fps) for root in roots]
    seen: dict[str, Path] = {}
    for root, table in zip(roots, tables):
        for identity in table["identity"].unique():
            if identity in seen:
                raise DataError(root, f"identity {identity!r} is also in {seen[identity]}: rename one of them")
            seen[identity] = Path(root)
    return pd.concat(tables, ignore_index=True)


def epoch_batches(loader: torch.utils.data.DataLoader, epoch: int, skip_items: int, num_batches: int):
    """The loader's first `num_batches` batches of `epoch`, after skipping its first `skip_items` items at the
    sampler (a resumed run does not decode frames it has trained on)."""
    sampler, batch_sampler = loader.sampler, loader.batch_sampler
    sampler.set_epoch(epoch)
    batch_sampler.sampler = _Skip(sampler, skip_items) if skip_items else sampler  # for this epoch only
    try:
        for index, batch in enumerate(loader):
            if index == num_batches:
                break
            yield batch
    finally:
        batch_sampler.sampler = sampler


class _Skip:
    """A sampler's keys less the first `count`."""

    def __init__(self, sampler, count: int) -> None:
        self.sampler, self.count = sampler, count

    def __len__(self) -> int:
        return max(len(self.sampler) - self.count, 0)

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.count, None)
