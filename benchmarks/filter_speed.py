"""The worst case of "other identities": a query whose own identity holds half the index (issue 15, filters).

Ours: `Retriever.search(code, k, other_identities=True)`, whose identity filter is an ID selector inside the one
FAISS search (`indexer.faiss_index.IdFilter`; the ids come from SQLite's identity index). Baseline: what the
search did before, over-fetching k x 4 hits, dropping the query's identity by their metadata, and widening x 4
until k others survive (`over_fetch` below, the same store calls).

The index: a real `Store` (SQLite rows through SQLAlchemy, a flat FAISS file) of N unit codes, 64-d; identity "a"
holds N/2 codes clustered around the query, so its frames fill every early round of the baseline's over-fetch, and
the other N/2 codes belong to 1,000 other identities spread around the sphere. p50 over `--repeats` queries near
"a"'s cluster, one query at a time (as `index query` asks).

    .venv/bin/python benchmarks/filter_speed.py [--n 1000000 --k 10 --repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from machine import cpu_model

from indexer.store import Store
from model.checkpoint import file_sha256
from model.config import load_config
from model.daegan import DAEGAN
from retrieval.search import OVERFETCH, Retriever

DIM = 64


def over_fetch(store: Store, query: np.ndarray, k: int, exclude: str) -> pd.DataFrame:
    """The search before ID selectors: fetch k x 4, drop `exclude`'s hits by metadata, widen x 4 until k remain."""
    fetch = min(k * OVERFETCH, len(store))
    while True:
        (scores,), (ids,) = store.search(query[None], fetch)
        meta = store.get(ids)
        keep = (meta["identity"] != exclude).to_numpy()
        if keep.sum() >= k or fetch >= len(store):
            return meta[keep].iloc[:k]
        fetch = min(fetch * OVERFETCH, len(store))


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(DIM).astype(np.float32)
    half = args.n // 2
    own = centre + 0.3 * rng.standard_normal((half, DIM)).astype(np.float32)  # identity "a", around the query
    others = rng.standard_normal((args.n - half, DIM)).astype(np.float32)  # 1,000 identities elsewhere
    identities = ["a"] * half + [f"p{i % 1000:04d}" for i in range(args.n - half)]
    rows = pd.DataFrame(
        {
            "path": [f"{p}/v/{i:07d}.png" for i, p in enumerate(identities)],
            "identity": identities,
            "video": "v",
            "frame": np.arange(args.n),
        }
    )
    queries = centre + 0.3 * rng.standard_normal((args.repeats, DIM)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "model.safetensors"
        torch.manual_seed(0)
        config = load_config("tiny", {"model.pose_dim": DIM})
        DAEGAN.from_config(config, with_discriminator=False).save(checkpoint)
        start = time.perf_counter()
        with Store.create(Path(tmp) / "index", dim=DIM, checkpoint_sha256=file_sha256(checkpoint)) as store:
            store.add(rows, np.concatenate([own, others]))
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores, faiss {faiss.__version__}; index of {args.n:,} "
            f"codes built in {time.perf_counter() - start:.0f} s; identity 'a' holds {half:,}"
        )
        with Retriever(Path(tmp) / "index", checkpoint, device="cpu") as retriever:
            assert "a" not in set(over_fetch(retriever.store, queries[0], args.k, "a")["identity"])
            found = retriever.search(queries[0], args.k, other_identities=True, identity="a")
            assert len(found) == args.k and "a" not in set(found["identity"])
            ours_each = iter(queries)
            ours = median_ms(
                lambda: retriever.search(next(ours_each), args.k, other_identities=True, identity="a"), args.repeats
            )
            ids_ms = median_ms(lambda: retriever.store.identity_ids(["a"]), args.repeats)
            base_each = iter(queries)
            base = median_ms(lambda: over_fetch(retriever.store, next(base_each), args.k, "a"), args.repeats)
            plain_each = iter(queries)
            plain = median_ms(lambda: retriever.search(next(plain_each), args.k), args.repeats)
    print(
        f"other identities, ID selector in the search (ours): p50 {ours:8.1f} ms "
        f"(of which the identity's {half:,} ids from SQLite: {ids_ms:.1f} ms)"
    )
    print(f"other identities, over-fetch and widen (before):   p50 {base:8.1f} ms")
    print(f"unfiltered search, for scale:                       p50 {plain:8.1f} ms")
    print(f"ratio before / ours: {base / ours:.1f}x")


if __name__ == "__main__":
    main()
