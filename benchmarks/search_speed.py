"""How fast FAISS searches pose codes, against a NumPy brute-force matmul + argpartition baseline (issue 4).

Ours: the indexes the product builds (`indexer.faiss_index.new_index`: id-mapped `IndexFlatIP`, `IndexHNSWFlat`,
`IndexIVFPQ`, inner product) searched as the product searches them (`search_index`, under `tune_search`'s
settings: a few queries on a flat index go through one BLAS product); "flat (faiss default)" is the same flat index
through FAISS's own `search` under FAISS 1.15's own BLAS threshold, to show what those choices are worth.
Baseline, on the same seeded random unit vectors (float32, d = the `small` checkpoint's pose code size): `q @ db.T`
(the issue's `db @ q.T`, laid out query-major so the partition runs along contiguous rows), `np.argpartition`
for the top k, then a sort of those k. Latency p50/p99 at batch 1 and batch 64; recall@10 of the approximate
indexes against exact search. Targets: flat no slower than NumPy; an approximate index >= 20x faster than flat
at 1M with recall@10 >= 0.95.

Choices the issue leaves open:
- Two query sets. "uniform": drawn on the sphere independently of the database, the hardest case for approximate
  search (in d=64 every point is about equally far from every other). "near": a database point plus noise of
  norm ~0.3 (before renormalising), closer to real pose codes, which cluster. Both are reported.
- HNSW and IVF-PQ are built exactly as `index build --index-type hnsw|ivfpq` builds them; efSearch and nprobe
  are swept, and the fastest setting reaching the recall target is the one the verdict uses.
- Latency reps adapt to a time budget per measurement (`--budget-s`); p99 over few reps is close to the max.
- With `faiss.get_num_gpus() > 0` the flat and IVF-PQ indexes are also copied to GPU 0 and reported as "gpu" rows
  (HNSW has no GPU version); otherwise CPU only.

    .venv/bin/python benchmarks/search_speed.py [--quick] [--dim 64] [--sizes 100000 1000000] [--threads N]
    .venv/bin/python benchmarks/search_speed.py --approximate   # flat against NumPy only
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np
from machine import cpu_model

from indexer.faiss_index import new_index, search_index, tune_search

K = 10  # recall@10, top-10 search
BATCH = 64  # the batch size
TARGET_SPEEDUP = 20.0  # approximate vs flat at 1M
TARGET_RECALL = 0.95
EF_SEARCH_SWEEP = (64, 128, 256, 512)
NPROBE_SWEEP = (16, 32, 64, 128)
FAISS_DEFAULT_BLAS_THRESHOLD = faiss.cvar.distance_compute_blas_threshold  # read before anything tunes it
NUM_QUERIES = 1_000  # pool the latency loop cycles through, and the recall set
NEAR_NOISE = 0.3  # norm of the perturbation for the "near" query set


def load_note() -> str:
    """The 1-minute load average against the core count: other processes on a small box skew every latency."""
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f} on {os.cpu_count()} cores" + (
        " -- WARNING: the machine is busy with other work, latencies below are inflated and noisy" if busy else ""
    )


def default_dim() -> int:
    """The pose code size of the shipped `small` checkpoint (configs/small.yaml, model.pose_dim)."""
    from model.config import (
        load_config,  # imported here: only the default needs the model package
    )

    return load_config("small").model.pose_dim


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32."""
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(n: int, dim: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """db: (n, dim) unit float32; queries: {"uniform", "near"} -> (NUM_QUERIES, dim) unit float32."""
    rng = np.random.default_rng(seed)
    db = unit(rng.standard_normal((n, dim), dtype=np.float32))
    uniform = unit(rng.standard_normal((NUM_QUERIES, dim), dtype=np.float32))
    anchors = db[rng.choice(n, NUM_QUERIES, replace=False)]
    noise = unit(rng.standard_normal((NUM_QUERIES, dim), dtype=np.float32)) * NEAR_NOISE
    return db, {"uniform": uniform, "near": unit(anchors + noise)}


def numpy_search(db: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """The baseline: q (B, d) -> ids (B, k) by descending inner product."""
    scores = q @ db.T  # (B, n)
    top = np.argpartition(scores, -k, axis=1)[:, -k:]  # (B, k) unordered
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k present in the found top-k (-1 ids count as misses)."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / k for f, t in zip(found, truth)]))


def latency_ms(
    search: Callable[[np.ndarray], object],
    queries: np.ndarray,
    batch: int,
    budget_s: float,
    min_reps: int = 20,
    max_reps: int = 1000,
) -> tuple[float, float, int]:
    """p50 and p99 wall milliseconds of `search` on successive batches from `queries`, and the rep count."""
    batches = [queries[i : i + batch] for i in range(0, len(queries) - batch + 1, batch)]
    search(batches[0])  # warm-up: page in, allocate
    start = time.perf_counter()
    search(batches[0])
    first_s = time.perf_counter() - start
    reps = int(min(max_reps, max(min_reps, budget_s / max(first_s, 1e-6))))
    times = np.empty(reps)
    for r in range(reps):
        qb = batches[r % len(batches)]
        start = time.perf_counter()
        search(qb)
        times[r] = time.perf_counter() - start
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3), reps


@dataclass
class Row:
    """One line of the results table."""

    index: str
    device: str
    n: int
    queries: str
    batch: int
    p50_ms: float
    p99_ms: float
    reps: int
    vs_numpy: float  # numpy p50 / this p50: > 1 means faster than numpy
    vs_flat: float | None  # flat p50 (same device) / this p50, approximate indexes only
    recall: float | None


def timed(label: str, fn: Callable[[], object]) -> object:
    """Run `fn`, print how long it took, return its result."""
    start = time.perf_counter()
    out = fn()
    print(f"  build {label}: {time.perf_counter() - start:.1f} s", flush=True)
    return out


def product_index(index_type: str, db: np.ndarray) -> faiss.Index:
    """The index `index build --index-type index_type` makes over `db`, ids 0..n-1."""
    index = new_index(index_type, db.shape[1], db if index_type == "ivfpq" else None)
    index.add_with_ids(db, np.arange(len(db), dtype=np.int64))
    return index


def bench_size(
    n: int,
    dim: int,
    seed: int,
    budget_s: float,
    gpu_res: object | None,
    skip_hnsw_above: int,
    approximate: tuple[str, ...] = ("hnsw", "ivfpq"),
) -> list[Row]:
    """All indexes and the baseline at one database size; rows for both query sets and both batch sizes."""
    print(f"\n== n = {n:,}, d = {dim} ==", flush=True)
    db, query_sets = make_data(n, dim, seed)
    flat = timed("flat (IndexFlatIP)", lambda: product_index("flat", db))
    indexes: dict[tuple[str, str], faiss.Index] = {("flat", "cpu"): flat, ("flat (faiss default)", "cpu"): flat}
    if "hnsw" in approximate and n <= skip_hnsw_above:
        indexes[("hnsw", "cpu")] = timed("hnsw", lambda: product_index("hnsw", db))
    elif "hnsw" in approximate:
        print(f"  HNSW skipped at n={n:,} (--skip-hnsw-above {skip_hnsw_above:,})")
    if "ivfpq" in approximate:
        indexes[("ivfpq", "cpu")] = timed("ivfpq", lambda: product_index("ivfpq", db))
    if gpu_res is not None:
        gpu_flat = faiss.index_cpu_to_gpu(gpu_res, 0, faiss.downcast_index(flat.index))
        indexes[("flat", "gpu")] = timed("GPU IndexFlatIP", lambda: gpu_flat)

    rows: list[Row] = []
    print(HEADER)
    for qname, queries in query_sets.items():
        _, truth = flat.search(queries, K)
        np_ids = numpy_search(db, queries[:BATCH], K)
        assert (np_ids == truth[:BATCH]).mean() > 0.99, "numpy baseline disagrees with IndexFlatIP"
        for batch in (1, BATCH):
            np50, np99, np_reps = latency_ms(lambda q: numpy_search(db, q, K), queries, batch, budget_s)
            rows.append(Row("numpy", "cpu", n, qname, batch, np50, np99, np_reps, 1.0, None, None))
            flat_p50: dict[str, float] = {}
            for (name, device), index in indexes.items():
                for setting, apply in _settings(name, device, index):
                    tune_search()  # the product's settings, unless this row's setting overrides them
                    apply()
                    exact = name.startswith("flat")
                    recall = None if exact else recall_at_k(index.search(queries, K)[1], truth)
                    p50, p99, reps = latency_ms(searcher(name, index), queries, batch, budget_s)
                    if name == "flat":
                        flat_p50[device] = p50
                    vs_flat = None if exact else flat_p50[device] / p50
                    rows.append(
                        Row(f"{name}{setting}", device, n, qname, batch, p50, p99, reps, np50 / p50, vs_flat, recall)
                    )
                    print(_format(rows[-1]), flush=True)
    return rows


def searcher(name: str, index: faiss.Index) -> Callable[[np.ndarray], object]:
    """How the product searches `index` (`indexer.faiss_index.search_index`, as `Store.search` does); the
    "(faiss default)" row calls FAISS's own `search` under FAISS's settings."""
    if name.endswith("(faiss default)") or not isinstance(index, faiss.IndexIDMap2):
        return lambda q: index.search(q, K)
    return lambda q: search_index(index, q, K)


def _settings(name: str, device: str, index: faiss.Index) -> list[tuple[str, Callable[[], None]]]:
    """The search-time settings swept for one index: (label suffix, function applying it)."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if name == "hnsw":
        return [(f" ef={ef}", lambda ef=ef: setattr(inner.hnsw, "efSearch", ef)) for ef in EF_SEARCH_SWEEP]
    if name == "ivfpq":
        return [(f" nprobe={p}", lambda p=p: setattr(inner, "nprobe", p)) for p in NPROBE_SWEEP]
    if name == "flat (faiss default)":
        return [("", lambda: setattr(faiss.cvar, "distance_compute_blas_threshold", FAISS_DEFAULT_BLAS_THRESHOLD))]
    return [("", lambda: None)]


HEADER = (
    f"{'index':<24} {'dev':<4} {'n':>9} {'queries':<8} {'batch':>5} {'p50 ms':>9} {'p99 ms':>9} "
    f"{'reps':>5} {'vs numpy':>9} {'vs flat':>8} {'recall@10':>9}"
)


def _format(row: Row) -> str:
    vs_flat = f"{row.vs_flat:7.1f}x" if row.vs_flat is not None else f"{'-':>8}"
    recall = f"{row.recall:9.3f}" if row.recall is not None else f"{'-':>9}"
    return (
        f"{row.index:<24} {row.device:<4} {row.n:>9,} {row.queries:<8} {row.batch:>5} {row.p50_ms:9.3f} "
        f"{row.p99_ms:9.3f} {row.reps:>5} {row.vs_numpy:8.2f}x {vs_flat} {recall}"
    )


def verdicts(rows: list[Row]) -> None:
    """One line per target per (device, query set, batch): met / not met with the numbers behind it."""
    print("\nverdicts (p50 latency):")
    groups = sorted({(r.n, r.device, r.queries, r.batch) for r in rows})
    if all(n < 1_000_000 for n, *_ in groups):
        print(
            f"  approx >= {TARGET_SPEEDUP:.0f}x flat @ recall >= {TARGET_RECALL} at 1M: not evaluated (no 1M size run)"
        )
    for n, device, qname, batch in groups:
        group = [r for r in rows if (r.n, r.device, r.queries, r.batch) == (n, device, qname, batch)]
        flat = next(r for r in group if r.index == "flat")
        if device == "cpu":
            met = flat.vs_numpy >= 1.0
            print(
                f"  flat no slower than numpy  n={n:>9,} {device} {qname:<7} batch {batch:>2}: "
                f"{'met' if met else 'NOT met'} (flat {flat.p50_ms:.3f} ms vs numpy "
                f"{flat.p50_ms * flat.vs_numpy:.3f} ms, {flat.vs_numpy:.2f}x)"
            )
        if n < 1_000_000:
            continue
        good = [r for r in group if r.recall is not None and r.recall >= TARGET_RECALL]
        best = max(good, key=lambda r: r.vs_flat, default=None)
        if best is None:
            top = max((r for r in group if r.recall is not None), key=lambda r: r.recall, default=None)
            detail = f"best recall {top.recall:.3f} ({top.index})" if top else "no approximate index ran"
            print(
                f"  approx >= {TARGET_SPEEDUP:.0f}x flat @ recall >= {TARGET_RECALL}  n={n:,} {device} {qname:<7} "
                f"batch {batch:>2}: NOT met (no setting reaches the recall; {detail})"
            )
            continue
        met = best.vs_flat >= TARGET_SPEEDUP
        print(
            f"  approx >= {TARGET_SPEEDUP:.0f}x flat @ recall >= {TARGET_RECALL}  n={n:,} {device} {qname:<7} "
            f"batch {batch:>2}: {'met' if met else 'NOT met'} ({best.index}: {best.vs_flat:.1f}x flat, "
            f"recall {best.recall:.3f}, {best.p50_ms:.3f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=None, help="vector size (default: configs/small.yaml pose_dim)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="100k only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="faiss OpenMP threads")
    parser.add_argument("--budget-s", type=float, default=1.0, help="seconds of reps per latency measurement")
    parser.add_argument(
        "--approximate",
        nargs="*",
        choices=["hnsw", "ivfpq"],
        default=["hnsw", "ivfpq"],
        help="approximate indexes to build (none: flat against NumPy only, in a minute)",
    )
    parser.add_argument(
        "--skip-hnsw-above",
        type=int,
        default=10**9,
        help="skip the HNSW build above this many vectors (slow on small machines)",
    )
    args = parser.parse_args()
    dim = args.dim if args.dim is not None else default_dim()
    sizes = [100_000] if args.quick else args.sizes
    faiss.omp_set_num_threads(args.threads)
    num_gpus = faiss.get_num_gpus()
    gpu_res = faiss.StandardGpuResources() if num_gpus > 0 else None

    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    thread_env = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores (os.cpu_count), {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}"
    )
    print(
        f"numpy {np.__version__} (BLAS {blas.get('name')} {blas.get('version')}), faiss {faiss.__version__}, "
        f"faiss omp threads {faiss.omp_get_max_threads()}, GPUs {num_gpus}"
    )
    print(
        f"thread env: {thread_env}; OPENBLAS_CORETYPE "
        f"{'set to ' + os.environ['OPENBLAS_CORETYPE'] if 'OPENBLAS_CORETYPE' in os.environ else 'unset'}"
    )
    print(load_note())
    print(
        f"config: d={dim}, sizes {sizes}, k={K}, batches 1 and {BATCH}, {NUM_QUERIES} queries per set, "
        f"seed {args.seed}, {args.budget_s:g} s of reps per measurement"
    )
    print(
        f"indexes as `index build` makes them (indexer/faiss_index.py); efSearch in {EF_SEARCH_SWEEP}, "
        f"nprobe in {NPROBE_SWEEP}; FAISS's default BLAS threshold {FAISS_DEFAULT_BLAS_THRESHOLD}"
    )

    rows: list[Row] = []
    start = time.perf_counter()
    for n in sizes:
        rows += bench_size(n, dim, args.seed, args.budget_s, gpu_res, args.skip_hnsw_above, tuple(args.approximate))
    print(f"\nall results ({time.perf_counter() - start:.0f} s):")
    print(HEADER)
    for row in rows:
        print(_format(row))
    verdicts(rows)
    print(f"at the end: {load_note()}")


if __name__ == "__main__":
    main()
