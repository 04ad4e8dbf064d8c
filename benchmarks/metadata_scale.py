"""The SQLite metadata at 10M frame rows: build time, file size, the lookups a query makes, and their query plans
(issue 15).

Rows go in through the product's own insert path, `Metadata.commit_build` (the transaction that is a build's
commit point: identities and videos looked up or inserted, frame rows inserted with their indexes kept:
primary key, unique path, identity, (video, frame), build), `--batch` rows per build, as `index add` of one batch would;
WAL and ``synchronous=FULL`` as a writer opens the database. The collection: `--identities` identities x
`--videos` videos x `--frames` frames (10,000 x 50 x 20 = 10M by default), paths as VoxCeleb's
(``id10001/<video>/00001.jpg``).

Then, on a reader's connection (as a query opens it), p50/p99 over `--reps` runs of: `Metadata.get` of 1,000
random ids (a query's hits are read by id), `Metadata.identity_ids` of one identity (what an identity filter
names), `Metadata.video_frames` of one video (browsing), `Metadata.find` of 1,000 paths (what `index add` and a
query image that is a frame of the index look up); and SQLite's EXPLAIN QUERY PLAN of each statement: every one
must SEARCH the frames table by an index, never SCAN it.

    .venv/bin/python benchmarks/metadata_scale.py [--identities 10000 --videos 50 --frames 20] [--batch 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import cpu_model
from sqlalchemy.dialects import sqlite as sqlite_dialect

from indexer.metadata import DATABASE, Metadata, upgrade_to_head, video_frames_query


def frame_rows(start: int, stop: int, videos: int, frames: int) -> pd.DataFrame:
    """Rows start..stop-1 of the collection, in identity, video, frame order."""
    i = np.arange(start, stop)
    identity, rest = np.divmod(i, videos * frames)
    video, frame = np.divmod(rest, frames)
    ident = np.char.add("id", np.char.zfill((10001 + identity).astype(str), 5))
    vid = np.char.add("vid", np.char.zfill(video.astype(str), 3))
    path = np.char.add(np.char.add(np.char.add(ident, "/"), vid), np.char.add("/", np.char.zfill(frame.astype(str), 5)))
    return pd.DataFrame(
        {
            "path": np.char.add(path, ".jpg"),
            "identity": ident,
            "video": vid,
            "frame": frame,
            "time_s": frame.astype(float),
            "width": 224,
            "height": 224,
        }
    )


def percentiles(fn, reps: int) -> tuple[float, float]:
    fn()  # warm-up: the pages it needs are read once
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def query_plans(db: Path, sample_id: int, identity: str, video: str, path: str) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of the SQL each lookup sends (as SQLAlchemy compiles it for SQLite)."""
    statements = {
        "get": (
            "SELECT frames.id, frames.path, identities.name, videos.name, frames.frame, frames.time_s, frames.width, "
            "frames.height FROM frames JOIN identities ON frames.identity_id = identities.id JOIN videos ON "
            "frames.video_id = videos.id WHERE frames.id IN (?, ?)",
            (sample_id, sample_id + 1),
        ),
        "identity_ids": (
            "SELECT frames.id FROM frames JOIN identities ON frames.identity_id = identities.id "
            "WHERE identities.name IN (?)",
            (identity,),
        ),
        "video_frames": (  # the product's own statement (migration 0003's index serves it in order)
            str(video_frames_query(identity, video).compile(dialect=sqlite_dialect.dialect())),
            (identity, video),
        ),
        "find": (
            "SELECT frames.path, frames.id, identities.name FROM frames JOIN identities ON frames.identity_id = "
            "identities.id WHERE frames.path IN (?)",
            (path,),
        ),
    }
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            name: [row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for name, (sql, params) in statements.items()
        }
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=10_000)
    parser.add_argument("--videos", type=int, default=50, help="videos per identity")
    parser.add_argument("--frames", type=int, default=20, help="frames per video")
    parser.add_argument("--batch", type=int, default=1_000_000, help="rows per build (one commit_build each)")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the database (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.identities * args.videos * args.frames
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, sqlite {sqlite3.sqlite_version}")
    print(
        f"rows: {n:,} = {args.identities:,} identities x {args.videos} videos x {args.frames} frames, "
        f"{args.batch:,} rows per commit_build"
    )
    folder = Path(tempfile.mkdtemp(prefix="metadata_scale-", dir=args.dir))
    db = folder / DATABASE
    try:
        upgrade_to_head(db)
        writer = Metadata(db, readonly=False)
        writer.create_state(dim=64, index_type="flat", checkpoint_sha256="0" * 64, index_file="x", index_sha256="0")
        start = time.perf_counter()
        for lo in range(0, n, args.batch):
            hi = min(n, lo + args.batch)
            build_id, next_id = writer.start_build("0" * 64)
            rows = frame_rows(lo, hi, args.videos, args.frames)
            t = time.perf_counter()
            writer.commit_build(
                build_id,
                rows,
                np.arange(next_id, next_id + len(rows), dtype=np.int64),
                [],
                {},
                generation=build_id,
                index_file="x",
                index_sha256="0",
                num_vectors=hi,
                index_type="flat",
            )
            print(
                f"  {hi:>11,} rows: commit_build of {len(rows):,} in {time.perf_counter() - t:.1f} s "
                f"(max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB)",
                flush=True,
            )
        build_s = time.perf_counter() - start
        writer.close()
        for leftover in ("-wal", "-shm"):  # a clean close folds the WAL into the file
            assert not Path(f"{db}{leftover}").exists() or Path(f"{db}{leftover}").stat().st_size == 0
        size = db.stat().st_size
        print(f"build: {build_s:.0f} s ({n / build_s:,.0f} rows/s); file {size / 2**30:.2f} GiB ({size / n:.0f} B/row)")

        reader = Metadata(db, readonly=True)
        rng = np.random.default_rng(args.seed)
        identity = f"id{10001 + int(rng.integers(args.identities))}"
        video = f"vid{int(rng.integers(args.videos)):03d}"
        paths = frame_rows(0, n, args.videos, args.frames)["path"].to_numpy()[rng.integers(0, n, 1000)]
        draws = [rng.integers(1, n + 1, 1000) for _ in range(args.reps + 1)]  # ids of 1,000 hits per query
        lookups = {
            "get(1,000 random ids)": lambda: reader.get(draws.pop()),
            f"identity_ids(1 identity: {args.videos * args.frames:,} frames)": lambda: reader.identity_ids([identity]),
            f"video_frames(1 video: {args.frames} frames)": lambda: reader.video_frames(identity, video),
            "find(1,000 paths)": lambda: reader.find(list(paths)),
        }
        assert len(reader.identity_ids([identity])) == args.videos * args.frames
        for name, fn in lookups.items():
            p50, p99 = percentiles(fn, args.reps)
            print(f"  {name:<44} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms")
        reader.close()
        print("query plans (EXPLAIN QUERY PLAN):")
        plans = query_plans(db, int(rng.integers(1, n)), identity, video, str(paths[0]))
        for name, plan in plans.items():
            scans = [step for step in plan if step.startswith("SCAN") and "frames" in step]
            print(f"  {name:<13} {'; '.join(plan)}  -> {'SCANS frames' if scans else 'indexed'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
