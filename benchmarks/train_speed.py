"""Training throughput per stage, in examples/s (one example = K source frames + 1 target), by precision variant.

What runs: the trainer's own step functions, `model.train_phases.stage1_step` (F + P on eq. 5) and `stage2_step`
(the D, G, F, P phases on one batch), on the DAEGAN and Adam optimisers built as `model.train.train` builds them
from a preset (`model.train_schedule.build_optimizers`), with P's augmented input made per step (`make_batch`).
Each stage is warmed up, then timed over `--steps` steps (CUDA synchronised before the clock stops).

Line 1 per variant, data loading excluded: random in-memory batches of the preset's shapes, already on the device.
Variants, side by side in one run, ratios against the first:
- CUDA: fp32 eager (baseline), bf16 autocast, bf16 autocast + channels_last (networks and the target frames;
  the (B, K, 3, S, S) source stack is 5-D and stays contiguous);
- CPU: fp32 eager (baseline), bf16 autocast (`torch.autocast("cpu", dtype=torch.bfloat16)`).
Line 2, data loading included: the same steps fed by the trainer's DataLoader (`make_loader`, the preset's batch
size and workers) over a tiny SynthVox collection rendered into a temporary folder first, in the precision the
trainer picks for the device (`train.precision: auto`: bf16 on CUDA, fp32 on CPU).

    .venv/bin/python benchmarks/train_speed.py [--preset small --device auto --steps 3 --warmup 1 --no-loader]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from machine import torch_machine

from model.config import Config, load_config
from model.daegan import DAEGAN
from model.data.collection import read_collection
from model.data.dataset import VideoFramesDataset, make_loader
from model.data.synthvox import synthesize
from model.device import pick_device
from model.train import epoch_batches
from model.train_phases import Networks, Trainee, make_batch, stage1_step, stage2_step
from model.train_schedule import build_optimizers


def build(config: Config, device: torch.device, channels_last: bool) -> tuple[DAEGAN, dict]:
    """The model and optimisers as `train` builds them (seeded init; `build_optimizers`)."""
    torch.manual_seed(config.train.seed)
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    model = DAEGAN.from_config(config).to(device, memory_format=memory_format)
    return model, build_optimizers(model, config.train)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    config: Config,
    device: torch.device,
    stage: int,
    batches,
    *,
    steps: int,
    warmup: int,
    bf16: bool,
    channels_last: bool,
) -> float:
    """Examples/s of `steps` timed steps of `stage` after `warmup` untimed ones; `batches` yields
    (frames_k (B, K, 3, S, S), target (B, 3, S, S)) on the device."""
    model, optimizers = build(config, device, channels_last)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    trainee = Trainee(model, Networks(**model.networks()), optimizers, ctx, config)
    examples = 0
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            start, examples = time.perf_counter(), 0
        frames_k, target = next(batches)
        if channels_last:
            target = target.contiguous(memory_format=torch.channels_last)
        batch = make_batch(frames_k, target, config, step=i, rank=0, device=device)  # P's augmented input too
        if stage == 1:
            stage1_step(trainee, batch, residuals=True)
        else:
            stage2_step(trainee, batch)
        examples += len(target)
    sync(device)
    return examples / (time.perf_counter() - start)


def random_batches(config: Config, device: torch.device):
    """One random batch of the preset's shapes in [-1, 1], yielded forever (no data loading)."""
    b, k, s = config.data.batch_size, config.data.num_frames, config.data.size
    generator = torch.Generator().manual_seed(0)
    frames_k = (torch.rand(b, k, 3, s, s, generator=generator) * 2 - 1).to(device)  # (B, K, 3, S, S)
    target = (torch.rand(b, 3, s, s, generator=generator) * 2 - 1).to(device)  # (B, 3, S, S)
    while True:
        yield frames_k, target


def loader_batches(config: Config, root: Path, device: torch.device):
    """The trainer's batches over the collection at `root`, epoch after epoch, moved to the device."""
    dataset = VideoFramesDataset(
        read_collection(root, fps=config.data.fps),
        num_frames=config.data.num_frames,
        size=config.data.size,
        seed=config.data.seed,
    )
    loader = make_loader(dataset, batch_size=config.data.batch_size, workers=config.data.workers, device=device)
    per_epoch = len(dataset) // config.data.batch_size
    for epoch in range(10**9):
        for frames_k, target, *_ in epoch_batches(loader, epoch, 0, per_epoch):
            yield frames_k.to(device, non_blocking=True), target.to(device, non_blocking=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="config preset or YAML file (default: small)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage and variant (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the preset's data.batch_size")
    parser.add_argument("--no-loader", action="store_true", help="skip the line with data loading included")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")

    device = pick_device(args.device)
    overrides = {"data.batch_size": args.batch_size} if args.batch_size else {}
    config = load_config(args.preset, overrides)
    d = config.data
    print(torch_machine(device))
    print(
        f"preset {args.preset}: {d.size} px, K = {d.num_frames}, batch {d.batch_size}; device {device}; "
        f"{args.warmup} warm-up + {args.steps} timed steps per stage; examples/s (K sources + 1 target each)"
    )

    variants = [("fp32 eager", False, False), ("bf16 autocast", True, False)]
    if device.type == "cuda":
        variants.append(("bf16 + channels_last", True, True))
    print(f"{'in-memory batches':<34}{'stage 1 (F+P)':>16}{'ratio':>8}{'stage 2 (D,G,F,P)':>20}{'ratio':>8}")
    baseline: dict[int, float] = {}
    for name, bf16, channels_last in variants:
        cells = []
        for stage in (1, 2):
            try:
                rate = throughput(
                    config,
                    device,
                    stage,
                    random_batches(config, device),
                    steps=args.steps,
                    warmup=args.warmup,
                    bf16=bf16,
                    channels_last=channels_last,
                )
            except RuntimeError as err:  # a variant this build cannot run: say so, keep the others
                cells.append(f"{'failed: ' + str(err).splitlines()[0][:40]:>24}")
                continue
            baseline.setdefault(stage, rate)
            cells.append(f"{rate:>16.1f}{rate / baseline[stage]:>7.2f}x")
        print(f"{name:<34}{cells[0]}{'':>4}{cells[1]}")

    if args.no_loader:
        return
    bf16 = config.train.precision == "bf16" or (config.train.precision == "auto" and device.type == "cuda")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthvox"
        frames = max(8, -(-(args.warmup + args.steps) * d.batch_size // 4))  # 2 x 2 videos: no epoch runs dry
        synthesize(
            root, identities=2, videos_per_identity=2, frames=frames, size=d.size, seed=0, workers=1, progress=False
        )
        rates = [
            throughput(
                config,
                device,
                stage,
                loader_batches(config, root, device),
                steps=args.steps,
                warmup=args.warmup,
                bf16=bf16,
                channels_last=False,
            )
            for stage in (1, 2)
        ]
    label = f"with DataLoader ({d.workers} workers, {'bf16' if bf16 else 'fp32'})"
    print(
        f"{label:<34}{rates[0]:>16.1f}{rates[0] / baseline[1]:>7.2f}x{'':>4}{rates[1]:>16.1f}"
        f"{rates[1] / baseline[2]:>7.2f}x   (ratios vs fp32 eager in-memory)"
    )


if __name__ == "__main__":
    main()
