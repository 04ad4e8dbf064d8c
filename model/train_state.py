"""Resume state of a training run: optimisers, LR schedulers, step and RNG streams, in one safetensors file.

The network weights live in the checkpoint (`model.checkpoint`); this file holds everything else a run needs to
continue exactly where it stopped. Tensors (Adam's moments and step counts, the torch RNG states, numpy's
Mersenne-Twister key) are safetensors tensors; everything else (param groups, scheduler counters, the python RNG
state, step, epoch) is JSON in the string metadata. Never pickle: a resume file is data, not code.

Tensor names: ``optimizer.<name>.<param index>.<state key>``, ``rng.torch``, ``rng.cuda.<device>``,
``rng.numpy``. Metadata: ``format``, ``progress`` (step, epoch, steps per epoch),
``optimizer.<name>`` (param groups and non-tensor state), ``scheduler.<name>``, ``rng.numpy``, ``rng.python``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import atomic_save_tensors, read_tensors
from model.data.errors import DataError

FORMAT = "posedex.train_state/1"


@dataclass(frozen=True)
class TrainProgress:
    """Where a run stands: `step` batches done, in epoch `epoch` (0-based), with `steps_per_epoch` per epoch."""

    step: int
    epoch: int
    steps_per_epoch: int


def save_train_state(
    path: str | Path,
    *,
    progress: TrainProgress,
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
) -> None:
    """Write optimisers, schedulers, progress and this process's RNG states to `path`, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    metadata = {"format": FORMAT, "progress": json.dumps(asdict(progress))}
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        plain: dict[str, dict[str, object]] = {}
        for index, values in state["state"].items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{name}.{index}.{key}"] = value
                else:
                    plain.setdefault(str(index), {})[key] = value
        metadata[f"optimizer.{name}"] = json.dumps({"param_groups": state["param_groups"], "state": plain})
    for name, scheduler in schedulers.items():
        metadata[f"scheduler.{name}"] = json.dumps(scheduler.state_dict())  # counters and lrs; lambdas are code
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    kind, key, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(key.astype(np.int64))  # (624,) uint32 values
    metadata["rng.numpy"] = json.dumps([kind, int(pos), int(has_gauss), float(cached)])
    metadata["rng.python"] = json.dumps(random.getstate())
    atomic_save_tensors(tensors, path, metadata)


def load_train_state(
    path: str | Path,
    *,
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler],
) -> TrainProgress:
    """Restore what `save_train_state` wrote into freshly built optimisers and schedulers, and the RNG states;
    return the progress. Optimiser tensors go to the device of the parameters they belong to."""
    path = Path(path)
    tensors, metadata = read_tensors(path, expected_format=FORMAT, what="resume state")
    for name, optimizer in optimizers.items():
        if f"optimizer.{name}" not in metadata:
            raise DataError(path, f"holds no state for optimizer {name!r}")
        saved = json.loads(metadata[f"optimizer.{name}"])
        state: dict[int, dict[str, object]] = {int(i): dict(v) for i, v in saved["state"].items()}
        prefix = f"optimizer.{name}."
        for key, tensor in tensors.items():
            if key.startswith(prefix):
                index, _, field = key[len(prefix) :].partition(".")
                state.setdefault(int(index), {})[field] = tensor
        for group in saved["param_groups"]:
            group["betas"] = tuple(group["betas"])  # JSON turned the tuple into a list
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})  # moves to param devices
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(json.loads(metadata[f"scheduler.{name}"]))
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(len(tensors)) if f"rng.cuda.{i}" in tensors]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    kind, pos, has_gauss, cached = json.loads(metadata["rng.numpy"])
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = json.loads(metadata["rng.python"])
    random.setstate((version, tuple(internal), gauss))
    return TrainProgress(**json.loads(metadata["progress"]))
