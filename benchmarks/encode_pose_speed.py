"""Pose-encoding throughput of the inference API, `DAEGAN.encode_pose`, in frames/s at batch 1 and batch 64.

Ours: `model.encode_pose(frames)` on float frames (N, 3, S, S) in [-1, 1] already in memory (its chunking, device
moves, eval mode, inference mode, float32 CPU result and L2 normalisation included). Baseline, run side by side on
the same frames and weights: `model.pose_embedder.encode` called directly in a plain loop under `torch.no_grad`
(fp32 eager, no chunking, no conversion), so the ratio is the API's overhead. On CUDA two more variants of the
direct call: bf16 autocast, and bf16 autocast + channels_last (weights and frames). Each figure is the best of
`--repeats` timed runs after one warm-up run; a run encodes `--frames` frames in batches of 1 or 64.

    .venv/bin/python benchmarks/encode_pose_speed.py [checkpoints/daegan-small.safetensors --device auto --frames 256]
"""

from __future__ import annotations

import argparse
import copy
import time
from contextlib import nullcontext

import torch
from machine import torch_machine

from model.daegan import DAEGAN
from model.device import pick_device

BATCH_SIZES = (1, 64)


def frames_per_s(run, frames: torch.Tensor, batch_size: int, device: torch.device, repeats: int) -> float:
    """Best-of-`repeats` frames/s of `run(batch)` over `frames` in batches of `batch_size`, after one warm-up."""
    best = float("inf")
    for repeat in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for first in range(0, len(frames), batch_size):
            run(frames[first : first + batch_size])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if repeat:  # the first run warms up
            best = min(best, time.perf_counter() - start)
    return len(frames) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkpoint",
        nargs="?",
        default="checkpoints/daegan-small.safetensors",
        help="a posedex checkpoint (default: checkpoints/daegan-small.safetensors)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    parser.add_argument("--frames", type=int, default=256, help="frames encoded per timed run (default: 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure, best kept (default: 3)")
    args = parser.parse_args()
    if args.frames < max(BATCH_SIZES) or args.repeats < 1:
        parser.error(f"--frames must be >= {max(BATCH_SIZES)} and --repeats >= 1")

    device = pick_device(args.device)
    model = DAEGAN.from_checkpoint(args.checkpoint, device)
    print(torch_machine(device))
    print(
        f"checkpoint {args.checkpoint}: {model.size} px, pose_dim {model.pose_dim}; device {device}; "
        f"{args.frames} frames per run, best of {args.repeats}; frames/s"
    )
    frames = torch.rand(args.frames, 3, model.size, model.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    on_device = frames.to(device)  # (N, 3, S, S): the baseline's input, already where the weights are
    encoder = model.pose_embedder  # eval mode: `from_checkpoint` returns the model in eval mode

    def direct(bf16: bool, net: torch.nn.Module):
        ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

        def run(batch: torch.Tensor) -> None:
            with torch.no_grad(), ctx:
                net.encode(batch)

        return run

    variants = [("PoseEmbedder.encode, fp32 (baseline)", direct(False, encoder), on_device)]
    if device.type == "cuda":
        channels_last = copy.deepcopy(encoder).to(memory_format=torch.channels_last)
        variants += [
            ("PoseEmbedder.encode, bf16", direct(True, encoder), on_device),
            (
                "PoseEmbedder.encode, bf16 + channels_last",
                direct(True, channels_last),
                on_device.contiguous(memory_format=torch.channels_last),
            ),
        ]
    variants.append(("DAEGAN.encode_pose (API)", lambda batch: model.encode_pose(batch), frames))

    print(f"{'':<44}" + "".join(f"{f'batch {b}':>14}{'ratio':>8}" for b in BATCH_SIZES))
    baseline: dict[int, float] = {}
    for name, run, inputs in variants:
        cells = ""
        for batch_size in BATCH_SIZES:
            rate = frames_per_s(run, inputs, batch_size, device, args.repeats)
            baseline.setdefault(batch_size, rate)
            cells += f"{rate:>14.1f}{rate / baseline[batch_size]:>7.2f}x"
        print(f"{name:<44}{cells}")


if __name__ == "__main__":
    main()
