"""How long a training run is and how fast each network learns: the step plan, one Adam optimiser per network and
the learning-rate schedules (paper sec. 3.3 "Training Strategy", sec. 4 "Implementation details": Adam with betas
(0, 0.9), lr 1e-4, D 4e-4, linear decay; F and P's lr "decreased by a factor of 10" once stage 2 starts).

Choices (the paper is silent):
- Learning rates decay linearly to 0 over the *planned* run (stage1_epochs + stage2_epochs): F and P from step 0
  (x0.1 from stage 2 on), G and D from the start of stage 2 to its end. `train.max_steps` only stops early: the
  stages and schedules do not change, so a capped run continues exactly with `resume` and a higher cap.
- G and D's schedules count stage-2 steps only: they step with the stage-2 steps (`step_schedulers`).
- The domain critic (`loss.domain_weight`) learns at a constant `train.critic_lr`: an adversary whose rate decayed
  with P's would fall behind the code it judges.
- The schedules are `LambdaLR`s over plain functions, whose state (step counts, rates) `model.train_state` saves
  and whose functions it leaves out: the functions are code, rebuilt from the plan on resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from model.config import TrainConfig
from model.daegan import DAEGAN

EMBEDDERS = ("face_embedder", "pose_embedder")  # F and P: stages 1 and 2
CRITIC = "domain_critic"  # P's adversary under loss.domain_weight: trains wherever P does, at a constant rate
ADVERSARIAL = ("generator", "discriminator")  # G and D: stage 2 only


@dataclass(frozen=True)
class Plan:
    """Where a run's stages start and end, in steps (batches of every process together)."""

    steps_per_epoch: int  # the same on every process
    stage1_steps: int  # stage 1: F and P on eq. 5
    warmup_steps: int  # the first stage-1 steps, which render with P's warp alone (`train.warp_warmup_epochs`)
    stage2_steps: int  # stage 2: D, G, F and P in turn (0 without `train.adversarial`)
    last_step: int  # where this run stops: the planned end, or `train.max_steps` before it

    @classmethod
    def from_config(cls, config: TrainConfig, *, steps_per_epoch: int) -> Plan:
        stage1_steps = config.stage1_epochs * steps_per_epoch
        stage2_steps = config.stage2_epochs * steps_per_epoch if config.adversarial else 0
        planned_steps = stage1_steps + stage2_steps
        return cls(
            steps_per_epoch=steps_per_epoch,
            stage1_steps=stage1_steps,
            warmup_steps=round(config.warp_warmup_epochs * steps_per_epoch),
            stage2_steps=stage2_steps,
            last_step=min(planned_steps, config.max_steps or planned_steps),
        )

    @property
    def planned_steps(self) -> int:
        """Both stages' steps: what the schedules decay over."""
        return self.stage1_steps + self.stage2_steps

    def stage_of(self, step: int) -> int:
        """The stage (1 or 2) of the step that follows `step` steps done."""
        return 1 if step < self.stage1_steps else 2

    def embedder_lr(self, step: int, stage2_factor: float) -> float:
        """F and P's learning rate at step `step`, as a fraction of `train.lr`: linear decay over the whole run,
        times `stage2_factor` (`train.embedder_lr_factor_stage2`) in stage 2."""
        return (1 - step / self.planned_steps) * (stage2_factor if step >= self.stage1_steps else 1.0)

    def adversarial_lr(self, stage2_step: int) -> float:
        """G and D's learning rate at stage-2 step `stage2_step`, as a fraction of theirs: from 1 at stage 2's start
        to 0 at its end."""
        return 1 - stage2_step / max(self.stage2_steps, 1)


def build_optimizers(model: DAEGAN, config: TrainConfig) -> dict[str, torch.optim.Adam]:
    """Adam for each network of `model` by its name (sec. 4): `train.disc_lr` for D, `train.lr` for F, P and G;
    the domain critic's at `train.critic_lr` with `train.critic_betas`. With `train.freeze_pose_encoder`, P's
    optimiser holds its decoder's weights alone, so the encoder's never move."""
    lrs = {"discriminator": config.disc_lr, CRITIC: config.critic_lr}
    frozen = {id(p) for p in model.pose_embedder.encoder_parameters()} if config.freeze_pose_encoder else set()
    return {
        name: torch.optim.Adam(
            [p for p in net.parameters() if id(p) not in frozen],
            lr=lrs.get(name, config.lr),
            betas=config.critic_betas if name == CRITIC else config.betas,
        )
        for name, net in model.networks().items()
    }


def build_schedulers(
    optimizers: dict[str, torch.optim.Optimizer], plan: Plan, config: TrainConfig
) -> dict[str, LambdaLR]:
    """The linear-decay schedule of each optimiser, by network name (module docstring)."""

    def embedders(step: int) -> float:  # a plain function, so that the scheduler's state_dict leaves it out
        return plan.embedder_lr(step, config.embedder_lr_factor_stage2)

    def adversarial(stage2_step: int) -> float:
        return plan.adversarial_lr(stage2_step)

    def constant(step: int) -> float:
        return 1.0

    schedules = {CRITIC: constant, **{name: embedders for name in EMBEDDERS}}
    return {name: LambdaLR(optimizer, schedules.get(name, adversarial)) for name, optimizer in optimizers.items()}


def step_schedulers(schedulers: dict[str, LambdaLR], stage: int) -> None:
    """Advance the schedules after a step of `stage`: F and P's (and the domain critic's constant one) always, G
    and D's in stage 2 only."""
    names = (*ADVERSARIAL, *EMBEDDERS) if stage == 2 else EMBEDDERS
    for name in (*names, CRITIC) if CRITIC in schedulers else names:
        schedulers[name].step()
