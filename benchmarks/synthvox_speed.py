"""How fast SynthVox renders a collection, against the I/O floor of writing the same frames.

Ours: `synthesize` (trajectories, ray casting, encoding, labels). Baseline, run side by side with the same frame
count, size, encoder and worker count: writing constant frames only, so the ratio is what rendering costs on top
of the unavoidable writes. The budget: 100 identities x 4 videos x 32 frames at 128 px in 120 s with 2 workers.

    .venv/bin/python benchmarks/synthvox_speed.py [--identities 100 --videos 4 --frames 32 --size 128 --workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from machine import cpu_model

from model.data.images import write_image
from model.data.synthvox import FRAME_DIGITS, identity_name, synthesize, video_name

BUDGET_S = 120.0  # the budget for the default configuration on a 2-core machine


def _write_constant_video(folder: Path, frames: int, size: int) -> None:
    """The baseline's unit of work: one video folder of constant grey PNG frames."""
    folder.mkdir(parents=True)
    img = np.full((size, size, 3), 128, dtype=np.uint8)
    for frame in range(frames):
        write_image(folder / f"{frame:0{FRAME_DIGITS}d}.png", img)


def io_floor(root: Path, identities: int, videos: int, frames: int, size: int, workers: int) -> None:
    """Write the same layout of constant frames with the same encoder and worker processes as `synthesize`."""
    folders = [root / identity_name(i) / video_name(v) for i in range(identities) for v in range(videos)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_write_constant_video, folders, [frames] * len(folders), [size] * len(folders)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    total = args.identities * args.videos * args.frames
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores (os.cpu_count), {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}"
    )
    print(
        f"config: {args.identities} identities x {args.videos} videos x {args.frames} frames = {total} frames, "
        f"{args.size} px png, {args.workers} workers"
    )
    scratch = Path(tempfile.mkdtemp(prefix="synthvox-bench-"))
    try:
        start = time.perf_counter()
        io_floor(scratch / "floor", args.identities, args.videos, args.frames, args.size, args.workers)
        floor_s = time.perf_counter() - start
        start = time.perf_counter()
        synthesize(
            scratch / "synthvox",
            identities=args.identities,
            videos_per_identity=args.videos,
            frames=args.frames,
            size=args.size,
            seed=0,
            workers=args.workers,
            progress=False,
        )
        ours_s = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"baseline (I/O floor, constant frames): {floor_s:8.2f} s  {total / floor_s:9.1f} frames/s")
    print(f"synthvox (render + write + labels):    {ours_s:8.2f} s  {total / ours_s:9.1f} frames/s")
    print(f"ratio synthvox / baseline: {ours_s / floor_s:.2f}x (rendering's cost on top of writing)")
    verdict = "within" if ours_s <= BUDGET_S else "OVER"
    print(f"budget: {ours_s:.1f} s vs {BUDGET_S:.0f} s -> {verdict} budget ({ours_s / BUDGET_S:.0%} of it)")


if __name__ == "__main__":
    main()
