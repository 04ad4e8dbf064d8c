"""What opening an index checks of its FAISS file (size and both ends) and what only `index verify` catches.

`EDGE_BYTES` is made small here (it is recorded in the manifest at commit), so a few thousand vectors have a
middle that no open reads, as a 1M-code index has with the real 1 MiB.
"""

from __future__ import annotations

import json
import sqlite3

import faiss
import numpy as np
import pytest

from indexer import generations
from indexer.store import Store
from model.data.errors import DataError
from tests.indexer.test_store import SHA, frame_rows, unit

DIM = 16
EDGE = 4096
N = 2000  # 2000 x 16 float32 + 2000 int64 ids: about 144 kB, well over 2 x EDGE


@pytest.fixture
def index_dir(tmp_path, monkeypatch):
    """A committed flat index of `N` vectors whose manifest records a 4 kB head/tail check; yields (dir, x)."""
    monkeypatch.setattr(generations, "EDGE_BYTES", EDGE)
    x = unit(np.random.default_rng(0), N, DIM)
    with Store.create(tmp_path / "idx", dim=DIM, checkpoint_sha256=SHA) as store:
        store.add(frame_rows(N), x)
    monkeypatch.undo()  # opens use what the manifest recorded, not the constant
    return tmp_path / "idx", x


def _live(folder):
    return folder / json.loads((folder / "manifest.json").read_text())["index_file"]


def _flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _no_read_index(monkeypatch):
    monkeypatch.setattr(faiss, "read_index", lambda *a: pytest.fail("read_index reached a damaged file"))


def test_manifest_records_size_and_edge_digest(index_dir):
    folder, _ = index_dir
    manifest = json.loads((folder / "manifest.json").read_text())
    live = _live(folder)
    assert manifest["index_bytes"] == live.stat().st_size > 2 * EDGE
    assert manifest["index_edge_bytes"] == EDGE
    assert manifest["index_edge_sha256"] == generations.FileCheck.of(live, EDGE).edge_sha256


def test_open_reads_only_the_ends(index_dir, monkeypatch):
    folder, _ = index_dir
    monkeypatch.setattr(generations, "file_sha256", lambda *a: pytest.fail("an open hashed the whole file"))
    with Store.open(folder) as store:
        assert len(store) == N


@pytest.mark.parametrize("damage", ["truncated", "extended", "header", "trailer"])
def test_damage_at_the_size_or_ends_is_one_data_error_before_read_index(index_dir, monkeypatch, damage):
    folder, _ = index_dir
    live = _live(folder)
    data = live.read_bytes()
    if damage == "truncated":
        live.write_bytes(data[:-8])
    elif damage == "extended":
        live.write_bytes(data + b"\0")
    else:
        _flip(live, 10 if damage == "header" else len(data) - 10)
    _no_read_index(monkeypatch)
    with pytest.raises(DataError, match="corrupt or replaced FAISS file") as err:
        Store.open(folder)
    assert err.value.path == live and "\n" not in str(err.value)
    reason = str(err.value).removeprefix(f"{live}: ")
    assert reason.startswith("size") == (damage in ("truncated", "extended"))


def test_a_middle_byte_is_caught_by_verify_and_faiss_reads_it_without_crashing(index_dir):
    folder, x = index_dir
    live = _live(folder)
    middle = live.stat().st_size // 2  # inside the stored vectors: 32 kB of header-free float32 either side
    _flip(live, middle)
    with Store.open(folder) as store:  # not caught on open: the documented limit
        problems = store.verify()
        _, ids = store.search(x[:5], 3)  # FAISS reads the damaged vector as data: no crash, at most a wrong score
    assert len(problems) == 1 and "sha256" in problems[0] and str(live) in problems[0]
    assert all(len(i) == 3 and set(i) <= set(range(1, N + 1)) for i in ids)


def test_index_verify_cli_reports_a_middle_byte(index_dir):
    from click.testing import CliRunner

    from indexer.cli import verify

    folder, _ = index_dir
    _flip(_live(folder), _live(folder).stat().st_size // 2)
    result = CliRunner().invoke(verify, ["--index", str(folder)])
    assert result.exit_code == 1 and "sha256" in result.output and "Traceback" not in result.output


def test_an_index_whose_manifest_predates_the_check_opens_by_the_whole_hash(index_dir, monkeypatch):
    folder, _ = index_dir
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for key in ("index_bytes", "index_edge_bytes", "index_edge_sha256"):
        del manifest[key]
    manifest_path.write_text(json.dumps(manifest))
    hashed = []
    real = generations.file_sha256
    monkeypatch.setattr(generations, "file_sha256", lambda path: hashed.append(path) or real(path))
    with Store.open(folder) as store:  # a reader: opens, verifies clean, writes nothing
        assert len(store) == N and store.verify() == []
    assert hashed and json.loads(manifest_path.read_text()) == manifest
    _flip(_live(folder), _live(folder).stat().st_size // 2)  # the old protection holds for old indexes
    with pytest.raises(DataError, match="sha256 does not match"):
        Store.open(folder)
    _flip(_live(folder), _live(folder).stat().st_size // 2)
    with Store.open(folder, readonly=False):  # the next writer completes the manifest
        pass
    assert "index_edge_sha256" in json.loads(manifest_path.read_text())


def test_a_count_disagreeing_with_the_database_is_a_data_error(index_dir):
    folder, _ = index_dir
    db = sqlite3.connect(folder / "meta.sqlite")
    with db:
        db.execute("UPDATE index_state SET num_vectors = num_vectors - 1")
    db.close()
    with pytest.raises(DataError, match="vectors"):
        Store.open(folder)


def test_a_generation_removed_between_the_check_and_the_read_is_followed(index_dir, monkeypatch):
    """A reader's generation file may exist when it looks and be gone when it reads it: a writer's commit removes
    the old file (step 4) at any moment. The reader must follow the newer generation, not fail with an OSError."""
    folder, x = index_dir
    old = _live(folder)
    kept = old.read_bytes()
    with Store.open(folder) as reader:
        stale = reader._state
        with Store.open(folder, readonly=False) as writer:
            writer.add(frame_rows(10, start=N), unit(np.random.default_rng(1), 10, DIM))
        assert not old.exists()  # the commit removed it
        old.write_bytes(kept)  # ...but the reader's existence check still sees it
        hash_file = generations.file_sha256

        def removed_while_reading(path):
            path.unlink(missing_ok=True)  # the writer's step 4, between the check and the read
            return hash_file(path)

        monkeypatch.setattr(generations, "file_sha256", removed_while_reading)
        state, index, _ = generations.follow(folder, reader._metadata, stale, readonly=True)
    assert state.generation == stale.generation + 1 and index.ntotal == N + 10
