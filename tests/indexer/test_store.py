"""The pose index store: round trips against exact search, atomic generations, bad index dirs, verify()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest
from faiss.contrib.datasets import SyntheticDataset
from sqlalchemy import delete
from sqlalchemy.orm import Session

from indexer.faiss_index import resolve_index_type
from indexer.metadata import Metadata, connect
from indexer.schema import Frame
from indexer.store import Store
from model.data.errors import DataError

DIM = 16
SHA = "c0" * 32
REPO = Path(__file__).resolve().parents[2]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def frame_rows(n: int, start: int = 0, num_identities: int = 3) -> pd.DataFrame:
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "path": [f"id{j % num_identities}/v{j % 2}/{j:05d}.jpg" for j in i],
            "identity": [f"id{j % num_identities}" for j in i],
            "video": [f"v{j % 2}" for j in i],
            "frame": i,
            "time_s": i / 25.0,
            "width": 64,
            "height": 64,
        }
    )


def brute_force(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ base.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.fixture
def filled(tmp_path):
    """A flat store holding 200 seeded unit vectors; yields (store, vectors, ids)."""
    x = unit(np.random.default_rng(0), 200)
    store = Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA)
    ids = store.add(frame_rows(200), x)
    yield store, x, ids
    store.close()


def test_create_add_search_get_round_trip_equals_brute_force(filled, tmp_path):
    store, x, ids = filled
    assert ids.tolist() == list(range(1, 201))
    queries = unit(np.random.default_rng(1), 5)
    scores, hits = store.search(queries, 10)
    want_scores, want_pos = brute_force(x, queries, 10)
    for row in range(5):
        np.testing.assert_array_equal(hits[row], ids[want_pos[row]])
        np.testing.assert_allclose(scores[row], want_scores[row], atol=1e-5)
    meta = store.get(hits[0])
    expected = frame_rows(200).iloc[want_pos[0]]
    assert meta["id"].tolist() == hits[0].tolist()
    assert meta["path"].tolist() == expected["path"].tolist()
    assert meta["identity"].tolist() == expected["identity"].tolist()
    assert meta["video"].tolist() == expected["video"].tolist()
    assert meta["frame"].tolist() == expected["frame"].tolist()
    np.testing.assert_allclose(meta["time_s"], expected["time_s"])
    assert store.verify() == []
    store.close()
    with Store.open(tmp_path / "idx") as reader:  # read-only, memory-mapped, same answers
        again_scores, again_hits = reader.search(queries, 10)
        np.testing.assert_array_equal(np.stack(again_hits), np.stack(hits))
        info = reader.info()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert (info["count"], info["num_frames"], info["num_identities"], info["num_videos"]) == (200, 200, 3, 6)
    assert (manifest["count"], manifest["dim"], manifest["metric"], manifest["checkpoint_sha256"]) == (
        200,
        DIM,
        "cosine",
        SHA,
    )
    assert info["size_bytes"] > 200 * DIM * 4


def test_minus_one_never_reaches_get(tmp_path, monkeypatch):
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA) as store:
        store.add(frame_rows(3), unit(np.random.default_rng(0), 3))
        monkeypatch.setattr(
            store, "_search", lambda q, k, id_filter: (np.ones((1, 5), np.float32), np.array([[2, -1, 1, -1, -1]]))
        )
        scores, hits = store.search(unit(np.random.default_rng(1), 1), 5)
        assert hits[0].tolist() == [2, 1] and len(scores[0]) == 2
        monkeypatch.undo()
        scores, hits = store.search(unit(np.random.default_rng(1), 2), 50)  # k larger than the count
        assert [h.size for h in hits] == [3, 3] and (np.stack(hits) > 0).all()
        assert store.get(hits[0])["id"].tolist() == hits[0].tolist()
        with pytest.raises(ValueError, match="-1"):
            store.get([1, -1])


def test_empty_store_searches_to_nothing(tmp_path):
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA, index_type="ivfpq") as store:
        scores, hits = store.search(unit(np.random.default_rng(0), 2), 5)
        assert [h.size for h in hits] == [0, 0]
        assert store.verify() == []


@pytest.mark.parametrize("index_type", ["hnsw", "ivf", "ivfpq"])
def test_approximate_indexes_recall_against_flat(tmp_path, index_type):
    ds = SyntheticDataset(DIM, 0, 3000, 100, metric="IP", seed=1338)
    base, queries = ds.get_database(), ds.get_queries()
    with (
        Store.create(tmp_path / "flat", dim=DIM, checkpoint_sha256=SHA) as flat,
        Store.create(tmp_path / index_type, dim=DIM, checkpoint_sha256=SHA, index_type=index_type) as approx,
    ):
        flat.add(frame_rows(len(base)), base)
        approx.add(frame_rows(len(base)), base)
        _, truth = flat.search(queries, 10)
        _, found = approx.search(queries, 10)
        assert approx.info()["index_type"] == index_type
        assert approx.verify() == []
    recall = np.mean([len(np.intersect1d(t, f)) / 10 for t, f in zip(truth, found)])
    assert recall >= 0.9, recall


def test_auto_resolves_by_size_and_budget(tmp_path):
    assert resolve_index_type("auto", 1000, 128) == "flat"
    assert resolve_index_type("auto", 10**6, 128, memory_budget=4 << 30) == "ivf"  # 0.5 GB fp32 + 0.14 GB codes
    assert resolve_index_type("auto", 10**6, 128, memory_budget=64 << 20) == "ivfpq"
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA, index_type="auto") as store:
        store.add(frame_rows(10), unit(np.random.default_rng(0), 10))
        assert store.index_type == "flat"


def test_second_add_makes_a_new_generation_and_removes_the_old(filled, tmp_path):
    store, x, _ = filled
    folder = tmp_path / "idx"
    assert sorted(p.name for p in folder.glob("index.*.faiss")) == ["index.1.faiss"]
    y = unit(np.random.default_rng(5), 50)
    with store.start_build() as build:  # streamed in two batches, skipped frames listed
        first = build.add(frame_rows(20, start=200), y[:20])
        second = build.add(frame_rows(30, start=220), y[20:])
        build.skip("id0/v0/bad.jpg", "not an image")
    assert first.tolist() + second.tolist() == list(range(201, 251))
    assert sorted(p.name for p in folder.glob("index.*.faiss")) == ["index.2.faiss"]
    assert store.info()["count"] == 250 and store.verify() == []
    _, hits = store.search(y[:3], 1)
    assert [h[0] for h in hits] == [201, 202, 203]
    assert json.loads((folder / "manifest.json").read_text())["index_file"] == "index.2.faiss"


def test_crash_before_the_database_commit_leaves_the_old_index(filled, tmp_path, monkeypatch):
    store, x, _ = filled
    queries = unit(np.random.default_rng(1), 4)
    before = store.search(queries, 5)[1]

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C after the new generation file is written, before the commit

    monkeypatch.setattr(Metadata, "_insert_frames", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        store.add(frame_rows(50, start=200), unit(np.random.default_rng(2), 50))
    assert (tmp_path / "idx" / "index.2.faiss").exists()  # written, never published
    store.close()
    with Store.open(tmp_path / "idx") as reader:
        assert reader.verify() == [] and len(reader) == 200
        np.testing.assert_array_equal(np.stack(reader.search(queries, 5)[1]), np.stack(before))
    with Store.open(tmp_path / "idx", readonly=False):  # the next writer tidies the leftover
        assert not (tmp_path / "idx" / "index.2.faiss").exists()


CHILD = """
import os, signal, sys
import numpy as np
sys.path.insert(0, {tests!r})
from indexer import generations
from indexer.metadata import Metadata
from indexer.store import Store
from test_store import frame_rows, unit
point = {point!r}
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "generation_written":
    original = generations.write_generation
    generations.write_generation = lambda *a: (original(*a), die())
elif point == "mid_transaction":
    original = Metadata._insert_frames
    Metadata._insert_frames = staticmethod(lambda *a: (original(*a), die()))
else:  # committed, manifest not yet replaced
    generations.write_manifest = die
store = Store.open({path!r}, readonly=False)
store.add(frame_rows(50, start=200), unit(np.random.default_rng(2), 50))
"""


@pytest.mark.parametrize("point", ["generation_written", "mid_transaction", "committed"])
def test_kill_9_at_any_point_leaves_a_queryable_consistent_index(filled, tmp_path, point):
    store, x, _ = filled
    store.close()
    code = textwrap.dedent(CHILD.format(tests=str(Path(__file__).parent), point=point, path=str(tmp_path / "idx")))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    expected = 250 if point == "committed" else 200
    with Store.open(tmp_path / "idx") as reader:
        assert len(reader) == expected
        problems = reader.verify()
        if point == "committed":  # the new index is live; only the manifest copy lags until a writer opens
            assert problems and all("manifest.json" in p for p in problems)
        else:
            assert problems == []
        _, hits = reader.search(x[:2], 1)
        assert [h[0] for h in hits] == [1, 2]
    with Store.open(tmp_path / "idx", readonly=False) as writer:
        assert writer.verify() == []
        assert writer.info()["num_builds"] == 2 and len(list((tmp_path / "idx").glob("index.*.faiss"))) == 1


def test_corrupt_faiss_file_is_a_data_error_before_faiss_reads_it(filled, tmp_path, monkeypatch):
    store, _, _ = filled
    store.close()
    live = tmp_path / "idx" / "index.1.faiss"
    live.write_bytes(os.urandom(4096))
    monkeypatch.setattr(faiss, "read_index", lambda *a: pytest.fail("read_index reached a corrupt file"))
    with pytest.raises(DataError, match="corrupt or replaced FAISS file") as err:
        Store.open(tmp_path / "idx")
    assert err.value.path == live


@pytest.mark.parametrize(
    "damage", ["not_a_folder", "empty_folder", "no_manifest", "no_database", "garbage_db", "no_faiss"]
)
def test_bad_index_dirs_are_data_errors(filled, tmp_path, damage):
    store, _, _ = filled
    store.close()
    folder = tmp_path / "idx"
    target = folder
    if damage == "not_a_folder":
        target = tmp_path / "file.txt"
        target.write_text("hello")
    elif damage == "empty_folder":
        target = tmp_path / "empty"
        target.mkdir()
    elif damage == "no_manifest":
        (folder / "manifest.json").unlink()
    elif damage == "no_database":
        (folder / "meta.sqlite").unlink()
    elif damage == "garbage_db":
        (folder / "meta.sqlite").write_bytes(b"this is not sqlite" * 100)
    else:
        (folder / "index.1.faiss").unlink()
    with pytest.raises(DataError) as err:
        Store.open(target)
    assert str(err.value).startswith(str(target))


def test_verify_reports_a_row_deleted_behind_its_back(filled):
    store, _, _ = filled
    assert store.verify() == []
    engine = connect(store.path / "meta.sqlite", readonly=False)  # another connection, not the store's
    with Session(engine) as session, session.begin():
        session.execute(delete(Frame).where(Frame.id == 17))
    engine.dispose()
    problems = store.verify()
    assert any("counts differ" in p for p in problems)
    assert any("in FAISS only [17]" in p for p in problems)


def test_readonly_refuses_writes_and_one_writer_at_a_time(filled, tmp_path):
    store, x, _ = filled
    with pytest.raises(DataError, match="another process is writing"):
        Store.open(tmp_path / "idx", readonly=False)
    with Store.open(tmp_path / "idx") as reader:
        with pytest.raises(DataError, match="read-only"):
            reader.add(frame_rows(1, start=500), x[:1])
        with pytest.raises(DataError, match="read-only"):
            reader.start_build()
        assert len(reader) == 200


def test_bad_input_to_add_is_refused_and_changes_nothing(filled):
    store, x, _ = filled
    with pytest.raises(ValueError, match="already indexed"):
        store.add(frame_rows(2), x[:2])  # the same paths again
    with pytest.raises(ValueError, match="rows but"):
        store.add(frame_rows(3, start=300), x[:2])
    with pytest.raises(ValueError, match="zero vector"):
        store.add(frame_rows(1, start=300), np.zeros((1, DIM), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        store.add(frame_rows(1, start=300), np.ones((1, DIM + 1), np.float32))
    assert len(store) == 200 and store.verify() == []


def test_find_returns_only_indexed_paths(filled):
    store, _, ids = filled
    rows = frame_rows(200)
    found = store.find([rows.path[7], "not/in/the/index.jpg", rows.path[150]])
    assert sorted(found["path"]) == sorted([rows.path[7], rows.path[150]])
    assert dict(zip(found["path"], found["id"])) == {rows.path[7]: ids[7], rows.path[150]: ids[150]}
    assert dict(zip(found["path"], found["identity"])) == {rows.path[7]: "id1", rows.path[150]: "id0"}
    assert store.find([]).empty


def test_browsing_tables_list_videos_and_their_frames_in_order(filled):
    store, _, ids = filled
    videos = store.videos()
    assert list(videos.columns) == ["identity", "video", "num_frames"]
    assert videos[["identity", "video"]].values.tolist() == [[f"id{i}", f"v{v}"] for i in range(3) for v in range(2)]
    assert videos["num_frames"].sum() == 200 and videos["num_frames"].min() > 0
    frames = store.video_frames("id1", "v1")
    expected = frame_rows(200).query("identity == 'id1' and video == 'v1'")
    assert frames["frame"].tolist() == expected["frame"].tolist()  # frame order
    assert frames["path"].tolist() == expected["path"].tolist()
    assert frames["id"].tolist() == ids[expected.index].tolist()
    assert store.video_frames("id1", "no such video").empty
    assert store.ids().tolist() == sorted(ids.tolist())
    assert store.manifest()["count"] == 200


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivf", "ivfpq"])
def test_vectors_reads_back_the_stored_codes(tmp_path, index_type):
    x = unit(np.random.default_rng(3), 1200)
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA, index_type=index_type) as store:
        ids = store.add(frame_rows(len(x)), x)
    with Store.open(tmp_path / "idx") as reader:  # read-only (memory-mapped where the type allows)
        pick = ids[[7, 0, 1199, 7]]
        got = reader.vectors(pick)
        assert got.shape == (4, DIM) and got.dtype == np.float32
        exact = index_type != "ivfpq"  # product quantisation stores an approximation of each code
        np.testing.assert_allclose(got, x[[7, 0, 1199, 7]], atol=1e-6 if exact else 0.15)
        assert reader.vectors([]).shape == (0, DIM)
        with pytest.raises(KeyError):
            reader.vectors([ids.max() + 1])
