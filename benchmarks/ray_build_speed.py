"""`index build --ray` against the single-process `index build` on this machine: frames/s of each and the ratio
(issue 15).

Ours: `build_index(..., ray=True)` on a local Ray instance started beforehand (as a cluster joined with
`--ray-address` is already up): scan, then Ray Data reads, crops and encodes in an actor pool (GPU actors where
there are GPUs), the driver writes one atomic generation. Baseline: the same build in one process
(`DataLoader` readers, `encode_pose`), the default `index build`. Both run end to end over the same SynthVox frames
(decode included, model load and the Ray actor pool's start included), each once unmeasured first so files are in
the page cache, then `--repeats` times; the best time counts. The Ray instance's own start is printed apart, and
so are the Ray pipeline's two parts: the actor pool's start and its streaming rate once started.

    .venv/bin/python benchmarks/ray_build_speed.py [--identities 20 --videos 2 --frames 32 --size 128]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from machine import torch_machine

from indexer.build import build_index
from model.data.synthvox import synthesize
from model.resources import default_checkpoint

# A single-machine benchmark: Ray's laptop switch keeps the instance on 127.0.0.1 (read when Ray is imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def timed_build(root: Path, out: Path, args: argparse.Namespace, device: torch.device, *, ray: bool) -> float:
    """Seconds of one whole build into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = build_index(
        root,
        args.checkpoint,
        out,
        batch_size=args.batch_size,
        workers=args.workers,
        device=device,
        progress=False,
        ray=ray,
    )
    seconds = time.perf_counter() - start
    assert summary.added == args.identities * args.videos * args.frames and not summary.skipped, summary
    return seconds


def ray_stream(root: Path, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds to the first encoded batch, frames/s after it) of the Ray pipeline alone: its actor pool's start
    (workers importing torch, each loading the model) and its streaming rate."""
    from indexer.build import root_prefixes, scan_roots
    from indexer.ray_encode import encode_with_ray
    from model.daegan import DAEGAN

    rows, _ = scan_roots(root_prefixes(root))
    size = DAEGAN.from_checkpoint(args.checkpoint).size
    start = time.perf_counter()
    first, after = None, 0
    for batch in encode_with_ray(
        rows["file"].tolist(), rows["frame"].tolist(), args.checkpoint, size=size, batch_size=args.batch_size
    ):
        if first is None:
            first = time.perf_counter()
        else:
            after += len(batch.rows)
    return first - start, after / (time.perf_counter() - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=default_checkpoint())
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--videos", type=int, default=2, help="videos per identity")
    parser.add_argument("--frames", type=int, default=32, help="frames per video")
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels")
    parser.add_argument("--workers", type=int, default=2, help="reader processes of the single-process build")
    parser.add_argument("--batch-size", type=int, default=64, help="as `index build --batch-size`")
    parser.add_argument("--repeats", type=int, default=2, help="measured builds of each kind; the best counts")
    args = parser.parse_args()

    import ray

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(torch_machine(device))
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    resources = ray.cluster_resources()
    print(
        f"ray {ray.__version__}: {int(resources.get('CPU', 0))} CPUs, {int(resources.get('GPU', 0))} GPUs; "
        f"started in {ray_start:.1f} s (not counted below)"
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "synthvox"
            synthesize(
                root,
                identities=args.identities,
                videos_per_identity=args.videos,
                frames=args.frames,
                size=args.size,
                seed=0,
                workers=2,
                progress=False,
            )
            n = args.identities * args.videos * args.frames
            print(
                f"collection: SynthVox {args.identities} identities x {args.videos} videos x {args.frames} frames "
                f"= {n} PNG frames at {args.size} px; checkpoint {args.checkpoint.name}; batch {args.batch_size}; "
                f"single process: {args.workers} reader workers, {device}"
            )
            times: dict[str, list[float]] = {"single process": [], "ray": []}
            for repeat in range(args.repeats + 1):  # the first round warms the page cache and is not counted
                for name in times:
                    seconds = timed_build(root, Path(tmp) / "index", args, device, ray=name == "ray")
                    if repeat:
                        times[name].append(seconds)
            pool_start, streaming = ray_stream(root, args)
    finally:
        ray.shutdown()

    best = {name: min(seconds) for name, seconds in times.items()}
    print(f"\n{'build':<16} {'seconds':>8} {'frames/s':>9}   (best of {args.repeats}, end to end)")
    for name, seconds in best.items():
        print(f"{name:<16} {seconds:8.2f} {n / seconds:9.1f}")
    print(
        f"ray pipeline alone: {pool_start:.1f} s to its first batch (the actor pool starting), then "
        f"{streaming:.1f} frames/s"
    )
    print(
        f"\nindex build --ray: {n / best['ray']:.1f} frames/s; {best['single process'] / best['ray']:.2f}x the "
        f"single-process build ({n / best['single process']:.1f} frames/s)"
    )


if __name__ == "__main__":
    main()
