"""End-to-end `index build` throughput over a SynthVox collection, and where its time goes (issue 4).

Ours: `indexer.build.build_index` (scan -> DataLoader reader -> `encode_pose` -> one atomic store build), frames/s
from start to committed index. Beside it, each stage alone on the same frames, run one after another:
- decode: the build's own reader (`FrameReader` through a `DataLoader` with the same workers), frames read and
  made into model-ready tensors;
- encode: `DAEGAN.encode_pose` on those tensors, in the build's batch size;
- write: `Store.add` of the resulting rows and codes into a fresh index (FAISS generation, SQLite transaction,
  manifest: the commit protocol).
The stages run first, so the end-to-end figure is measured warm (files in the page cache, torch's kernels
initialised), as a second build would see it. Shares are each stage's time over the sum of the three; "overlap"
is that sum over the end-to-end time (above 1: the pipeline overlaps reading with encoding). The baseline the
ratio names is that serial sum.

    .venv/bin/python benchmarks/build_speed.py [--identities 20 --videos 2 --frames 32 --size 128 --workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from machine import torch_machine
from torch.utils.data import DataLoader

from indexer.build import FrameReader, _collate, build_index, root_prefixes, scan_roots
from indexer.store import Store
from model.checkpoint import file_sha256
from model.daegan import DAEGAN
from model.data.synthvox import synthesize
from model.resources import default_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=default_checkpoint())
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--videos", type=int, default=2, help="videos per identity")
    parser.add_argument("--frames", type=int, default=32, help="frames per video")
    parser.add_argument("--size", type=int, default=128, help="frame side in pixels")
    parser.add_argument("--workers", type=int, default=2, help="reader processes, as `index build --workers`")
    parser.add_argument("--batch-size", type=int, default=64, help="as `index build --batch-size`")
    args = parser.parse_args()

    device = torch.device("cpu")
    print(torch_machine(device))
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
            f"collection: SynthVox {args.identities} identities x {args.videos} videos x {args.frames} frames = "
            f"{n} PNG frames at {args.size} px; checkpoint {args.checkpoint.name}; batch {args.batch_size}, "
            f"{args.workers} reader workers, {device}"
        )

        model = DAEGAN.from_checkpoint(args.checkpoint, device)
        rows, _ = scan_roots(root_prefixes(root))
        loader = DataLoader(
            FrameReader(rows["file"].tolist(), rows["frame"].tolist(), model.size),
            batch_size=args.batch_size,
            num_workers=args.workers,
            collate_fn=_collate,
        )
        start = time.perf_counter()
        batches = [batch["images"] for batch in loader]
        decode = time.perf_counter() - start

        start = time.perf_counter()
        codes = torch.cat([model.encode_pose(images) for images in batches]).numpy()
        encode = time.perf_counter() - start

        start = time.perf_counter()
        with Store.create(
            Path(tmp) / "write", dim=model.pose_dim, checkpoint_sha256=file_sha256(args.checkpoint)
        ) as store:
            store.add(rows.drop(columns="file"), codes, roots=root_prefixes(root))
        write = time.perf_counter() - start

        start = time.perf_counter()
        summary = build_index(
            root,
            args.checkpoint,
            Path(tmp) / "e2e",
            batch_size=args.batch_size,
            workers=args.workers,
            device=device,
            progress=False,
        )
        end_to_end = time.perf_counter() - start
        assert summary.added == n, summary

    serial = decode + encode + write
    print(f"\n{'stage':<12} {'seconds':>8} {'frames/s':>9} {'share':>6}")
    for name, seconds in (("decode", decode), ("encode", encode), ("write", write)):
        print(f"{name:<12} {seconds:8.2f} {n / seconds:9.1f} {seconds / serial:6.1%}")
    print(f"{'serial sum':<12} {serial:8.2f} {n / serial:9.1f}")
    print(f"{'index build':<12} {end_to_end:8.2f} {n / end_to_end:9.1f}   (end to end, incl. scan and model load)")
    print(f"\nindex build: {n / end_to_end:.1f} frames/s; {serial / end_to_end:.2f}x the serial sum of its stages")


if __name__ == "__main__":
    main()
