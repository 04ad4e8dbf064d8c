"""The run folder of a training run: what `daegan train --out` holds, how a run is started or resumed in it, and
how its checkpoint and resume state are written as one unit.

    config.yaml                  the resolved config (a resumed run must match it, bar `RESUMABLE_CHANGES`)
    checkpoint.safetensors       the networks (`model.daegan.DAEGAN.save`, `model.checkpoint`)
    train_state.safetensors      optimisers, schedules, RNG states, step (`model.train_state`)
    checkpoint.pending.safetensors   the next checkpoint, until the train state of its step is written
    losses.csv, losses.png       the loss table and its plot (`model.train_log`)
    samples/step_NNNNNNN.png     sample grids

Choices:
- A checkpoint and its train state are one unit (`RunFolder.write`): the new checkpoint goes beside the old one
  (the pending file), the state next (the commit point: it names the new step), and the checkpoint is then renamed
  into place, each write atomic. A kill anywhere leaves a pair that agrees, or one that `settle_pending_checkpoint`
  completes before a resume reads it.
- A run is resumed only with the config it started with and the same data (steps per epoch): the schedules and
  the data order are functions of both.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from torch.optim.lr_scheduler import LRScheduler

from model.atomic_write import fsync_dir
from model.checkpoint import TRAINED_ON_KEY, load_checkpoint
from model.config import Config, load_config, save_config
from model.daegan import DAEGAN, GENERATOR_STAGES, STAGE_KEY
from model.data.errors import DataError
from model.train_state import TrainProgress, load_train_state, save_train_state

CONFIG_FILE, CHECKPOINT_FILE, STATE_FILE = "config.yaml", "checkpoint.safetensors", "train_state.safetensors"
PENDING_FILE = "checkpoint.pending.safetensors"  # the next checkpoint, until the train state of its step is written
LOSSES_CSV, LOSSES_PNG, SAMPLES_DIR = "losses.csv", "losses.png", "samples"
# Config fields that may differ when resuming: they change when or what is written, never the arithmetic.
RESUMABLE_CHANGES = (
    "train.max_steps",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "data.workers",
)


@dataclass(frozen=True)
class Resumed:
    """What a resumed run continues from, besides the weights and states loaded in place."""

    step: int  # batches trained so far
    trained_on: str | None  # the checkpoint's `model.checkpoint.TRAINED_ON_KEY` record (None: it has none)


@dataclass(frozen=True)
class RunFolder:
    """One training run's folder (module docstring). Only the main process writes; every process may read."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def state(self) -> Path:
        return self.path / STATE_FILE

    @property
    def losses_csv(self) -> Path:
        return self.path / LOSSES_CSV

    @property
    def losses_png(self) -> Path:
        return self.path / LOSSES_PNG

    def sample(self, step: int) -> Path:
        """The sample grid of step `step`."""
        return self.path / SAMPLES_DIR / f"step_{step:07d}.png"

    def open(self, config: Config, *, resume: bool, init: Path | None, main_process: bool, distributed: bool) -> None:
        """Start a run here (refused when the folder holds one), or check that the run here can be resumed with
        `config` (settling an interrupted checkpoint write first); then write the config (main process)."""
        holds_run = (self.path / CONFIG_FILE).exists() or self.checkpoint.exists()
        if holds_run and not resume:
            raise DataError(self.path, "already holds a run; pass --resume or choose another folder")
        if resume and init is not None:
            raise DataError(Path(init), "--init starts a new run; it cannot be combined with --resume")
        if resume and main_process:
            settle_pending_checkpoint(self.path)
        if resume and distributed:
            dist.barrier()  # rank 0 has settled an interrupted checkpoint write before anyone reads the pair
        if resume:
            if not self.state.is_file() or not self.checkpoint.is_file():
                raise DataError(
                    self.path, "holds no run to resume (no checkpoint.safetensors and train_state.safetensors)"
                )
            check_resumable(load_config(self.path / CONFIG_FILE), config, self.path / CONFIG_FILE)
        if distributed:
            dist.barrier()  # every rank has looked at the folder before rank 0 writes into it
        if main_process:
            (self.path / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
            save_config(config, self.path / CONFIG_FILE)

    def resume(
        self,
        model: DAEGAN,
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, LRScheduler],
        *,
        steps_per_epoch: int,
        device: torch.device,
    ) -> Resumed:
        """Load the weights (and whether G has trained) into `model`, and the optimisers, schedules and RNG states
        from the train state, in place; refuse a pair from different steps, or data that make a different number
        of steps per epoch."""
        checkpoint = load_checkpoint(self.checkpoint, device)
        for name, net in model.networks().items():
            net.load_state_dict(checkpoint.states[name])
        model.generator_trained = checkpoint.metadata.get(STAGE_KEY) in GENERATOR_STAGES
        state = load_train_state(self.state, optimizers=optimizers, schedulers=schedulers)
        if int(checkpoint.metadata["step"]) != state.step:
            raise DataError(
                self.state,
                f"is at step {state.step} but the checkpoint at step "
                f"{checkpoint.metadata['step']} (interrupted between the two writes)",
            )
        if state.steps_per_epoch != steps_per_epoch:
            raise DataError(
                self.path,
                f"the data make {steps_per_epoch} steps per epoch, the run had "
                f"{state.steps_per_epoch}: resume with the same data",
            )
        # what the weights have seen, --init's weights included
        return Resumed(step=state.step, trained_on=checkpoint.metadata.get(TRAINED_ON_KEY))

    def write(
        self,
        model: DAEGAN,
        optimizers: dict[str, torch.optim.Optimizer],
        schedulers: dict[str, LRScheduler],
        *,
        progress: TrainProgress,
        metadata: dict[str, str],
    ) -> None:
        """The checkpoint (with `metadata`) and the train state at `progress`, as one unit (module docstring)."""
        model.save(self.path / PENDING_FILE, metadata)
        save_train_state(self.state, progress=progress, optimizers=optimizers, schedulers=schedulers)
        os.replace(self.path / PENDING_FILE, self.checkpoint)
        fsync_dir(self.path)


def settle_pending_checkpoint(out: Path) -> None:
    """Finish or drop a checkpoint write that a kill interrupted (`RunFolder.write`): the pending checkpoint
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


def check_resumable(saved: Config, given: Config, path: Path) -> None:
    """A run continues only with the config it started with (bar `RESUMABLE_CHANGES`)."""

    def flat(config: Config) -> dict[str, object]:
        return {
            f"{section}.{key}": value
            for section, values in dataclasses.asdict(config).items()
            for key, value in values.items()
        }

    before, after = flat(saved), flat(given)
    changed = [key for key in before if before[key] != after[key] and key not in RESUMABLE_CHANGES]
    if changed:
        key = changed[0]
        raise DataError(
            path,
            f"the run was started with {key}={before[key]!r}, not {after[key]!r}; a resumed run "
            f"keeps its config (only {', '.join(RESUMABLE_CHANGES)} may change)",
        )
