"""`indexer.faiss_index.search_index`: the BLAS path for a few queries on a flat index answers exactly as FAISS."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from indexer.faiss_index import (
    BLAS_QUERY_THRESHOLD,
    IdFilter,
    new_index,
    search_index,
    unit_vectors,
)

DIM = 16


def filled(index_type: str, n: int) -> tuple[faiss.IndexIDMap2, np.ndarray]:
    rng = np.random.default_rng(0)
    x = unit_vectors(rng.standard_normal((n, DIM)), DIM)
    index = new_index(index_type, DIM)
    index.add_with_ids(x, rng.choice(10 * n, size=n, replace=False).astype(np.int64) + 1)  # ids, not positions
    return index, x


@pytest.mark.parametrize("num_queries", [1, 7, BLAS_QUERY_THRESHOLD - 1, BLAS_QUERY_THRESHOLD])
@pytest.mark.parametrize("k", [1, 10, 250])  # 250: more than the index holds
def test_flat_search_equals_faiss(num_queries: int, k: int) -> None:
    index, _ = filled("flat", 200)
    queries = unit_vectors(np.random.default_rng(1).standard_normal((num_queries, DIM)), DIM)
    scores, ids = search_index(index, queries, k)
    want_scores, want_ids = index.search(queries, k)
    assert scores.shape == ids.shape == (num_queries, k) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores[ids >= 0], want_scores[want_ids >= 0], atol=1e-5)
    np.testing.assert_array_equal(scores[ids < 0], want_scores[want_ids < 0])  # FAISS's -FLT_MAX padding
    assert ((ids < 0).sum(axis=1) == max(0, k - 200)).all()
    assert (np.diff(scores[:, : min(k, 200)], axis=1) <= 0).all()  # descending


def test_memory_mapped_flat_and_other_indexes_answer_as_faiss(tmp_path) -> None:
    index, x = filled("flat", 300)
    faiss.write_index(index, str(tmp_path / "flat.faiss"))
    mapped = faiss.read_index(str(tmp_path / "flat.faiss"), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    hnsw, _ = filled("hnsw", 300)
    queries = x[:3]
    for each in (mapped, hnsw):
        np.testing.assert_array_equal(search_index(each, queries, 5)[1], each.search(queries, 5)[1])
    assert (search_index(mapped, queries, 1)[1][:, 0] == faiss.vector_to_array(index.id_map)[:3]).all()


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf", "ivfpq"])
@pytest.mark.parametrize("num_queries", [1, BLAS_QUERY_THRESHOLD])  # the BLAS path and FAISS's own
@pytest.mark.parametrize("keep", [True, False])
def test_an_id_filter_acts_inside_the_search(index_type: str, num_queries: int, keep: bool) -> None:
    """Only the allowed ids come back, k of them when k are allowed, and (exact index) the same as a brute force
    search over the allowed vectors; half the index named, as the worst case of 'other identities'."""
    rng = np.random.default_rng(1)
    n = 2000
    x = unit_vectors(rng.standard_normal((n, DIM)), DIM)
    ids = np.arange(n, dtype=np.int64) * 3 + 5
    index = new_index(index_type, DIM, x)
    index.add_with_ids(x, ids)
    named = ids[: n // 2]
    id_filter = IdFilter(named, keep=keep)
    queries = unit_vectors(rng.standard_normal((num_queries, DIM)), DIM)
    scores, found = search_index(index, queries, 10, id_filter)
    allowed = np.isin(ids, named) == keep
    assert (found >= 0).all() and np.isin(found, ids[allowed]).all()
    exact = ids[allowed][np.argsort(-(queries @ x[allowed].T), axis=1)[:, :10]]
    if index_type == "flat":
        assert (found == exact).all()
    if index_type == "ivf":  # re-scored from the fp32 vectors: the scores are exact, and so is nearly every hit
        np.testing.assert_allclose(scores, np.take_along_axis(queries @ x.T, np.searchsorted(ids, found), 1), atol=1e-5)
        assert np.mean([len(np.intersect1d(f, e)) for f, e in zip(found, exact)]) >= 7
    few = IdFilter(ids[:3], keep=True)  # fewer allowed than k: -1 past them
    _, found = search_index(index, queries, 10, few)
    assert all(set(row[row >= 0]) <= set(ids[:3]) and (row[len(row[row >= 0]) :] == -1).all() for row in found)
