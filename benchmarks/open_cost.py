"""What an open of a 1M-code index costs in checking its FAISS file: the whole file's sha256 (before) against its
size and the sha256 of its first and last MiB (after; `indexer.generations.FileCheck`, issue 14 "Concurrency").

The file is a real generation: 1M seeded random unit 64-d float32 vectors in the index `index build` makes for
flat (`indexer.faiss_index.new_index`), written by `indexer.generations.write_generation` (write, fsync, then the
whole sha256 and the `FileCheck` the commit records). The frame rows are left out: they cost the same before and
after, and 1M SQLite inserts would dominate the run. Each check is timed as the open runs it, median of `--reps`,
with the file in the page cache (a cold cache makes the whole hash slower still: 256 MB from disk against 2 MiB).
Bytes read are measured, not computed: the `rchar` of /proc/self/io around each check (Linux).
`faiss.read_index` with the readers' memory-map flags is timed too, for scale.

    .venv/bin/python benchmarks/open_cost.py [--n 1000000] [--dim 64] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from machine import cpu_model

from indexer.faiss_index import new_index
from indexer.generations import EDGE_BYTES, FileCheck, write_generation
from model.checkpoint import file_sha256


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def measure(fn: Callable[[], object], reps: int) -> tuple[float, int]:
    """Median seconds and bytes read (last rep) of `fn()`."""
    times, read = [], 0
    for _ in range(reps):
        before, start = rchar(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        read = rchar() - before
    return statistics.median(times), read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
        f"OMP threads {faiss.omp_get_max_threads()}"
    )
    x = np.random.default_rng(0).standard_normal((args.n, args.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.1.faiss"
        index = new_index("flat", args.dim, x)
        index.add_with_ids(x, np.arange(1, args.n + 1, dtype=np.int64))
        start = time.perf_counter()
        sha, check = write_generation(index, path)
        commit_s = time.perf_counter() - start
        del index
        manifest = Path(tmp) / "manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "index_sha256": sha,
                    "index_bytes": check.size,
                    "index_edge_bytes": check.edge_bytes,
                    "index_edge_sha256": check.edge_sha256,
                }
            )
        )
        size = path.stat().st_size
        print(
            f"file: {args.n} x {args.dim} flat, {size} bytes ({size / 2**20:.1f} MiB); commit (write, fsync, "
            f"whole sha256 and the ends) {commit_s:.2f} s; edge {EDGE_BYTES} bytes; {args.reps} reps, warm cache"
        )
        file_sha256(path)  # into the page cache

        def before() -> None:
            assert file_sha256(path) == sha

        def after() -> None:
            recorded = FileCheck.recorded(json.loads(manifest.read_text()), sha)
            assert FileCheck.of(path, recorded.edge_bytes) == recorded

        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if hasattr(faiss, "IO_FLAG_MMAP_IFC") else 0
        rows = [
            ("before: whole-file sha256", *measure(before, args.reps)),
            ("after: size + first/last MiB sha256", *measure(after, args.reps)),
            ("(for scale) faiss.read_index, mmap", *measure(lambda: faiss.read_index(str(path), flags), args.reps)),
        ]
    print(f"{'check on open':40s} {'median ms':>10s} {'bytes read':>12s}")
    for label, seconds, read in rows:
        print(f"{label:40s} {seconds * 1e3:10.2f} {read:12d}")
    (_, t_before, b_before), (_, t_after, b_after) = rows[:2]
    print(
        f"after / before: time {t_after / t_before:.4f} ({t_before / t_after:.0f}x less), "
        f"bytes {b_after / b_before:.4f} ({b_before / max(b_after, 1):.0f}x less)"
    )


if __name__ == "__main__":
    main()
