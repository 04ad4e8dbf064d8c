"""The two-stage DAE-GAN trainer (paper sec. 3.3 "Training Strategy", sec. 4 "Implementation details").

Stage 1 trains the face embedder F and the pose embedder P jointly on eq. 5 (L_REC + lambda_S L_S). Stage 2 lowers
their learning rate by 10x and adds the generator G and the discriminator D; "the four networks are optimized one
by one; when one is under training, the parameters of the rest are frozen". Adam with betas (0, 0.9), lr 1e-4
(D: 4e-4), linear decay. Read `train` top to bottom: set-up, data, networks, resume, then the loop.

Notable choices (the paper is silent):
- One stage-2 step is four explicit phases on the same batch, in the order D, G, F, P. Each phase recomputes the
  forward passes it needs, so every update sees the weights the previous phase left (4 forward passes a batch):
  D: hinge loss (eq. 7) on the real target vs G(f, p) computed without gradients.
  G: eq. 6 (hinge L_G + lambda_R L1 content + lambda_FM feature matching) with F, P, D frozen.
  F, then P: eq. 5 plus G's eq. 6 objective through the frozen G and D; the gradient reaches only the network
  being trained.
  Frozen networks get requires_grad False and eval mode, so nothing of theirs moves (not even spectral norm's
  power-iteration vectors in D).
- Learning rates decay linearly to 0 over the *planned* run (stage1_epochs + stage2_epochs): F and P from step 0
  (x0.1 from stage 2 on), G and D from the start of stage 2 to its end. `train.max_steps` only stops early: the
  schedule does not change, so a capped run continues exactly with `resume` and a higher cap.
- D sees the real and the fake batch concatenated in one forward pass (one spectral-norm update per D step, and
  one forward per backward as DistributedDataParallel wants). The per-item outputs equal two separate passes.
- Resume is exact: networks (checkpoint), optimisers, schedulers and RNG states (train_state) are restored, and
  the data order is a pure function of (seed, epoch), so the batches already done in the current epoch are
  skipped at the sampler without decoding a frame; P's input augmentation draws from a generator per (seed, step,
  rank) (`model.augment.step_generator`), not torch's global one, which a DataLoader iterator also draws from.
  Checkpoint and state are written as one unit (`write_run`, `settle_pending_checkpoint`): a kill in the middle of
  a write still resumes from the last complete pair.
- Departures that keep the pose code on motion (DESIGN.md; each a config switch, off in the paper preset): P's
  encoder sees an augmented copy of the target (`config.augment`, the same copy in every phase of a step), the first
  `train.warp_warmup_epochs` render with P's warp alone, P's residuals are under a budget (`loss.residual_weight`),
  and with `train.gen_trains_pose_embedder: false` phase P optimises eq. 5 alone. With `loss.contrast_weight`, P
  also encodes a second augmented view of each target and views of its K source frames (`contrast_views`, drawn
  from their own stream of `step_generator`) for the within-video contrastive term L_C (`model.losses`), in stage
  1 and in phase P.
- Multi-GPU (torchrun): one process per device, each network in DistributedDataParallel, data sharded by rank;
  rank 0 alone writes. The network being trained runs through its DDP wrapper, frozen ones as plain modules.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
import torch.distributed as dist
from safetensors import safe_open
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model.atomic_write import fsync_dir
from model.augment import STREAM_CONTRAST, augment_pose_input, step_generator
from model.checkpoint import TRAINED_ON_KEY, load_checkpoint, save_checkpoint, training_record
from model.config import Config, load_config, save_config
from model.data.collection import read_collection
from model.data.dataset import VideoFramesDataset, make_loader
from model.data.errors import DataError
from model.data.split import TRAIN, split_by_identity
from model.device import pick_device  # noqa: F401  (re-exported: `from model.train import pick_device`)
from model.discriminator import Discriminator
from model.face_embedder import FaceEmbedder, FaceEmbedding
from model.generator import Generator
from model.losses import (
    DiscriminatorLoss,
    GeneratorLoss,
    Stage1Loss,
    discriminator_loss,
    generator_loss,
    stage1_loss,
    within_video_contrast,
)
from model.pose_embedder import PoseEmbedder, PoseReconstruction
from model.train_log import LossLog, StepLosses, plot_losses, sample_grid
from model.train_state import TrainProgress, load_train_state, save_train_state
from model.warp import flow_to_colour, resize

CONFIG_FILE, CHECKPOINT_FILE, STATE_FILE = "config.yaml", "checkpoint.safetensors", "train_state.safetensors"
PENDING_FILE = "checkpoint.pending.safetensors"  # the next checkpoint, until the train state of its step is written
LOSSES_CSV, LOSSES_PNG, SAMPLES_DIR = "losses.csv", "losses.png", "samples"
# Config fields that may differ when resuming: they change when or what is written, never the arithmetic.
RESUMABLE_CHANGES = ("train.max_steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
                     "data.workers")


class Networks(NamedTuple):
    """The four networks of DAE-GAN (or, during training, their DistributedDataParallel wrappers)."""

    face_embedder: torch.nn.Module  # F, eq. 1
    pose_embedder: torch.nn.Module  # P, eq. 2
    generator: torch.nn.Module  # G, sec. 3.2
    discriminator: torch.nn.Module  # D, sec. 3.2


@dataclass(frozen=True)
class TrainResult:
    """How a run ended."""

    step: int  # batches trained in all
    stage: int  # 1 or 2: the stage of the last step
    losses: StepLosses | None  # the last step's terms (None when this call trained no step)
    checkpoint: Path  # out/checkpoint.safetensors
    networks: Networks  # the trained networks (this process's replica)


def set_trainable(nets: Networks, *names: str) -> None:
    """Unfreeze the named networks (train mode, gradients) and freeze the rest (eval mode, no gradients)."""
    for name, net in zip(Networks._fields, nets):
        net.requires_grad_(name in names)
        net.train(name in names)


def judge(disc: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, face: torch.Tensor, conditional: bool):
    """D on fake and real in one pass: (fake logits, real logits, fake features, real features)."""
    condition = torch.cat([face, face]) if conditional else None  # a conditional D sees f beside either image
    out = disc(torch.cat([fake, real]), condition)  # (2B, ...)
    fake_logits, real_logits = out.logits.float().chunk(2)
    halves = [f.float().chunk(2) for f in out.features]
    return fake_logits, real_logits, [h[0] for h in halves], [h[1] for h in halves]


def draft_of(nets: Networks, reconstruction: torch.Tensor) -> torch.Tensor | None:
    """G's draft (`model.gen_refines_decoder`): P's rendering of the face in the target's pose, eq. 2, which is
    the reconstruction of the target; None when G works from the face alone."""
    return reconstruction if nets.generator.refines_decoder else None


def adversarial_objective(gen: torch.nn.Module, disc: torch.nn.Module, face: torch.Tensor, pose_code: torch.Tensor,
                          draft: torch.Tensor | None, target: torch.Tensor, config: Config):
    """Eq. 6 for G(face, pose_code[, draft]) against the driving frame `target`."""
    fake = gen(face, pose_code, draft)
    fake_logits, _, fake_features, real_features = judge(disc, fake, target, face, config.model.disc_conditional)
    return generator_loss(fake_logits, fake.float(), target, fake_features, real_features,
                          content_weight=config.loss.content_weight,
                          feature_matching_weight=config.loss.feature_matching_weight)


def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class StepTerms(NamedTuple):
    """The loss terms of one training step (`disc` and `gen` are None in stage 1)."""

    s1: Stage1Loss  # eq. 5; in stage 2 the P phase's
    disc: DiscriminatorLoss | None  # eq. 7 (phase D)
    gen: GeneratorLoss | None  # eq. 6 (phase G)


def embedders_loss(target: torch.Tensor, embedding: FaceEmbedding, rec: PoseReconstruction,
                   config: Config) -> Stage1Loss:
    """Eq. 5 (plus the residual budget) for F's embedding and P's reconstruction of `target`, plus L_C when P
    encoded the contrastive views (`contrast_views`: its `view_codes` hold the target's second view, then the K
    source frames of each item)."""
    residuals = [r for r in (rec.residual_low, rec.residual_high) if r is not None]
    contrast = None
    if rec.view_codes is not None:
        b, dim = rec.pose_code.shape
        contrast = within_video_contrast(rec.pose_code, rec.view_codes[:b], rec.view_codes[b:].view(b, -1, dim),
                                         temperature=config.loss.contrast_temperature)
    return stage1_loss(target, rec.reconstruction.float(), embedding.flow.float(), rec.flow.float(), residuals,
                       smooth_weight=config.loss.smooth_weight, residual_weight=config.loss.residual_weight,
                       pyramid_levels=config.loss.pyramid_levels, contrast=contrast,
                       contrast_weight=config.loss.contrast_weight)


def contrast_views(frames_k: torch.Tensor, target: torch.Tensor, config: Config, generator: torch.Generator
                   ) -> torch.Tensor | None:
    """What P encodes for L_C: a second augmented view of each target, then views of each item's K source frames,
    (B + B*K, 3, S, S); None when `loss.contrast_weight` is 0 (nothing extra is encoded)."""
    if config.loss.contrast_weight == 0:
        return None
    return augment_pose_input(torch.cat([target, frames_k.flatten(0, 1)]), config.augment, generator=generator)


def stage1_step(nets: Networks, wrapped: Networks, optimizers: dict[str, torch.optim.Optimizer],
                frames_k: torch.Tensor, target: torch.Tensor, pose_input: torch.Tensor, ctx, config: Config, *,
                residuals: bool = True, views: torch.Tensor | None = None) -> StepTerms:
    """One stage-1 step: F and P together on eq. 5. frames_k (B, K, 3, S, S), target (B, 3, S, S) on the device,
    pose_input (B, 3, S, S) what P's encoder sees of the target (`model.augment`); `wrapped` are the networks to
    train through (DDP wrappers or `nets` itself), `ctx` the autocast context; `residuals=False` is the warp-only
    warm-up (`train.warp_warmup_epochs`); `views` what P also encodes for L_C (`contrast_views`), or None."""
    set_trainable(nets, "face_embedder", "pose_embedder")
    with ctx:
        embedding = wrapped.face_embedder(frames_k)
        rec = wrapped.pose_embedder(pose_input, embedding.face, residuals=residuals, views=views)
        s1 = embedders_loss(target, embedding, rec, config)
    f_opt, p_opt = optimizers["face_embedder"], optimizers["pose_embedder"]
    f_opt.zero_grad(set_to_none=True)
    p_opt.zero_grad(set_to_none=True)
    s1.total.backward()
    f_opt.step()
    p_opt.step()
    return StepTerms(s1, None, None)


def stage2_step(nets: Networks, wrapped: Networks, optimizers: dict[str, torch.optim.Optimizer],
                frames_k: torch.Tensor, target: torch.Tensor, pose_input: torch.Tensor, ctx, config: Config, *,
                views: torch.Tensor | None = None) -> StepTerms:
    """One stage-2 step: the phases D, G, F, P in turn on the same batch (module docstring); arguments as
    `stage1_step` (`views` serve phase P's L_C)."""
    f_opt, p_opt, g_opt, d_opt = (optimizers[name] for name in Networks._fields)
    # -- phase D: hinge loss on real vs G(f, p), eq. 7 ------------------------------------------------------------
    set_trainable(nets, "discriminator")
    with ctx:
        with torch.no_grad():  # F and P stay frozen through phases D and G: this one pass serves both
            face = nets.face_embedder(frames_k).face
            rec = nets.pose_embedder(pose_input, face)
            fake = nets.generator(face, rec.pose_code, draft_of(nets, rec.reconstruction))
        fake_logits, real_logits, _, _ = judge(wrapped.discriminator, fake, target, face,
                                               config.model.disc_conditional)
        disc = discriminator_loss(real_logits, fake_logits)
    update(d_opt, disc.total)
    # -- phase G: eq. 6 with F, P, D frozen -----------------------------------------------------------------------
    set_trainable(nets, "generator")
    with ctx:
        gen = adversarial_objective(wrapped.generator, nets.discriminator, face, rec.pose_code,
                                    draft_of(nets, rec.reconstruction), target, config)
    update(g_opt, gen.total)
    # -- phase F: eq. 5 + eq. 6 through frozen P, G, D ------------------------------------------------------------
    set_trainable(nets, "face_embedder")
    with ctx:
        embedding = wrapped.face_embedder(frames_k)
        rec = nets.pose_embedder(pose_input, embedding.face)
        s1 = embedders_loss(target, embedding, rec, config)
        gen_f = adversarial_objective(nets.generator, nets.discriminator, embedding.face, rec.pose_code,
                                      draft_of(nets, rec.reconstruction), target, config)
    update(f_opt, s1.total + gen_f.total)
    # -- phase P: eq. 5 + eq. 6 through frozen F, G, D (eq. 5 alone without train.gen_trains_pose_embedder) ------
    set_trainable(nets, "pose_embedder")
    with ctx:
        with torch.no_grad():
            embedding = nets.face_embedder(frames_k)
        rec = wrapped.pose_embedder(pose_input, embedding.face, views=views)
        s1 = embedders_loss(target, embedding, rec, config)
        objective = s1.total
        if config.train.gen_trains_pose_embedder:
            objective = objective + adversarial_objective(nets.generator, nets.discriminator, embedding.face,
                                                          rec.pose_code, draft_of(nets, rec.reconstruction), target,
                                                          config).total
    update(p_opt, objective)
    return StepTerms(s1, disc, gen)


def train(config: Config, data_roots: list[Path], out: Path, *, device: torch.device, resume: bool = False,
          init: Path | None = None, progress: bool = True) -> TrainResult:
    """Train DAE-GAN on the frame collections `data_roots` (concatenated), writing the run into `out`.

    `out` gets config.yaml, checkpoint.safetensors, train_state.safetensors, losses.csv, losses.png and
    samples/step_NNNNNNN.png. With `resume`, continue the run in `out` exactly where its last state left it.
    With `init`, a new run starts from that checkpoint's weights (`init_networks`); steps, optimisers and schedules
    start from zero, so `train.stage1_epochs: 0` fine-tunes a trained model's stage 2 alone.
    Launched by torchrun (RANK, WORLD_SIZE set), each process trains one replica on its shard of the data.
    """
    out = Path(out)
    tc = config.train
    # -- distributed set-up: one process per device under torchrun, else a single process --------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    if distributed and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    main_process = rank == 0

    def say(message: str) -> None:
        if main_process and progress:
            tqdm.write(message)

    use_bf16 = tc.precision == "bf16" or (tc.precision == "auto" and device.type == "cuda")
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    # -- the run directory ---------------------------------------------------------------------------------------
    checkpoint_path, state_path = out / CHECKPOINT_FILE, out / STATE_FILE
    holds_run = (out / CONFIG_FILE).exists() or checkpoint_path.exists()
    if holds_run and not resume:
        raise DataError(out, "already holds a run; pass --resume or choose another folder")
    if resume and init is not None:
        raise DataError(Path(init), "--init starts a new run; it cannot be combined with --resume")
    if resume and main_process:
        settle_pending_checkpoint(out)
    if resume and distributed:
        dist.barrier()  # rank 0 has settled an interrupted checkpoint write before anyone reads the pair
    if resume:
        if not state_path.is_file() or not checkpoint_path.is_file():
            raise DataError(out, "holds no run to resume (no checkpoint.safetensors and train_state.safetensors)")
        check_resumable(load_config(out / CONFIG_FILE), config, out / CONFIG_FILE)
    if distributed:
        dist.barrier()  # every rank has looked at `out` before rank 0 writes into it
    if main_process:
        (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        save_config(config, out / CONFIG_FILE)

    # -- data: the training identities of every collection, K source frames + one target per item ---------------
    frames = read_collections(data_roots, fps=config.data.fps)
    split = split_by_identity(frames, test_fraction=config.data.test_fraction, seed=config.data.seed,
                              hold_out=config.data.hold_out)
    train_frames = frames[split == TRAIN]
    if train_frames.empty:
        say(f"no training identities after the split ({frames['identity'].nunique()} identities, all held out): "
            "training on all of them")
        train_frames = frames
    dataset = VideoFramesDataset(train_frames, num_frames=config.data.num_frames, size=config.data.size,
                                 seed=config.data.seed)
    loader = make_loader(dataset, batch_size=config.data.batch_size, workers=config.data.workers, device=device,
                         num_replicas=world, rank=rank)
    steps_per_epoch = len(dataset) // world // config.data.batch_size  # the same on every rank
    if steps_per_epoch == 0:
        raise DataError(data_roots[0], f"{len(dataset)} training frames make no batch of {config.data.batch_size}"
                                       f"{f' per process ({world} processes)' if distributed else ''}")
    stage1_steps = tc.stage1_epochs * steps_per_epoch
    warmup_steps = round(tc.warp_warmup_epochs * steps_per_epoch)  # stage-1 steps that render with the warp alone
    stage2_steps = tc.stage2_epochs * steps_per_epoch if tc.adversarial else 0
    planned_steps = stage1_steps + stage2_steps
    last_step = min(planned_steps, tc.max_steps or planned_steps)
    say(f"training on {len(dataset)} frames of {dataset.frames['identity'].nunique()} identities: "
        f"{steps_per_epoch} steps/epoch, stage 1 {stage1_steps} steps, stage 2 {stage2_steps} steps"
        f"{f', stopping at {last_step}' if last_step < planned_steps else ''}; {device}"
        f"{', bf16' if use_bf16 else ''}{f', {world} processes' if distributed else ''}")

    # -- networks, optimisers (Adam, sec. 4) and linear-decay schedules ------------------------------------------
    torch.manual_seed(tc.seed)
    size = config.data.size
    nets = Networks(FaceEmbedder.from_config(config.model, size=size).to(device),
                    PoseEmbedder.from_config(config.model, size=size).to(device),
                    Generator.from_config(config.model, size=size).to(device),
                    Discriminator.from_config(config.model, size=size).to(device))
    if init is not None:  # before DDP wraps the networks: every rank loads the same weights
        loaded = init_networks(nets, Path(init), device)
        say(f"initialised from {init}: {', '.join(loaded)} (the rest start fresh)")
    wrapped = Networks(*(DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
                         for net in nets)) if distributed else nets
    optimizers = {name: torch.optim.Adam(net.parameters(), lr=tc.disc_lr if name == "discriminator" else tc.lr,
                                         betas=tc.betas) for name, net in zip(Networks._fields, nets)}

    def embedder_lr(step: int) -> float:  # F and P: decay over the whole run, x0.1 in stage 2 (sec. 3.3)
        return (1 - step / planned_steps) * (tc.embedder_lr_factor_stage2 if step >= stage1_steps else 1.0)

    def adversarial_lr(stage2_step: int) -> float:  # G and D: from the initial lr at stage 2's start, to 0
        return 1 - stage2_step / max(stage2_steps, 1)

    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(
        optimizers[name], embedder_lr if name in ("face_embedder", "pose_embedder") else adversarial_lr)
        for name in Networks._fields}

    # -- resume: weights from the checkpoint, everything else from the train state ------------------------------
    step = 0
    record: str | None = None  # the checkpoints' trained_on metadata (model.checkpoint.training_record)
    if resume:
        checkpoint = load_checkpoint(checkpoint_path, device)
        for name, net in zip(Networks._fields, nets):
            net.load_state_dict(checkpoint.states[name])
        state = load_train_state(state_path, optimizers=optimizers, schedulers=schedulers)
        if int(checkpoint.metadata["step"]) != state.step:
            raise DataError(state_path, f"is at step {state.step} but the checkpoint at step "
                                        f"{checkpoint.metadata['step']} (interrupted between the two writes)")
        if state.steps_per_epoch != steps_per_epoch:
            raise DataError(out, f"the data make {steps_per_epoch} steps per epoch, the run had "
                                 f"{state.steps_per_epoch}: resume with the same data")
        step = state.step
        record = checkpoint.metadata.get(TRAINED_ON_KEY)  # what the weights have seen, --init's weights included
        say(f"resuming at step {step}")
    if record is None:  # made once per run; a resumed checkpoint without a record is merged in (so: incomplete)
        record = training_record(data_roots, frames, train_frames, init=checkpoint_path if resume else init)
    log = LossLog(out / LOSSES_CSV)
    if main_process:
        log.start(resume_step=step if resume else None)
    examples = sample_examples(dataset, tc.num_samples, device) if main_process else None

    def write_run(stage: int, losses: StepLosses | None) -> None:
        """Checkpoint and resume state as one unit, then the loss plot (rank 0). The new checkpoint is written
        beside the old one (`PENDING_FILE`), the state next (the commit point: it names the new step), and the
        checkpoint then renamed into place, each step atomic: a kill anywhere leaves a pair that agrees, or one
        that `settle_pending_checkpoint` completes."""
        if not main_process:
            return
        metadata = {"step": str(step), "stage": str(stage), "epoch": str(step // steps_per_epoch),
                    "losses": json.dumps(losses.present() if losses else {}),
                    TRAINED_ON_KEY: record}
        save_checkpoint(out / PENDING_FILE, dict(zip(Networks._fields, nets)), config, metadata)
        save_train_state(state_path, progress=TrainProgress(step, step // steps_per_epoch, steps_per_epoch),
                         optimizers=optimizers, schedulers=schedulers)
        os.replace(out / PENDING_FILE, checkpoint_path)
        fsync_dir(out)
        plot_losses(log.read(), out / LOSSES_PNG)

    # -- the loop ----------------------------------------------------------------------------------------------
    bar = tqdm(total=last_step, initial=step, unit="step", desc="train", disable=not (progress and main_process),
               dynamic_ncols=True)
    losses: StepLosses | None = None
    stage = 1 if step < stage1_steps else 2
    while step < last_step:
        epoch, skip = divmod(step, steps_per_epoch)
        for frames_k, target, _, _ in epoch_batches(loader, epoch, skip * config.data.batch_size,
                                                    steps_per_epoch - skip):
            frames_k = frames_k.to(device, non_blocking=True)  # (B, K, 3, S, S)
            target = target.to(device, non_blocking=True)  # (B, 3, S, S)
            pose_input = augment_pose_input(target, config.augment,  # what P's encoder sees (model.augment)
                                            generator=step_generator(tc.seed, step, rank))
            views = contrast_views(frames_k, target, config, step_generator(tc.seed, step, rank, STREAM_CONTRAST))
            stage = 1 if step < stage1_steps else 2
            if stage == 1:
                s1, disc, gen = stage1_step(nets, wrapped, optimizers, frames_k, target, pose_input, ctx, config,
                                            residuals=step >= warmup_steps, views=views)
            else:
                s1, disc, gen = stage2_step(nets, wrapped, optimizers, frames_k, target, pose_input, ctx, config,
                                            views=views)
                schedulers["generator"].step()
                schedulers["discriminator"].step()
            schedulers["face_embedder"].step()
            schedulers["pose_embedder"].step()
            step += 1
            bar.update(1)

            # -- logging, samples, checkpoints (rank 0) ------------------------------------------------------------
            if step % tc.log_every == 0 or step == last_step:
                losses = StepLosses.from_terms(s1, disc, gen)
                if main_process:
                    lr = tc.lr * embedder_lr(step - 1)  # what this step used (the scheduler has moved on)
                    log.append(step=step, stage=stage, epoch=epoch, lr=lr, losses=losses)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses.present().items()
                                     if k in ("reconstruction", "disc_total", "gen_total")}, refresh=False)
            if main_process and (step % tc.sample_every == 0 or step == last_step):
                write_samples(nets, examples, stage, ctx, out / SAMPLES_DIR / f"step_{step:07d}.png")
            if step % tc.checkpoint_every == 0 or step == last_step:
                write_run(stage, losses)
            if step == last_step:
                break
    bar.close()
    if resume and losses is None and main_process:  # nothing left to train: still leave a fresh plot
        plot_losses(log.read(), out / LOSSES_PNG)
    set_trainable(nets)  # hand back networks in eval mode, without gradients
    if distributed:
        dist.barrier()
    if step < planned_steps:
        say(f"stopped at step {step} of {planned_steps} (train.max_steps); --resume with a higher max_steps continues")
    return TrainResult(step=step, stage=stage, losses=losses, checkpoint=checkpoint_path, networks=nets)


def settle_pending_checkpoint(out: Path) -> None:
    """Finish or drop a checkpoint write that a kill interrupted (`write_run` in `train`): the pending checkpoint
    becomes the checkpoint when the train state already names its step (killed before the rename), and is removed
    when it does not (killed before the state was written: the previous checkpoint and state still agree)."""
    pending, state_path = out / PENDING_FILE, out / STATE_FILE
    if not pending.is_file():
        return
    with safe_open(str(pending), "pt") as handle:
        pending_step = int((handle.metadata() or {}).get("step", -1))
    state_step = -1
    if state_path.is_file():
        with safe_open(str(state_path), "pt") as handle:
            state_step = int(json.loads((handle.metadata() or {}).get("progress", "{}")).get("step", -1))
    if pending_step == state_step:
        os.replace(pending, out / CHECKPOINT_FILE)
    else:
        pending.unlink()
    fsync_dir(out)


def init_networks(nets: Networks, path: Path, device: torch.device) -> list[str]:
    """Load each network of the checkpoint at `path` whose tensors match `nets`' names and shapes exactly; the
    others keep their fresh weights (e.g. a G whose design the config changed). Returns the loaded networks' names."""
    checkpoint = load_checkpoint(path, device)
    loaded = []
    for name, net in zip(Networks._fields, nets):
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


def check_resumable(saved: Config, given: Config, path: Path) -> None:
    """A run continues only with the config it started with (bar `RESUMABLE_CHANGES`)."""
    def flat(config: Config) -> dict[str, object]:
        return {f"{section}.{key}": value for section, values in dataclasses.asdict(config).items()
                for key, value in values.items()}

    before, after = flat(saved), flat(given)
    changed = [key for key in before if before[key] != after[key] and key not in RESUMABLE_CHANGES]
    if changed:
        key = changed[0]
        raise DataError(path, f"the run was started with {key}={before[key]!r}, not {after[key]!r}; a resumed run "
                              f"keeps its config (only {', '.join(RESUMABLE_CHANGES)} may change)")


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


class Examples(NamedTuple):
    """The fixed examples every sample grid shows."""

    frames: torch.Tensor  # (N, K, 3, S, S)
    target: torch.Tensor  # (N, 3, S, S)


def sample_examples(dataset: VideoFramesDataset, count: int, device: torch.device) -> Examples:
    """`count` items spread evenly over the dataset (epoch 0's source frames): the same in every grid."""
    rows = torch.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().long().tolist()
    items = [dataset[(row, 0)] for row in rows]
    return Examples(torch.stack([i.frames for i in items]).to(device),
                    torch.stack([i.target for i in items]).to(device))


@torch.no_grad()
def write_samples(nets: Networks, examples: Examples, stage: int, ctx, path: Path) -> None:
    """A sample grid: the K inputs, embedded face, pose warp (colour), the face moved by the warp alone,
    reconstruction, G's output (stage 2), target."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    with ctx:
        embedding = nets.face_embedder(examples.frames)
        rec = nets.pose_embedder(examples.target, embedding.face)
        fake = (nets.generator(embedding.face, rec.pose_code, draft_of(nets, rec.reconstruction)) if stage == 2
                else None)
    for net, mode in zip(nets, modes):
        net.train(mode)
    size = examples.target.shape[-1]
    columns = [(f"input {k + 1}", examples.frames[:, k]) for k in range(examples.frames.shape[1])]
    columns += [("face", embedding.face), ("pose warp", resize(flow_to_colour(rec.flow.float()), size)),
                ("warp only", resize(rec.warped.float(), size)), ("recon", rec.reconstruction)]
    if fake is not None:
        columns.append(("G(f, p)", fake))
    columns.append(("target", examples.target))
    sample_grid(columns).save(path)
