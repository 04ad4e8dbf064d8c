"""The phases of a DAE-GAN training step, each one network's (or, in stage 1, both embedders') update on one batch
(paper sec. 3.3 "Training Strategy"; the losses are `model.losses`').

- Stage 1 (`stage1_step`): the embedder phase for F and P together, on eq. 5.
- Stage 2 (`stage2_step`): "the four networks are optimized one by one; when one is under training, the parameters
  of the rest are frozen", in the order D, G, F, P:
  D (`discriminator_phase`): the hinge loss, eq. 7, on the real target against G(f, p) made without gradients.
  G (`generator_phase`): eq. 6 (hinge L_G + lambda_R L1 content + lambda_FM feature matching), F, P, D frozen.
  F, then P (`embedder_phase`): eq. 5 plus G's eq. 6 objective through the frozen G and D (P: eq. 5 alone with
  `train.gen_trains_pose_embedder: false`); the gradient reaches only the network being trained.

Choices (the paper is silent):
- F and P are frozen through phases D and G, so one pass of theirs without gradients serves both. Each embedder
  phase then runs its own forward pass, so it sees the weights the phase before it left: the embedders run three
  times a stage-2 step (once for D and G, once for F's phase, once for P's).
- Frozen networks get requires_grad False and eval mode (`set_trainable`), so nothing of theirs moves, not even
  spectral norm's power-iteration vectors in D.
- D sees the real and the fake batch concatenated in one forward pass (`judge`): one spectral-norm update per D
  step, and one forward per backward as DistributedDataParallel wants. The per-item outputs equal two passes.
- The network being trained runs through its DistributedDataParallel wrapper (`Trainee.wrapped`), frozen ones as
  the plain modules of the DAEGAN (`Trainee.model`). What G is given (its draft) is `DAEGAN.generate`'s rule.
- P's encoder sees an augmented copy of the target (`config.augment`; `Batch.pose_input`), the same copy in every
  phase of a step. With `loss.contrast_weight`, P also encodes a second augmented view of each target and views of
  its K source frames (`Batch.views`) for the within-video contrastive term L_C, in every phase that trains P.
  With `loss.label_weight`, the targets' SynthVox labels pull p's first coordinates (L_Y) wherever eq. 5 is
  computed, so P's phase in stage 2 too.
- With `loss.domain_weight`, the domain critic (`model.domain_critic`) trains in every phase that trains P, on the
  same backward pass: it descends L_A, P ascends it through the reversed gradient. A frame without labels is real.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import NamedTuple

import torch

from model.augment import STREAM_CONTRAST, augment_pose_input, step_generator
from model.config import Config
from model.daegan import DAEGAN
from model.face_embedder import FaceEmbedding
from model.losses import (
    DiscriminatorLoss,
    GeneratorLoss,
    Stage1Loss,
    discriminator_loss,
    domain_loss,
    generator_loss,
    label_loss,
    stage1_loss,
    within_video_contrast,
)
from model.pose_embedder import PoseReconstruction


class Networks(NamedTuple):
    """The four networks of DAE-GAN by their checkpoint names: during training, each as it is trained through (its
    DistributedDataParallel wrapper, or the network itself in a single process)."""

    face_embedder: torch.nn.Module  # F, eq. 1
    pose_embedder: torch.nn.Module  # P, eq. 2
    generator: torch.nn.Module  # G, sec. 3.2
    discriminator: torch.nn.Module  # D, sec. 3.2
    domain_critic: torch.nn.Module | None = None  # P's adversary under loss.domain_weight (model.domain_critic)


class Trainee(NamedTuple):
    """What the phases train and how."""

    model: DAEGAN  # F, P, G, D: the frozen networks run as these
    wrapped: Networks  # the same networks as the trained one runs (module docstring)
    optimizers: dict[str, torch.optim.Optimizer]  # by network name
    ctx: AbstractContextManager  # the autocast context (bf16), or a null context
    config: Config  # loss weights, model switches, train switches


class Batch(NamedTuple):
    """One batch on the device, with what P's encoder sees of it."""

    frames_k: torch.Tensor  # (B, K, 3, S, S): F's source frames
    target: torch.Tensor  # (B, 3, S, S): the frame to rebuild (eq. 5) or to imitate (eq. 6)
    pose_input: torch.Tensor  # (B, 3, S, S): the augmented target, P's encoder's input (`model.augment`)
    views: torch.Tensor | None  # (B + B*K, 3, S, S): what P also encodes for L_C (`contrast_views`), or None
    labels: torch.Tensor | None  # (B, L): the targets' standardised labels for L_Y and L_A (NaN rows: real), or None


class StepTerms(NamedTuple):
    """The loss terms of one training step (`disc` and `gen` are None in stage 1)."""

    s1: Stage1Loss  # eq. 5; in stage 2 the P phase's
    disc: DiscriminatorLoss | None  # eq. 7 (phase D)
    gen: GeneratorLoss | None  # eq. 6 (phase G)


def make_batch(
    frames_k: torch.Tensor,
    target: torch.Tensor,
    config: Config,
    *,
    step: int,
    rank: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
) -> Batch:
    """The loader's batch moved to `device`, with P's augmented input and L_C's views drawn from the generators of
    (seed, step, rank) (`model.augment.step_generator`): the same on a resume, whatever the loader drew. `labels`
    (the loader's, `VideoSample.labels`) are kept only when L_Y or L_A asks for them (`loss.label_weight`,
    `loss.domain_weight`)."""
    frames_k = frames_k.to(device, non_blocking=True)  # (B, K, 3, S, S)
    target = target.to(device, non_blocking=True)  # (B, 3, S, S)
    seed = config.train.seed
    pose_input = augment_pose_input(target, config.augment, generator=step_generator(seed, step, rank))
    views = contrast_views(frames_k, target, config, step_generator(seed, step, rank, STREAM_CONTRAST))
    if (config.loss.label_weight == 0 and config.loss.domain_weight == 0) or labels is None:
        labels = None
    else:
        labels = labels.to(device, non_blocking=True)
    return Batch(frames_k, target, pose_input, views, labels)


def contrast_views(
    frames_k: torch.Tensor, target: torch.Tensor, config: Config, generator: torch.Generator
) -> torch.Tensor | None:
    """What P encodes for L_C: a second augmented view of each target, then views of each item's K source frames,
    (B + B*K, 3, S, S); None when `loss.contrast_weight` is 0 (nothing extra is encoded)."""
    if config.loss.contrast_weight == 0:
        return None
    return augment_pose_input(torch.cat([target, frames_k.flatten(0, 1)]), config.augment, generator=generator)


def set_trainable(model: DAEGAN, *names: str) -> None:
    """Unfreeze the named networks (train mode, gradients) and freeze the rest (eval mode, no gradients)."""
    for name, net in model.networks().items():
        net.requires_grad_(name in names)
        net.train(name in names)


def update(loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
    """One gradient step of `loss` for the networks of `optimizers`."""
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()


def stage1_step(t: Trainee, batch: Batch, *, residuals: bool) -> StepTerms:
    """One stage-1 step: F and P together on eq. 5; `residuals=False` is the warp-only warm-up
    (`train.warp_warmup_epochs`)."""
    s1 = embedder_phase(t, batch, ("face_embedder", "pose_embedder"), adversarial=False, residuals=residuals)
    return StepTerms(s1, None, None)


def stage2_step(t: Trainee, batch: Batch) -> StepTerms:
    """One stage-2 step: the phases D, G, F, P in turn on the same batch (module docstring)."""
    with t.ctx, torch.no_grad():  # F and P stay frozen through phases D and G: this one pass serves both
        face = t.model.face_embedder(batch.frames_k).face  # (B, 3, S, S)
        rec = t.model.pose_embedder(batch.pose_input, face)
    disc = discriminator_phase(t, batch.target, face, rec)
    gen = generator_phase(t, batch.target, face, rec)
    embedder_phase(t, batch, ("face_embedder",), adversarial=True)
    s1 = embedder_phase(t, batch, ("pose_embedder",), adversarial=t.config.train.gen_trains_pose_embedder)
    return StepTerms(s1, disc, gen)


def discriminator_phase(
    t: Trainee, target: torch.Tensor, face: torch.Tensor, rec: PoseReconstruction
) -> DiscriminatorLoss:
    """Phase D: eq. 7 on the real `target` against G's image of `face` in `rec`'s pose, made without gradients."""
    set_trainable(t.model, "discriminator")
    with t.ctx:
        with torch.no_grad():
            fake = t.model.generate(face, rec.pose_code, rec.reconstruction)
        fake_logits, real_logits, _, _ = judge(
            t.wrapped.discriminator, fake, target, face, t.config.model.disc_conditional
        )
        disc = discriminator_loss(real_logits, fake_logits)
    update(disc.total, t.optimizers["discriminator"])
    return disc


def generator_phase(t: Trainee, target: torch.Tensor, face: torch.Tensor, rec: PoseReconstruction) -> GeneratorLoss:
    """Phase G: eq. 6 for G's image of `face` in `rec`'s pose against `target`, with F, P, D frozen."""
    set_trainable(t.model, "generator")
    with t.ctx:
        gen = adversarial_objective(t, t.wrapped.generator, face, rec, target)
    update(gen.total, t.optimizers["generator"])
    return gen


def embedder_phase(
    t: Trainee, batch: Batch, names: tuple[str, ...], *, adversarial: bool, residuals: bool = True
) -> Stage1Loss:
    """Train the embedders `names` (F, P or both) on eq. 5, plus eq. 6 through the frozen G and D when
    `adversarial`; the other embedder runs frozen. P encodes L_C's views when it trains (L_C moves P alone), and
    the domain critic, when there is one, trains with P on L_A; `residuals` as `PoseEmbedder.forward`. Returns eq.
    5's terms."""
    critic = t.wrapped.domain_critic if "pose_embedder" in names else None
    if critic is not None:
        names = (*names, "domain_critic")
    set_trainable(t.model, *names)
    face_embedder = t.wrapped.face_embedder if "face_embedder" in names else t.model.face_embedder
    pose_embedder = t.wrapped.pose_embedder if "pose_embedder" in names else t.model.pose_embedder
    with t.ctx:
        embedding = face_embedder(batch.frames_k)
        rec = pose_embedder(
            batch.pose_input,
            embedding.face,
            residuals=residuals,
            views=batch.views if "pose_embedder" in names else None,
        )
        s1 = embedders_loss(batch.target, embedding, rec, t.config, labels=batch.labels, critic=critic)
        objective = s1.total
        if adversarial:
            objective = objective + adversarial_objective(t, t.model.generator, embedding.face, rec, batch.target).total
    update(objective, *(t.optimizers[name] for name in names))
    return s1


def embedders_loss(
    target: torch.Tensor,
    embedding: FaceEmbedding,
    rec: PoseReconstruction,
    config: Config,
    *,
    labels: torch.Tensor | None = None,
    critic: torch.nn.Module | None = None,
) -> Stage1Loss:
    """Eq. 5 (plus the residual budget) for F's embedding and P's reconstruction of `target`, plus L_C when P
    encoded the contrastive views (`contrast_views`: its `view_codes` hold the target's second view, then the K
    source frames of each item), plus L_Y when the targets' `labels` are given and `loss.label_weight` asks, plus
    L_A when the domain `critic` is given (the frames without labels are the real ones)."""
    residuals = [r for r in (rec.residual_low, rec.residual_high) if r is not None]
    real = None if critic is None or labels is None else labels.isnan().all(dim=1)  # (B,): frames without labels
    contrast = None
    if rec.view_codes is not None:
        b, dim = rec.pose_code.shape
        contrast = within_video_contrast(
            rec.pose_code,
            rec.view_codes[:b],
            rec.view_codes[b:].view(b, -1, dim),
            temperature=config.loss.contrast_temperature,
        )
    return stage1_loss(
        target,
        rec.reconstruction.float(),
        embedding.flow.float(),
        rec.flow.float(),
        residuals,
        smooth_weight=config.loss.smooth_weight,
        face_smooth_weight=config.loss.face_smooth_weight,
        residual_weight=config.loss.residual_weight,
        pyramid_levels=config.loss.pyramid_levels,
        contrast=contrast,
        contrast_weight=config.loss.contrast_weight,
        labels=None
        if labels is None or config.loss.label_weight == 0
        else label_loss(rec.pose_code, labels, scale=config.loss.label_scale),
        label_weight=config.loss.label_weight,
        domain=None if real is None else domain_loss(critic(rec.pose_code), real),
        domain_weight=config.loss.domain_weight,
    )


def adversarial_objective(
    t: Trainee, generator: torch.nn.Module, face: torch.Tensor, rec: PoseReconstruction, target: torch.Tensor
) -> GeneratorLoss:
    """Eq. 6 for G's image of `face` in `rec`'s pose (G run as `generator`) against the driving frame `target`,
    judged by the frozen D."""
    fake = t.model.generate(face, rec.pose_code, rec.reconstruction, generator=generator)
    fake_logits, _, fake_features, real_features = judge(
        t.model.discriminator, fake, target, face, t.config.model.disc_conditional
    )
    return generator_loss(
        fake_logits,
        fake.float(),
        target,
        fake_features,
        real_features,
        content_weight=t.config.loss.content_weight,
        feature_matching_weight=t.config.loss.feature_matching_weight,
    )


def judge(
    disc: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, face: torch.Tensor, conditional: bool
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """D on fake and real in one pass: (fake logits, real logits, fake features, real features)."""
    condition = torch.cat([face, face]) if conditional else None  # a conditional D sees f beside either image
    out = disc(torch.cat([fake, real]), condition)  # (2B, ...)
    fake_logits, real_logits = out.logits.float().chunk(2)
    halves = [f.float().chunk(2) for f in out.features]
    return fake_logits, real_logits, [h[0] for h in halves], [h[1] for h in halves]
