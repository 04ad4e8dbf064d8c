"""FAISS index construction for the pose index: which index type, built how, over which vectors.

Pure functions; `indexer.generations` is the only caller that writes or reads index files.

Choices made:
- Cosine similarity: vectors are L2-normalised float32 in an inner-product index wrapped in `IndexIDMap2`, so the
  ids FAISS returns are the frame rows' primary keys.
- `flat` is exact; `hnsw` (M=32, efConstruction 80, efSearch 256) trades exactness for speed; `ivf` is FAISS's
  guideline for 1M-10M vectors, IVF with an HNSW coarse quantiser over SQ8 codes (one byte per number), whose top
  `IVF_RERANK` x k candidates are re-scored exactly from the fp32 vectors (`IndexRefineFlat`): SQ8 alone stops near
  recall@10 0.89 at 10M on codes like ours, re-scored 0.98-1.0 (README, "Search at 10M"); `ivfpq` (one 8-bit code
  per dimension, no fp32 vectors) trades recall for memory. nlist ~ 4 sqrt(n), trained on a seeded sample. `auto`
  picks at the first build: flat up to 100k vectors when it fits the memory budget, then ivf when its vectors and
  codes fit, ivfpq otherwise. (`hnsw` stays for those who ask: at 1M, `ivf` builds faster, is smaller and recalls
  more at the same latency, and HNSW's one-at-a-time insertion is the cost at 10M.)
- Every build measures what its index gives up (`measure_recall`): recall@10 against exact search, leave-one-out
  over a seeded sample of the stored vectors, recorded in the manifest. Flat is exact by construction (1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq", "auto")
AUTO_FLAT_MAX = 100_000  # `auto`: exact search stays fast enough up to here
AUTO_MEMORY_BUDGET = 4 << 30  # bytes `auto` may spend on the index
IVF_MIN_VECTORS = 1_000  # fewer cannot train the coarse quantiser's lists (nor ivfpq's 8-bit codebooks); use flat
# ivf: lists searched per query, and how many candidates per wanted hit are re-scored exactly. search_scale.py, codes
# grown from real ones: 1M, nprobe 16 -> recall@10 0.997 at 0.16 ms; 10M, nprobe 8 -> 0.977, 32 -> 0.995.
IVF_NPROBE = 16
IVF_RERANK = 4
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# Search breadth of HNSW. benchmarks/search_speed.py, 100k random unit vectors, d=64, recall@10 against exact:
# ef 64 -> 0.71 (uniform queries) / 0.88 (near a stored code); ef 256 -> 0.97 / 0.98 at about 1 ms per query.
HNSW_EF_SEARCH = 256
# Batches of at least this many queries are scored through BLAS (sgemm) rather than FAISS's one-query SIMD loop.
# FAISS 1.15 ships 128000 (BLAS practically never); here, 2 cores, d=64, 100k vectors, batch 64 searched in 25 ms
# through BLAS against 96-128 ms without it (benchmarks/search_speed.py). 20 was FAISS's default before 1.15.
# Fewer queries on a flat index take `search_index`'s own BLAS product, so flat search never runs on one thread.
BLAS_QUERY_THRESHOLD = 20
RECALL_K = 10  # the manifest records recall@RECALL_K
RECALL_QUERIES = 200  # stored vectors sampled as held-out queries for it
_EXACT_BLOCK = 1 << 20  # stored vectors per block of the exact search (200 queries x 1M scores: 800 MB)


@dataclass(frozen=True)
class IdFilter:
    """Which ids a search may return: only `ids` (`keep`), or all but `ids`. Applied inside the search (FAISS's
    ID selectors), so a filter that removes most of the index costs one search, not rounds of over-fetching."""

    ids: np.ndarray  # int64, the ids named
    keep: bool  # True: only these ids; False: every id but these

    def allowed(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` pass, as a boolean mask."""
        return np.isin(ids, self.ids) == self.keep

    def search_parameters(self, inner: faiss.Index) -> faiss.SearchParameters:
        """FAISS search parameters carrying this filter for `inner`'s kind, with its other search settings."""
        ids = np.ascontiguousarray(self.ids, dtype=np.int64)
        named = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))
        selector = named if self.keep else faiss.IDSelectorNot(named)
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
        elif isinstance(inner, faiss.IndexIVF):
            params = faiss.SearchParametersIVF(sel=selector, nprobe=inner.nprobe)
        elif isinstance(inner, faiss.IndexRefine):  # ids here are the refine index's positions, not frame ids
            ivf = faiss.extract_index_ivf(inner.base_index)
            base = faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
            params = faiss.IndexRefineSearchParameters(k_factor=inner.k_factor, base_index_params=base)
            params.referenced_objects = [named, selector, base]
            return params
        else:
            params = faiss.SearchParameters(sel=selector)
        params.referenced_objects = [named, selector]  # SWIG holds raw pointers: keep both alive with the params
        return params


def search_index(
    index: faiss.IndexIDMap2, queries: np.ndarray, k: int, id_filter: IdFilter | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`index.search(queries, k)`: (Q, k) scores, descending, and ids, -1 past the end, as FAISS returns them;
    only ids that `id_filter` allows, when given.

    Fewer than `BLAS_QUERY_THRESHOLD` queries on a flat index are scored by one BLAS product over a zero-copy view
    of the index's own vectors, then `np.argpartition`: FAISS scans for a few queries on one thread, BLAS uses
    every core. benchmarks/search_speed.py, 2 cores, d=64, one query: 100k vectors 1.8 ms against FAISS's 3.1 ms,
    1M 17.7 ms against 20.6-27.5 ms. Ties may come back in another order than FAISS's.
    """
    inner = faiss.downcast_index(index.index)
    n = index.ntotal
    if not (
        isinstance(inner, faiss.IndexFlat)
        and inner.metric_type == faiss.METRIC_INNER_PRODUCT
        and 0 < len(queries) < BLAS_QUERY_THRESHOLD
        and n > 0
    ):
        if id_filter is None:
            return index.search(queries, k)
        if isinstance(inner, faiss.IndexRefine):
            return _refine_search(index, inner, queries, k, id_filter)
        return index.search(queries, k, params=id_filter.search_parameters(inner))
    stored = faiss.rev_swig_ptr(inner.get_xb(), n * inner.d).reshape(n, inner.d)  # (N, d) view, no copy
    id_map = faiss.rev_swig_ptr(index.id_map.data(), n)  # (N,) int64 view
    sims = queries @ stored.T  # (Q, N)
    top = min(k, n)
    if id_filter is not None:
        allowed = id_filter.allowed(id_map)  # (N,)
        sims[:, ~allowed] = -np.inf
        top = min(top, int(allowed.sum()))
        if top == 0:
            return (
                np.full((len(queries), k), np.finfo(np.float32).min, np.float32),
                np.full((len(queries), k), -1, np.int64),
            )
    best = np.argpartition(sims, n - top, axis=1)[:, n - top :]  # (Q, top), unordered; no negated (Q, N) copy
    order = np.argsort(-np.take_along_axis(sims, best, axis=1), axis=1, kind="stable")
    positions = np.take_along_axis(best, order, axis=1)
    scores = np.full((len(queries), k), np.finfo(np.float32).min, dtype=np.float32)  # FAISS's "no result" score
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    scores[:, :top] = np.take_along_axis(sims, positions, axis=1)
    ids[:, :top] = id_map[positions]
    return scores, ids


def _refine_search(
    index: faiss.IndexIDMap2, inner: faiss.IndexRefine, queries: np.ndarray, k: int, id_filter: IdFilter
) -> tuple[np.ndarray, np.ndarray]:
    """A filtered search of an `ivf` index. `IndexIDMap2` translates a selector's frame ids to positions only for
    the selector at the top of the parameters, and `IndexRefine` reads a selector only in its base index's
    parameters, so the filter is translated here: the allowed positions go to the IVF, and the positions found come
    back as frame ids."""
    id_map = faiss.rev_swig_ptr(index.id_map.data(), index.ntotal)  # (N,) int64 view
    positions = np.flatnonzero(id_filter.allowed(id_map)).astype(np.int64)
    scores, found = inner.search(queries, k, params=IdFilter(positions, keep=True).search_parameters(inner))
    return scores, np.where(found >= 0, id_map[np.maximum(found, 0)], -1)


def tune_search() -> None:
    """Process-wide FAISS search settings (FAISS keeps them global): see `BLAS_QUERY_THRESHOLD`."""
    faiss.cvar.distance_compute_blas_threshold = BLAS_QUERY_THRESHOLD


def unit_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    """`vectors` (N, dim) as a new L2-normalised float32 array; a wrong shape, NaN or zero vector is an error."""
    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"vectors must be (N, {dim}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    if len(x) and (np.linalg.norm(x, axis=1) == 0).any():
        raise ValueError("a zero vector has no direction: cosine similarity is undefined")
    faiss.normalize_L2(x)
    return x


def resolve_index_type(index_type: str, num_vectors: int, dim: int, memory_budget: int = AUTO_MEMORY_BUDGET) -> str:
    """`auto` -> flat, ivf or ivfpq by size and memory budget (bytes); other types are returned as they are."""
    if index_type != "auto":
        return index_type
    flat_bytes = num_vectors * dim * 4
    if num_vectors <= AUTO_FLAT_MAX and flat_bytes <= memory_budget:
        return "flat"
    if flat_bytes + num_vectors * (dim + 8) <= memory_budget:  # fp32 vectors for re-scoring + SQ8 codes and list ids
        return "ivf"
    return "ivfpq"


def new_index(index_type: str, dim: int, train: np.ndarray | None = None, *, seed: int = 0) -> faiss.IndexIDMap2:
    """An empty id-mapped inner-product index; `ivf` and `ivfpq` are trained on a seeded sample of `train` (unit
    vectors)."""
    if index_type in ("ivf", "ivfpq") and (train is None or len(train) < IVF_MIN_VECTORS):
        raise ValueError(f"{index_type} needs at least {IVF_MIN_VECTORS} vectors to train; use flat")
    if index_type == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
    elif index_type == "ivf":
        nlist = _nlist(len(train))
        ivf = faiss.index_factory(dim, f"IVF{nlist}_HNSW{HNSW_M},SQ8", faiss.METRIC_INNER_PRODUCT)
        inner_ivf = faiss.extract_index_ivf(ivf)
        inner_ivf.cp.niter = 10  # the coarse k-means converges in a few rounds on codes this clustered
        ivf.train(_training_sample(train, nlist, seed))
        inner_ivf.nprobe = min(nlist, IVF_NPROBE)
        faiss.downcast_index(inner_ivf.quantizer).hnsw.efSearch = max(64, 2 * inner_ivf.nprobe)
        inner = faiss.IndexRefineFlat(ivf)  # keeps the fp32 vectors: exact re-scoring, and `vectors()` exact
        inner.k_factor = IVF_RERANK
    elif index_type == "ivfpq":
        nlist = _nlist(len(train))
        # One 8-bit code per dimension: 4x smaller than flat. Two dims per code capped recall@10 near 0.87.
        inner = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, dim, 8, faiss.METRIC_INNER_PRODUCT)
        inner.pq.cp.niter = 10  # k-means of 256 codes per dimension converges fast; 25 rounds cost 2.5x the time
        inner.train(_training_sample(train, nlist, seed))
        inner.nprobe = min(nlist, max(16, nlist // 4))
    else:
        raise ValueError(f"unknown index type {index_type!r}; choose from {INDEX_TYPES}")
    return faiss.IndexIDMap2(inner)


def _nlist(n: int) -> int:
    """Inverted lists for n vectors: about 4 sqrt(n) (FAISS's guideline), at least 39 training vectors per list."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _training_sample(train: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """A seeded sample of `train` in stored order, 64 vectors per list (at least 256): enough for k-means."""
    n = len(train)
    sample = np.random.default_rng(seed).choice(n, size=min(n, max(256, 64 * nlist)), replace=False)
    return np.ascontiguousarray(train[np.sort(sample)])


def measure_recall(
    index: faiss.IndexIDMap2,
    vectors: np.ndarray,
    ids: np.ndarray,
    *,
    k: int = RECALL_K,
    queries: int = RECALL_QUERIES,
    seed: int = 0,
) -> tuple[float, int]:
    """Recall@k of `index` against exact search, and how many queries measured it.

    `vectors` (N, d) unit float32 with FAISS ids `ids` (N,) are what `index` holds (the reference of "exact").
    Queries: a seeded sample of `queries` of those vectors, each held out from its own results (leave-one-out:
    both searches ask for k + 1 and drop the query's own id), so a query is as new to the index as a frame from
    the same videos. Exact: one BLAS product per block of stored vectors. An index of k vectors or fewer
    measures nothing: (1.0, 0).
    """
    n = len(vectors)
    assert vectors.ndim == 2 and ids.shape == (n,), "vectors (N, d) and ids (N,)"
    if n <= k:
        return 1.0, 0
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, size=min(queries, n), replace=False))
    q = np.ascontiguousarray(vectors[chosen])  # (Q, d)
    best_scores = np.full((len(q), k + 1), -np.inf, np.float32)
    best_rows = np.zeros((len(q), k + 1), np.int64)
    for lo in range(0, n, _EXACT_BLOCK):
        block = q @ vectors[lo : lo + _EXACT_BLOCK].T  # (Q, B)
        scores = np.concatenate([best_scores, block], axis=1)
        rows = np.concatenate([best_rows, np.broadcast_to(np.arange(lo, lo + block.shape[1]), block.shape)], axis=1)
        top = np.argpartition(-scores, k, axis=1)[:, : k + 1]  # (Q, k + 1) best so far, unordered
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_rows = np.take_along_axis(rows, top, axis=1)
    exact = ids[best_rows]  # (Q, k + 1)
    _, found = search_index(index, q, k + 1)  # (Q, k + 1), the index's own search settings
    own = ids[chosen]
    hits = 0
    for i in range(len(q)):
        others = exact[i] != own[i]  # k of k + 1, or all k + 1 when a duplicate of the query displaced it
        truth = exact[i][others][np.argsort(-best_scores[i][others], kind="stable")[:k]]  # (k,)
        got = found[i][(found[i] != own[i]) & (found[i] >= 0)][:k]
        hits += len(np.intersect1d(truth, got))
    return hits / (k * len(q)), len(q)
