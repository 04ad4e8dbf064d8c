"""The recall@10 a build measures (`measure_recall`), records in ``manifest.json`` and `index info` prints."""

from __future__ import annotations

import json
from types import SimpleNamespace

import faiss
import numpy as np
import pytest
from faiss.contrib.datasets import SyntheticDataset

from indexer.faiss_index import measure_recall, new_index
from indexer.store import Store
from tests.indexer.test_store import DIM, SHA, frame_rows, unit
from ui.index_command import main


def _recall_by_hand(index: faiss.IndexIDMap2, x: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> float:
    """Leave-one-out recall@10 by brute force, query by query (what `measure_recall` must equal)."""
    hits = 0
    for r in rows:
        sims = x @ x[r]
        sims[r] = -np.inf  # the query is held out of its own results
        truth = ids[np.argsort(-sims, kind="stable")[:10]]
        found = index.search(x[r : r + 1], 11)[1][0]
        hits += len(np.intersect1d(truth, found[found != ids[r]][:10]))
    return hits / (10 * len(rows))


def test_measure_recall_is_leave_one_out_recall_against_brute_force() -> None:
    ds = SyntheticDataset(DIM, 0, 2000, 0, metric="IP", seed=1338)
    x = np.ascontiguousarray(ds.get_database() / np.linalg.norm(ds.get_database(), axis=1, keepdims=True))
    x = x.astype(np.float32)
    ids = np.arange(2000, dtype=np.int64) * 3 + 5  # ids, not positions
    index = new_index("ivfpq", DIM, x)
    index.add_with_ids(x, ids)
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = 1  # a deliberately narrow search: recall well under 1
    narrow, queries = measure_recall(index, x, ids)
    assert queries == 200
    rows = np.sort(np.random.default_rng(0).choice(2000, 200, replace=False))
    assert narrow == pytest.approx(_recall_by_hand(index, x, ids, rows))
    ivf.nprobe = ivf.nlist
    wide, _ = measure_recall(index, x, ids)
    assert narrow < wide <= 1.0
    flat = new_index("flat", DIM)
    flat.add_with_ids(x, ids)
    assert measure_recall(flat, x, ids) == (1.0, 200)
    assert measure_recall(flat, x[:10], ids[:10]) == (1.0, 0)  # k vectors or fewer: nothing to measure


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf", "ivfpq"])
def test_each_build_records_its_recall_in_the_manifest(tmp_path, index_type) -> None:
    rng = np.random.default_rng(0)
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA, index_type=index_type) as store:
        store.add(frame_rows(1500), unit(rng, 1500))
        first = store.manifest()
        store.add(frame_rows(300, start=1500), unit(rng, 300))  # an add measures the grown index
        second = store.manifest()
    assert (first["generation"], second["generation"]) == (1, 2)
    if index_type == "flat":
        assert first["recall_at_10"] == second["recall_at_10"] == 1.0 and second["recall_queries"] == 0
    else:
        assert first["recall_queries"] == second["recall_queries"] == 200
        assert 0.5 < first["recall_at_10"] <= 1.0 and 0.5 < second["recall_at_10"] <= 1.0


def test_a_writer_completing_an_old_manifest_keeps_the_recall(tmp_path) -> None:
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA, index_type="hnsw") as store:
        store.add(frame_rows(300), unit(np.random.default_rng(0), 300))
        recall = store.manifest()["recall_at_10"]
    manifest_file = tmp_path / "idx" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["index_edge_sha256"]  # as written before opens checked the file's ends: a writer rewrites it
    manifest_file.write_text(json.dumps(manifest))
    with Store.open(tmp_path / "idx", readonly=False) as writer:
        rewritten = writer.manifest()
        assert writer.verify() == []
    assert "index_edge_sha256" in rewritten and rewritten["recall_at_10"] == recall


def test_index_info_prints_the_recall(runner, tmp_path) -> None:
    with Store.create(tmp_path / "hnsw", dim=DIM, checkpoint_sha256=SHA, index_type="hnsw") as store:
        store.add(frame_rows(300), unit(np.random.default_rng(0), 300))
        recall = store.manifest()["recall_at_10"]
    with Store.create(tmp_path / "flat", dim=DIM, checkpoint_sha256=SHA) as store:
        store.add(frame_rows(30), unit(np.random.default_rng(0), 30))
    Store.create(tmp_path / "empty", dim=DIM, checkpoint_sha256=SHA).close()
    result = runner.invoke(main, ["info", "--index", str(tmp_path / "hnsw")])
    assert result.exit_code == 0, result.output
    assert f"recall@10:  {recall:.3f} against exact search, 200 held-out queries" in result.output
    result = runner.invoke(main, ["info", "--index", str(tmp_path / "flat")])
    assert "recall@10:  1.000 (exact search)" in result.output
    result = runner.invoke(main, ["info", "--index", str(tmp_path / "empty")])
    assert "recall@10:  not measured" in result.output


def test_index_type_reaches_the_build_as_named(runner, monkeypatch, tmp_path) -> None:
    """`--index-type ivf` asks for the re-scored IVF-HNSW-SQ8 index, `ivfpq` for the product-quantised one."""
    asked = {}

    def build_index(roots, checkpoint, out, **options):
        asked.update(options)
        return SimpleNamespace(index_dir=out, added=0, skipped=[], already_indexed=0, seconds=1.0, frames_per_s=0.0)

    monkeypatch.setattr("indexer.build.build_index", build_index)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"")
    for name, expected in (("ivf", "ivf"), ("ivfpq", "ivfpq"), ("hnsw", "hnsw")):
        args = ["build", str(tmp_path), "--out", str(tmp_path / name), "--checkpoint", str(checkpoint)]
        result = runner.invoke(main, [*args, "--index-type", name])
        assert result.exit_code == 0, result.output
        assert asked["index_type"] == expected
