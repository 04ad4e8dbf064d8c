"""Encoding a build's frames on a Ray cluster (`index build --ray`): Ray Data reads, crops and encodes them; the
driver gets the codes back in frame order and hands them to the build's single writer (DESIGN.md, "Scale and
serving").

Pipeline: the frame rows (position, file, frame number) as a Ray Dataset -> `map_batches(read_squares)`, tasks
that load each frame and centre-crop it to the model's square (uint8), or mark it with why it could not be read ->
`map_batches(PoseEncoder)`, a pool of actors that each load the model once and encode batches -> `iter_batches` on
the driver, yielding `EncodedFrames` as `indexer.build` yields them from its local loader.

Choices made:

- Same frames, same ids as the single-process build: Ray Data keeps the input order (`preserve_order`), and the
  driver also passes every row through a reorder buffer keyed by its position, so batches reach the writer in scan
  order whatever the cluster did; a row seen twice (a retried batch) is kept once, and a row never seen is an
  error, so a build is whole or fails.
- Frames travel as uint8 crops (a quarter of float tensors); the encoder makes tensors with the same `to_tensor`,
  so codes equal the single-process build's up to float rounding (batch composition, thread counts).
- The checkpoint's bytes travel with the actors, which check their sha256: worker nodes need the frames at the
  same paths (a shared filesystem) and posedex installed, but not the checkpoint file.
- Fault tolerance is Ray Data's default for actor pools: a dead encoder is restarted (``max_restarts=-1``) and its
  batches in flight retried (``max_task_retries=-1``); read tasks are retried by Ray Core. Passing these explicitly
  is deprecated in Ray 2.60 (it warns), so they are left to the defaults, which tests/indexer/test_ray_build.py
  pins by killing an encoder's process mid-build.
- Where the cluster has GPUs: one encoder per GPU (`num_gpus=1`), reads in CPU tasks beside them. CPU only: one
  encoder per CPU with one torch thread each; Ray Data then fuses the read into the encoders (same resources), so
  each actor reads and encodes its own batches and no image crosses the object store.
- Ray is imported here only, and `indexer.build` imports this module only with ``--ray``. A Ray instance this
  module started is shut down when the frames are done; one already running (the caller's) is left running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import ray.data
import torch

from indexer.build import EncodedFrames, read_square
from model.daegan import DAEGAN
from model.data.dataset import to_tensor
from model.device import pick_device

MAX_BLOCKS = 4096  # input blocks at most: one batch each spreads a build over a cluster; more costs scheduling


@dataclass(frozen=True)
class RayPlan:
    """How the pipeline is laid out on the cluster it runs on."""

    encoders: int  # actors in the encoder pool
    gpus_per_encoder: int  # 1 on a cluster with GPUs, else 0
    batch_size: int  # frames per read task and per encoder call


def encode_with_ray(
    files: Sequence[str],
    frames: Sequence[int],
    checkpoint: Path,
    *,
    size: int,
    batch_size: int,
    address: str | None = None,
    encoders: int | None = None,
) -> Generator[EncodedFrames]:
    """Read, crop and encode frame `i` of the table (`files[i]`, `frames[i]`) on a Ray cluster; yields
    `EncodedFrames` whose positions, taken together, are 0..N-1 in ascending order, each once.

    Where this process already runs Ray, that instance is used (and `address` ignored); else `address` None starts
    a local one (as `ray.init()`, which also honours RAY_ADDRESS), and "auto" or "ray://HEAD:10001" joins that
    cluster. `encoders`: the pool's size (default: one per GPU, else one per CPU, at most one per batch).
    """
    assert len(files) == len(frames)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False if address is None else None, log_to_driver=False)
    try:
        plan = plan_for(ray.cluster_resources(), frames=len(files), batch_size=batch_size, encoders=encoders)
        dataset = _dataset(files, frames, Path(checkpoint).read_bytes(), size=size, plan=plan)
        yield from in_order(_batches(dataset), len(files))
    finally:
        if started_here:
            ray.shutdown()


def plan_for(resources: dict[str, float], *, frames: int, batch_size: int, encoders: int | None = None) -> RayPlan:
    """The pool for `frames` frames on a cluster of `resources` (`ray.cluster_resources()`): one encoder per GPU,
    else per CPU, and never more than there are batches (Ray Data warns of actors that could get no work)."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    batches = max(1, -(-frames // batch_size))
    return RayPlan(
        encoders=min(encoders or max(1, gpus or cpus), batches),
        gpus_per_encoder=1 if gpus else 0,
        batch_size=batch_size,
    )


def read_squares(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    """Ray task: load and crop each frame of a batch of rows; a bad one keeps its row with its reason."""
    n = len(batch["row"])
    img = np.zeros((n, size, size, 3), np.uint8)  # (B, S, S, 3); a bad frame's stays black and is never encoded
    width, height, reason = np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n, "", dtype=object)
    for j, (file, frame) in enumerate(zip(batch["file"], batch["frame"])):
        square, width[j], height[j], reason[j] = read_square(str(file), int(frame), size)
        if square is not None:
            img[j] = square
    return {"row": batch["row"], "img": img, "width": width, "height": height, "reason": reason}


class PoseEncoder:
    """Ray actor: the model, loaded once from the checkpoint's bytes, encoding batches of crops to unit pose codes.

    Out per batch: row, code `(B, pose_dim)` float32 (zeros for a bad frame), width, height, reason.
    """

    def __init__(self, checkpoint: bytes, sha256: str) -> None:
        if hashlib.sha256(checkpoint).hexdigest() != sha256:
            raise RuntimeError("the checkpoint bytes this encoder received differ from the driver's")
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))  # Ray's share of CPUs for this actor
        with tempfile.TemporaryDirectory() as tmp:  # DAEGAN loads from a file; the bytes came through Ray
            path = Path(tmp) / "checkpoint.safetensors"
            path.write_bytes(checkpoint)
            self.model = DAEGAN.from_checkpoint(path, pick_device("auto"))  # Ray shows a GPU actor its GPU only

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        good = np.flatnonzero(batch["reason"] == "")
        code = np.zeros((len(batch["row"]), self.model.pose_dim), np.float32)  # (B, pose_dim)
        if len(good):
            images = torch.stack([to_tensor(img) for img in batch["img"][good]])  # (G, 3, S, S) in [-1, 1]
            code[good] = self.model.encode_pose(images).numpy()
        return {
            "row": batch["row"],
            "code": code,
            "width": batch["width"],
            "height": batch["height"],
            "reason": batch["reason"],
        }


def in_order(batches: Iterator[dict[str, np.ndarray]], total: int) -> Iterator[EncodedFrames]:
    """The encoder's batches as `EncodedFrames` in row order 0..total-1: rows that arrive early wait, rows seen
    before are dropped, and rows missing at the end are a `RuntimeError` (a build must be whole)."""
    pending: dict[int, tuple[np.ndarray, int, int, str]] = {}
    next_row = 0
    for batch in batches:
        for j, row in enumerate(batch["row"].tolist()):
            if row >= next_row and row not in pending:
                pending[row] = (
                    batch["code"][j],
                    int(batch["width"][j]),
                    int(batch["height"][j]),
                    str(batch["reason"][j]),
                )
        ready = []
        while next_row in pending:
            ready.append((next_row, *pending.pop(next_row)))
            next_row += 1
        if ready:
            yield _encoded(ready)
    if next_row != total or pending:
        raise RuntimeError(
            f"the Ray pipeline returned {next_row} of {total} frames in order ({len(pending)} more out of order)"
        )


def _encoded(ready: list[tuple[int, np.ndarray, int, int, str]]) -> EncodedFrames:
    good = [item for item in ready if not item[4]]
    return EncodedFrames(
        rows=[item[0] for item in good],
        codes=np.stack([item[1] for item in good]) if good else None,
        width=[item[2] for item in good],
        height=[item[3] for item in good],
        bad=[(item[0], item[4]) for item in ready if item[4]],
    )


def _dataset(
    files: Sequence[str], frames: Sequence[int], checkpoint: bytes, *, size: int, plan: RayPlan
) -> ray.data.Dataset:
    with warnings.catch_warnings():  # Ray 2.60's DataContext warns about its own deprecated field when first made
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # scan order out, as the ids of a single-process build
    context.enable_progress_bars = False  # the build's own bar counts frames
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-execution INFO lines in the command's output
    items = [{"row": i, "file": str(f), "frame": int(n)} for i, (f, n) in enumerate(zip(files, frames))]
    dataset = ray.data.from_items(items, override_num_blocks=_num_blocks(len(items), plan))
    read_cpus = 1  # the encoders ask the same: on a CPU cluster Ray Data fuses the two steps (module docstring)
    dataset = dataset.map_batches(
        read_squares, fn_kwargs={"size": size}, batch_size=plan.batch_size, batch_format="numpy", num_cpus=read_cpus
    )
    sha = hashlib.sha256(checkpoint).hexdigest()
    return dataset.map_batches(
        PoseEncoder,
        fn_constructor_kwargs={"checkpoint": checkpoint, "sha256": sha},
        batch_size=plan.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.encoders),
        num_cpus=read_cpus,
        num_gpus=plan.gpus_per_encoder,
    )


def _num_blocks(n: int, plan: RayPlan) -> int:
    """Input blocks: a batch each, up to MAX_BLOCKS (then larger), so every encoder gets work from the start."""
    return max(1, min(-(-n // plan.batch_size), MAX_BLOCKS))


def _batches(dataset: ray.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
    yield from dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2)
