"""Search at 1M and 10M pose codes shaped like real ones: exact flat, compressed flat with exact re-ranking, HNSW and
IVF, against exact search and the memory-bandwidth bound measured in the same run (issue 15).

Codes: `realistic_codes.grow` (the demo index's real codes grown along each video's trajectory; its docstring says
exactly how), queries held out, drawn the same way. Per index: build time, bytes (what `faiss.serialize_index`
writes, i.e. the file `index build` would write; flat is counted as n x d x 4 plus 8-byte ids, not serialised),
p50/p99 latency of one query and of batches of 64, recall@10 against exact search.

- "flat fp32": the product's index and search path (`new_index("flat")`, `search_index` under `tune_search`).
  Beside it, "read pass": one NumPy pass over the same bytes, one thread summing it (SIMD), and every core summing
  its own slice in parallel (NumPy's loops release the GIL): the all-core pass is the memory-bandwidth bound a scan
  of the vectors cannot beat on this machine (the BLAS product reads with every core too).
- "flat fp16/sq8 + rerank R": FAISS `IndexScalarQuantizer` (QT_fp16: 2 bytes per number; QT_8bit: 1 byte, ranges
  trained per dimension) holding the codes in one shard per core (FAISS scans one query on one thread; the shards
  are searched in parallel threads for a batch of 1 and one after another, each parallel over queries, for 64);
  every shard's top k x R candidates are re-scored exactly from the fp32 vectors (which stay in memory or on disk
  beside the codes: their bytes are counted apart) and the best k kept.
- "ivf (product)": `new_index("ivf")` as `index build --index-type ivf` (and `auto` above 100k) makes it, searched
  through `search_index` with its own nprobe and re-ranking (`indexer.faiss_index`). `--indexes` picks which of
  the other families below are measured beside it (all by default).
- "hnsw": the product's `new_index("hnsw")` (M 32, efConstruction 80), efSearch swept; built only up to
  `--hnsw-max` vectors, with its build rate reported (HNSW builds one insertion at a time: projected beyond).
- "ivf": `faiss.index_factory(d, "IVF{nlist}_HNSW32,{codes}", METRIC_INNER_PRODUCT)`, FAISS's guideline for 1M-10M
  vectors (an HNSW coarse quantiser), nlist the power of two nearest 4 sqrt(n) (4,096 at 1M, 16,384 at 10M: the
  guideline's 65,536 needs k-means over 2M-16M points, hours on 2 cores), trained on 30 x nlist sampled codes,
  codes SQ8 or PQ32 (`--ivf-codes`; above 2M only `--big-ivf-codes`, SQ8: each IVF build there takes minutes);
  nprobe swept up to the first setting at recall >= 0.99 (the quantiser's efSearch 2 x nprobe, at least 64).
  Then the same index under `IndexRefineFlat` ("+ rerank"): its top k x 4 re-scored from a copy of the fp32
  vectors, whose n x d x 4 bytes are added to its size.
- Latency reps adapt to `--budget-s` per measurement (at least 5); the recall set is `--truth-queries` queries
  (exact top-10 by BLAS over all codes), the latency pool 1,024 queries.

    .venv/bin/python benchmarks/search_scale.py --sizes 1000000 10000000 [--hnsw-max 1000000] [--budget-s 2]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import faiss
import numpy as np
from machine import cpu_model
from realistic_codes import copies_for, describe, grow, load_trajectories

from indexer.faiss_index import new_index, search_index, tune_search

K = 10
BATCH = 64
NUM_QUERIES = 1_024  # latency pool
EF_SEARCH_SWEEP = (32, 64, 128, 256)
NPROBE_SWEEP = (4, 8, 16, 32, 64, 128)
RERANK = {"fp16": 2, "sq8": 4}  # R: candidates per shard = k x R
IVF_RERANK = 4  # IndexRefineFlat's k_factor: the IVF's top k x 4 re-scored exactly
TARGET_RERANK_SPEEDUP = 1.8  # compressed flat + re-rank vs fp32 flat, at recall >= 0.99
TARGET_APPROX_SPEEDUP = 20.0  # approximate vs flat at 10M, recall >= 0.95, within 8 GiB
MEMORY_LIMIT = 8 << 30


@dataclass
class Row:
    index: str
    n: int
    build_s: float | None
    bytes: int | None
    p50_1: float
    p99_1: float
    p50_64: float
    p99_64: float
    recall: float | None


def latency_ms(search: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, budget_s: float):
    """p50 and p99 wall milliseconds of `search` over successive batches of `queries`."""
    batches = [queries[i : i + batch] for i in range(0, len(queries) - batch + 1, batch)]
    search(batches[0])  # warm-up
    start = time.perf_counter()
    search(batches[1 % len(batches)])
    first = time.perf_counter() - start
    reps = int(min(500, max(5, budget_s / max(first, 1e-6))))
    times = np.empty(reps)
    for r in range(reps):
        start = time.perf_counter()
        search(batches[r % len(batches)])
        times[r] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k present in the found top-k."""
    return float(np.mean([len(np.intersect1d(f[f >= 0], t)) / truth.shape[1] for f, t in zip(found, truth)]))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class RerankedFlat:
    """Compressed flat codes in `shards` scalar-quantiser indexes, candidates re-scored from fp32 `stored`."""

    def __init__(self, qtype: int, stored: np.ndarray, shards: int, rerank: int, pool: ThreadPoolExecutor):
        n, d = stored.shape
        self.stored, self.rerank, self.pool = stored, rerank, pool
        self.bounds = np.linspace(0, n, shards + 1).astype(np.int64)
        sample = stored[np.random.default_rng(0).choice(n, min(n, 100_000), replace=False)]
        self.shards = []
        for lo, hi in zip(self.bounds[:-1], self.bounds[1:]):
            index = faiss.IndexScalarQuantizer(d, qtype, faiss.METRIC_INNER_PRODUCT)
            index.train(sample)
            for c in range(lo, hi, 1 << 20):
                index.add(stored[c : min(hi, c + (1 << 20))])
            self.shards.append(index)

    def nbytes(self) -> int:
        return sum(len(faiss.serialize_index(s)) for s in self.shards)

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        """ids (B, k): each shard's top k x R by its codes, re-scored exactly, best k."""
        kr = k * self.rerank
        if len(q) == 1:  # one query: FAISS scans it on one thread, so the shards run in parallel
            parts = list(self.pool.map(lambda s: s.search(q, kr)[1], self.shards))
        else:  # a batch: FAISS parallelises over queries inside each shard
            parts = [s.search(q, kr)[1] for s in self.shards]
        cand = np.concatenate([p + lo for p, lo in zip(parts, self.bounds[:-1])], axis=1)  # (B, S*kR) positions
        scores = np.einsum("bcd,bd->bc", self.stored[cand], q)  # (B, S*kR) exact
        best = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
        return np.take_along_axis(cand, np.take_along_axis(best, order, axis=1), axis=1)


def ivf_index(db: np.ndarray, codes: str) -> tuple[faiss.Index, int]:
    """An IVF index with an HNSW coarse quantiser over `db`, trained on 30 x nlist codes; and its nlist."""
    n, d = db.shape
    nlist = 1 << round(math.log2(4 * math.sqrt(n)))  # 4 sqrt(n), a power of two: 4096 at 1M, 16384 at 10M
    index = faiss.index_factory(d, f"IVF{nlist}_HNSW32,{codes}", faiss.METRIC_INNER_PRODUCT)
    sample = db[np.sort(np.random.default_rng(1).choice(n, min(n, 30 * nlist), replace=False))]
    faiss.extract_index_ivf(index).cp.niter = 10
    index.train(sample)
    for c in range(0, n, 1 << 20):
        index.add(db[c : c + (1 << 20)])
    return index, nlist


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = nprobe
    faiss.downcast_index(ivf.quantizer).hnsw.efSearch = max(64, 2 * nprobe)


def bench(n: int, args, traj, pool: ThreadPoolExecutor) -> list[Row]:
    print(f"\n== n = {n:,} ==\n{describe(traj, n)}", flush=True)
    db, grow_s = timed(lambda: grow(traj, n, seed=args.seed))
    queries = grow(traj, NUM_QUERIES, seed=args.seed, stream=1, copies=copies_for(traj, n))
    truth_q = queries[: args.truth_queries]
    print(f"  grown in {grow_s:.1f} s\n{HEADER}", flush=True)
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(fmt(row), flush=True)

    # exact flat, the product's path, and the read-pass bound over the same bytes
    tune_search()
    flat, flat_s = timed(lambda: product_index("flat", db))
    db = None  # the flat index holds the only copy from here on
    inner = faiss.downcast_index(flat.index)
    stored = faiss.rev_swig_ptr(inner.get_xb(), n * inner.d).reshape(n, inner.d)  # (n, d) view of the vectors
    truth = flat.search(truth_q, K)[1]  # BLAS (>= 20 queries): exact
    flat_bytes = n * (inner.d * 4 + 8)
    read = stored.reshape(-1)
    read_ms = latency_ms(lambda _q: read.sum(), queries, 1, args.budget_s)
    report(Row("read pass, 1 thread (numpy sum)", n, None, n * inner.d * 4, *read_ms, *read_ms, None))
    slices = np.array_split(read, os.cpu_count() or 1)
    read_ms = latency_ms(lambda _q: sum(pool.map(np.sum, slices)), queries, 1, args.budget_s)
    report(Row("read pass, all cores (numpy sum)", n, None, n * inner.d * 4, *read_ms, *read_ms, None))
    p1 = latency_ms(lambda q: search_index(flat, q, K), queries, 1, args.budget_s)
    p64 = latency_ms(lambda q: search_index(flat, q, K), queries, BATCH, args.budget_s)
    report(Row("flat fp32 (product)", n, flat_s, flat_bytes, *p1, *p64, 1.0))

    # the product's `ivf` (`index build --index-type ivf`, what `auto` picks above 100k): its own settings
    product, build_s = timed(lambda: product_index("ivf", stored))
    recall = recall_at_k(search_index(product, truth_q, K)[1], truth)
    p1 = latency_ms(lambda q: search_index(product, q, K), queries, 1, args.budget_s)
    p64 = latency_ms(lambda q: search_index(product, q, K), queries, BATCH, args.budget_s)
    report(Row("ivf (product: new_index)", n, build_s, len(faiss.serialize_index(product)), *p1, *p64, recall))
    product = None

    # compressed flat codes + exact re-ranking
    compressed = (("fp16", faiss.ScalarQuantizer.QT_fp16), ("sq8", faiss.ScalarQuantizer.QT_8bit))
    for name, qtype in compressed if "compressed" in args.indexes else ():
        r = RERANK[name]
        index, build_s = timed(lambda: RerankedFlat(qtype, stored, os.cpu_count() or 1, r, pool))
        recall = recall_at_k(index.search(truth_q, K), truth)
        p1 = latency_ms(lambda q: index.search(q, K), queries, 1, args.budget_s)
        p64 = latency_ms(lambda q: index.search(q, K), queries, BATCH, args.budget_s)
        report(Row(f"flat {name} + rerank {K}x{r}", n, build_s, index.nbytes(), *p1, *p64, recall))
        index = None  # free its codes before the next index is built

    # HNSW, the product's settings
    if "hnsw" in args.indexes and n <= args.hnsw_max:
        hnsw, build_s = timed(lambda: product_index("hnsw", stored))
        print(f"  hnsw build rate {n / build_s:,.0f} vectors/s ({build_s:.0f} s)", flush=True)
        size = len(faiss.serialize_index(hnsw))
        for ef in EF_SEARCH_SWEEP:
            faiss.downcast_index(hnsw.index).hnsw.efSearch = ef
            recall = recall_at_k(hnsw.search(truth_q, K)[1], truth)
            p1 = latency_ms(lambda q: hnsw.search(q, K), queries, 1, args.budget_s)
            p64 = latency_ms(lambda q: hnsw.search(q, K), queries, BATCH, args.budget_s)
            report(Row(f"hnsw ef={ef}", n, build_s, size, *p1, *p64, recall))
        hnsw = None
    elif "hnsw" in args.indexes:
        print(f"  hnsw not built at {n:,} (--hnsw-max {args.hnsw_max:,}): see the 1M build rate", flush=True)

    # IVF with an HNSW coarse quantiser; then the same index with its candidates re-scored from the fp32 vectors
    for codes in (args.ivf_codes if n <= 2_000_000 else args.big_ivf_codes) if "ivf" in args.indexes else ():
        (ivf, nlist), build_s = timed(lambda: ivf_index(stored, codes))
        size = len(faiss.serialize_index(ivf))
        refined = faiss.IndexRefineFlat(ivf, faiss.swig_ptr(stored))  # copies the fp32 vectors
        refined.k_factor = IVF_RERANK
        variants = (
            (f"IVF{nlist}_HNSW32,{codes}", ivf, size),
            (f"IVF{nlist}_HNSW32,{codes} + rerank {K}x{IVF_RERANK}", refined, size + stored.nbytes),
        )
        for label, index, nbytes in variants:
            for nprobe in NPROBE_SWEEP:
                set_nprobe(ivf, nprobe)
                recall = recall_at_k(index.search(truth_q, K)[1], truth)
                p1 = latency_ms(lambda q: index.search(q, K), queries, 1, args.budget_s)
                p64 = latency_ms(lambda q: index.search(q, K), queries, BATCH, args.budget_s)
                report(Row(f"{label} nprobe={nprobe}", n, build_s, nbytes, *p1, *p64, recall))
                if recall >= 0.99:
                    break
        ivf = refined = index = None
    return rows


def product_index(index_type: str, db: np.ndarray) -> faiss.IndexIDMap2:
    """The index `index build --index-type index_type` makes over `db`, ids 0..n-1."""
    index = new_index(index_type, db.shape[1], db)  # trained on db where the type trains (as the first build)
    for c in range(0, len(db), 1 << 20):
        index.add_with_ids(db[c : c + (1 << 20)], np.arange(c, min(len(db), c + (1 << 20)), dtype=np.int64))
    return index


HEADER = (
    f"{'index':<46} {'n':>10} {'build s':>8} {'MiB':>8} {'p50 1':>9} {'p99 1':>9} {'p50 64':>9} {'p99 64':>9} "
    f"{'recall@10':>9}"
)


def fmt(row: Row) -> str:
    build = f"{row.build_s:8.1f}" if row.build_s is not None else f"{'-':>8}"
    size = f"{row.bytes / 2**20:8.0f}" if row.bytes is not None else f"{'-':>8}"
    recall = f"{row.recall:9.3f}" if row.recall is not None else f"{'-':>9}"
    return (
        f"{row.index:<46} {row.n:>10,} {build} {size} {row.p50_1:9.2f} {row.p99_1:9.2f} {row.p50_64:9.1f} "
        f"{row.p99_64:9.1f} {recall}"
    )


def verdicts(rows: list[Row]) -> None:
    print("\nverdicts (p50 latency, ms):")
    for n in sorted({r.n for r in rows}):
        group = [r for r in rows if r.n == n]
        read = next(r for r in group if r.index.startswith("read pass, all cores"))
        flat = next(r for r in group if r.index.startswith("flat fp32"))
        print(
            f"  n={n:,}: flat fp32 one query {flat.p50_1:.2f} ms vs read pass {read.p50_1:.2f} ms "
            f"({flat.p50_1 / read.p50_1:.2f}x the bound)"
        )
        for r in (r for r in group if r.index.startswith("flat") and "rerank" in r.index):
            ok = r.recall >= 0.99 and flat.p50_1 / r.p50_1 >= TARGET_RERANK_SPEEDUP
            print(
                f"  n={n:,}: {r.index}: {flat.p50_1 / r.p50_1:.2f}x flat (one query), {flat.p50_64 / r.p50_64:.2f}x "
                f"(batch 64), recall {r.recall:.3f}: {'met' if ok else 'NOT met'} "
                f"(>= {TARGET_RERANK_SPEEDUP}x at >= 0.99)"
            )
        approx = [r for r in group if r.recall is not None and r.recall >= 0.95 and not r.index.startswith("flat")]
        for batch, key in ((1, "p50_1"), (64, "p50_64")):
            best = min(approx, key=lambda r: getattr(r, key), default=None)
            if best is None:
                print(f"  n={n:,}: no approximate index reached recall 0.95")
                continue
            speed = getattr(flat, key) / getattr(best, key)
            fits = best.bytes <= MEMORY_LIMIT
            ok = speed >= TARGET_APPROX_SPEEDUP and fits
            print(
                f"  n={n:,} batch {batch}: fastest at recall >= 0.95: {best.index}, {speed:.1f}x flat, recall "
                f"{best.recall:.3f}, {best.bytes / 2**30:.2f} GiB: {'met' if ok else 'NOT met'} "
                f"(>= {TARGET_APPROX_SPEEDUP:.0f}x within 8 GiB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="build HNSW only up to this many codes")
    parser.add_argument("--ivf-codes", nargs="+", default=["SQ8", "PQ32"], help="IVF code types (index_factory)")
    parser.add_argument("--big-ivf-codes", nargs="+", default=["SQ8"], help="IVF code types above 2M codes")
    parser.add_argument("--truth-queries", type=int, default=256, help="queries in the recall set")
    parser.add_argument("--budget-s", type=float, default=2.0, help="seconds of reps per latency measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--indexes",
        nargs="*",
        choices=["compressed", "hnsw", "ivf"],
        default=["compressed", "hnsw", "ivf"],
        help="which families beside the bound, flat and the product's ivf (always measured); none: just those",
    )
    args = parser.parse_args()
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"numpy {np.__version__} (BLAS {blas.get('name')}), faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} omp threads), load average {os.getloadavg()[0]:.2f}"
    )
    print(f"k={K}, batches 1 and {BATCH}, recall over {args.truth_queries} held-out queries, seed {args.seed}")
    traj = load_trajectories()
    rows: list[Row] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        for n in args.sizes:
            rows += bench(n, args, traj, pool)
    print(f"\nall results ({time.perf_counter() - start:.0f} s; latencies in ms):\n{HEADER}")
    for row in rows:
        print(fmt(row))
    verdicts(rows)
    print(f"at the end: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
