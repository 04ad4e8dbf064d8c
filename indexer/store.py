"""The pose index on disk: the one place that opens its FAISS file and its SQLite database, and keeps them agreeing.

An index dir holds ``meta.sqlite`` (the truth: frames, identities, videos, builds, collection roots and the live
generation),
``index.<generation>.faiss`` (the vectors; FAISS ids are the frame rows' primary keys), ``manifest.json`` (a
human-readable copy of the database's summary) and ``write.lock`` (held by the one writer).

Commit protocol of a build (a crash or kill -9 at any point leaves the previous index queryable and consistent):

1. write the new generation to a file nobody reads yet (``faiss.write_index`` truncates in place, so never the live
   file), fsync it and the folder, take its sha256 and its `FileCheck` (size, sha256 of both ends);
2. ONE database transaction inserts the build's frame rows and points `IndexState` at the new file and its sha256:
   this commit is the commit of the build (``synchronous=FULL``, WAL);
3. replace ``manifest.json`` (which carries the `FileCheck`) atomically (`model.atomic_write`: temp file, fsync,
   `os.replace`, fsync the folder);
4. remove older generation files. Leftovers of a crash (unpublished generations, stale manifest, `running` builds)
   are cleaned by the next writer that opens the index.

Choices made:

- Cosine similarity over L2-normalised vectors; which FAISS index and how it is built is `indexer.faiss_index`.
- An open checks the live file before `read_index` parses a byte of it, at a cost that does not grow with the index:
  its size and the sha256 of its first and last `EDGE_BYTES` (1 MiB), which the commit records in ``manifest.json``
  beside the whole file's sha256 (`FileCheck`; the manifest's values are used only when its ``index_sha256`` is the
  database's, so they belong to the live generation). At 1M 64-d codes that is 2 MiB read instead of 257 MB
  (`benchmarks/open_cost.py`). The whole file's sha256 is taken at commit and checked by `verify` (`index verify`).
  An index whose manifest does not record the check (written before it existed, or a manifest lagging a commit
  after a crash) is opened as before, by the whole file's sha256: old indexes keep their protection, at the old
  cost, until the next writer opens them and completes the manifest. After `read_index`, the index's count and
  id-map length must equal the recorded count.
- What an open catches: a truncated or extended file, a file replaced by another, damage to FAISS's headers (the
  index type, dim, count, vector lengths of small indexes) and to the last MiB (the id map's end). What only
  `index verify` catches: a byte changed inside the middle of a large file, i.e. inside the stored vectors or the
  id map (sizes changed there make `read_index` raise, which is reported as the same `DataError`). That is
  acceptable for flat indexes, where the middle is data: FAISS reads it without crashing, and the damage shows as
  wrong scores or ids (`tests/indexer/test_open_check.py` flips such a byte). For HNSW, a neighbour id changed in
  the middle may point outside the graph and crash a search; `index verify` after a disk or copy incident is the
  remedy there. Readers memory-map flat and HNSW indexes (`IO_FLAG_MMAP_IFC`) when this FAISS has it.
- Search runs a flat index on the GPU when `faiss.get_num_gpus() > 0` (same results); HNSW and IVF-PQ stay on the
  CPU (HNSW has no GPU version; GPU IVF-PQ limits its code sizes).
- `-1` ids ("no result") are dropped per query row and refused by `get`, so they never reach a row lookup.
- Readers take no lock and write nothing: no migration, no pragma stored in the file (`query_only`), so every file
  of a cleanly closed index keeps its bytes and mtime under any number of queries. SQLite's own `-wal`/`-shm`
  files come and go beside the database while a reader is open; after a crashed writer, the last connection to
  close (reader or not) folds the leftover `-wal` into `meta.sqlite` (same rows, other bytes).
- Only a writer migrates the schema (`migrate`, and `open(readonly=False)`), under `write.lock`.
- A reader follows the newest committed generation: `search`, `vectors` and `info` first check the state (one
  small query) and load a newer FAISS file when there is one, so frames listed from the rows are always in the
  vectors searched; a generation file removed under a reader that is opening it is followed to the newer one.
  Rows only grow between generations, so rows read after a search hold every id it returned.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, func, insert, select
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session

from indexer.faiss_index import (
    AUTO_MEMORY_BUDGET,
    HNSW_EF_SEARCH,
    INDEX_TYPES,
    new_index,
    resolve_index_type,
    search_index,
    tune_search,
    unit_vectors,
)
from indexer.frame_paths import resolve_stored
from indexer.schema import Build, Frame, Identity, IndexState, Root, Video
from model import __version__
from model.atomic_write import atomic_file, atomic_folder, fsync_dir, fsync_file
from model.checkpoint import file_sha256
from model.data.errors import DataError

DATABASE = "meta.sqlite"
MANIFEST = "manifest.json"
LOCK = "write.lock"
FORMAT = "posedex.index/1"
METRIC = "cosine"
ROW_COLUMNS = ("path", "identity", "video", "frame")  # required in `add`'s rows
OPTIONAL_COLUMNS = ("time_s", "width", "height")
_CHUNK = 500  # ids per `IN (...)` query, well under SQLite's variable limit
_FOLLOW_ATTEMPTS = 5  # generations a reader follows while opening before it reports a missing file
EDGE_BYTES = 1 << 20  # an open hashes this many bytes at each end of the FAISS file (recorded with the digest)


@dataclass(frozen=True)
class FileCheck:
    """What an open checks of a FAISS file: its size and the sha256 of its first and last `edge_bytes`.

    The digest covers the size too, and reads each byte once (a file under 2 x `edge_bytes` is hashed whole).
    """

    size: int
    edge_bytes: int
    edge_sha256: str

    @classmethod
    def of(cls, path: Path, edge_bytes: int | None = None) -> FileCheck:
        edge_bytes = EDGE_BYTES if edge_bytes is None else edge_bytes
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            digest = hashlib.sha256(size.to_bytes(8, "little"))
            digest.update(file.read(min(size, edge_bytes)))  # the head: [0, edge_bytes)
            if size > edge_bytes:  # the tail: [max(edge_bytes, size - edge_bytes), size)
                file.seek(max(edge_bytes, size - edge_bytes))
                digest.update(file.read())
        return cls(size=size, edge_bytes=edge_bytes, edge_sha256=digest.hexdigest())

    @classmethod
    def recorded(cls, manifest: Mapping, index_sha256: str) -> FileCheck | None:
        """The check `manifest` records for the generation whose sha256 is `index_sha256`; None when it has none."""
        try:
            if manifest.get("index_sha256") != index_sha256:
                return None  # a manifest lagging the database's commit describes another generation
            return cls(size=int(manifest["index_bytes"]), edge_bytes=int(manifest["index_edge_bytes"]),
                       edge_sha256=str(manifest["index_edge_sha256"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # written before posedex recorded it (or unreadable): open by the whole file's sha256


def migrations_dir() -> Path:
    """The Alembic scripts, found beside this package (never relative to the working directory)."""
    return Path(__file__).resolve().with_name("migrations")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC: see schema.py


def _engine(db: Path, *, readonly: bool) -> Engine:
    engine = create_engine(f"sqlite:///{db}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # every connection: foreign keys; a writer's: WAL, durable
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if readonly:  # a reader sets nothing that is stored in the file: the journal mode is the writer's to choose
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # the commit is the build's commit point: survive power loss
        cursor.close()

    return engine


def head_revision() -> str:
    """The newest schema revision this posedex knows (the last of `indexer/migrations/versions`)."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def schema_revision(db: Path) -> str | None:
    """The schema revision the database at `db` is at (None: no schema yet), read without writing a byte."""
    engine = _engine(db, readonly=True)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DatabaseError as err:
        raise DataError(db, f"not a readable SQLite database ({err.orig})") from None
    finally:
        engine.dispose()


def require_head(db: Path) -> None:
    """A `DataError` unless `db` is at this posedex's schema: what a reader checks, since it may not migrate.

    Readers hold no lock, so a migration under them could change tables mid-query; only a writer (`index migrate`,
    or `index add`, which migrate under `write.lock`) brings an older index up to date.
    """
    current, head = schema_revision(db), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current in known:
        raise DataError(db, f"schema revision {current} is older than this posedex's {head}: "
                            f"run `index migrate --index {db.parent}`")
    raise DataError(db, f"schema revision {current} unknown to posedex {__version__}; upgrade posedex")


def upgrade_to_head(db: Path) -> str | None:
    """Bring the database at `db` to the newest schema revision (a no-op when it is there already).

    Returns the revision it was at. The caller holds `write.lock` (or owns a folder nobody else sees yet).
    """
    config = _alembic_config()
    head = head_revision()
    engine = _engine(db, readonly=False)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current != head:
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        return current
    except DatabaseError as err:
        raise DataError(db, f"not a readable SQLite database ({err.orig})") from None
    except CommandError as err:
        raise DataError(db, f"schema revision unknown to posedex {__version__} ({err}); upgrade posedex") from None
    finally:
        engine.dispose()


def migrate(path: str | Path) -> tuple[str | None, str]:
    """Bring the index at `path` to this posedex's schema under `write.lock`; returns (revision before, after).

    The one way an index made by an older posedex becomes readable again (`index migrate`): readers never migrate.
    """
    path = Path(path)
    require_index_folder(path)
    db = path / DATABASE
    if not db.is_file():
        raise DataError(db, "missing: the index is incomplete")
    lock_fd = _lock(path)
    try:
        return upgrade_to_head(db), head_revision()
    finally:
        os.close(lock_fd)


def _write_generation(index: faiss.Index, path: Path) -> tuple[str, FileCheck]:
    """Write `index` to a new file, make it durable, return its sha256 and what an open will check of it."""
    faiss.write_index(index, str(path))
    fsync_file(path)
    fsync_dir(path.parent)
    return file_sha256(path), FileCheck.of(path)


def _write_json_atomic(data: dict, path: Path) -> None:
    with atomic_file(path) as tmp, open(tmp, "w") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")


def require_index_folder(path: Path) -> None:
    """A `DataError` unless `path` is a folder that holds an index, sound or not.

    This is the line between bad input (no index there: the user named the wrong folder) and a damaged index (what
    `Store.verify` reports).
    """
    if not path.is_dir():
        raise DataError(path, "not a folder" if path.exists() else "no such index folder")
    if not (path / DATABASE).exists() and not (path / MANIFEST).exists():
        raise DataError(path, f"not a posedex index (no {DATABASE}, no {MANIFEST})")


class Store:
    """A pose index dir, opened for reading (many processes) or writing (one process, `write.lock`).

    Use `Store.create` / `Store.open`, and `close()` (or a ``with`` block) when done.
    """

    def __init__(self, path: Path, engine: Engine, *, readonly: bool, lock_fd: int | None) -> None:
        self.path = path
        self.readonly = readonly
        self._engine = engine
        self._lock_fd = lock_fd
        self._gpu: tuple[object, faiss.Index, np.ndarray] | None = None
        tune_search()
        self._state: IndexState
        self._index: faiss.IndexIDMap2 | None = None
        self._check: FileCheck  # of the live file, as read when it was opened
        self._follow(self._read_state())

    # ---- opening and closing -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, *, dim: int, checkpoint_sha256: str, index_type: str = "flat") -> Store:
        """A new, empty index at `path` (absent or an empty folder), opened for writing.

        It is assembled in a hidden sibling folder and renamed into place: a crash leaves no half-made index.
        """
        path = Path(path)
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; choose from {INDEX_TYPES}")
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise DataError(path, "already exists and is not an empty folder")
        with atomic_folder(path, replace=False) as tmp:
            upgrade_to_head(tmp / DATABASE)
            placeholder = "flat" if index_type in ("auto", "ivfpq") else index_type  # the real one: at first build
            index_file = "index.0.faiss"
            sha, check = _write_generation(new_index(placeholder, dim), tmp / index_file)
            engine = _engine(tmp / DATABASE, readonly=False)
            try:
                with Session(engine, expire_on_commit=False) as session, session.begin():
                    state = IndexState(id=1, dim=dim, metric=METRIC, index_type=index_type,
                                       checkpoint_sha256=checkpoint_sha256, created_at=_now(), generation=0,
                                       index_file=index_file, index_sha256=sha, num_vectors=0, live_build_id=None)
                    session.add(state)
                _write_json_atomic(_manifest(state, check), tmp / MANIFEST)
            finally:
                engine.dispose()
        return cls.open(path, readonly=False)

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = True) -> Store:
        """The index at `path`. A folder that is not a sound index is a `DataError`.

        A writer (`write.lock` held) upgrades the schema to head first; a reader changes nothing on disk, and an
        index at an older schema is a `DataError` that says to run `index migrate`.
        """
        path = Path(path)
        require_index_folder(path)
        db, manifest = path / DATABASE, path / MANIFEST
        for required in (db, manifest):
            if not required.is_file():
                raise DataError(required, "missing: the index is incomplete")
        lock_fd = None if readonly else _lock(path)
        try:
            if readonly:
                require_head(db)
            else:
                upgrade_to_head(db)
            engine = _engine(db, readonly=readonly)
            try:
                store = cls(path, engine, readonly=readonly, lock_fd=lock_fd)
            except BaseException:
                engine.dispose()
                raise
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        if not readonly:
            store._recover()
        return store

    def close(self) -> None:
        self._engine.dispose()
        self._index = None
        self._gpu = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- what it is ----------------------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._state.dim

    @property
    def index_type(self) -> str:
        return self._state.index_type

    @property
    def checkpoint_sha256(self) -> str:
        return self._state.checkpoint_sha256

    def __len__(self) -> int:
        return self._state.num_vectors

    def info(self) -> dict:
        """What a person asks of an index: counts, dim, metric, type, checkpoint, generation, size on disk.

        The newest committed generation, its state and counts read in one statement (one snapshot), so a commit
        in between cannot pair one generation's frame count with another's vector count.
        """
        self._refresh()
        names = ("frames", "identities", "videos", "builds")
        counts_of = [select(func.count()).select_from(table).scalar_subquery().label(name)
                     for name, table in zip(names, (Frame, Identity, Video, Build))]
        with Session(self._engine) as session:
            s, *numbers = session.execute(select(IndexState, *counts_of).where(IndexState.id == 1)).one()
        counts = dict(zip(names, numbers))
        return {"path": str(self.path), "dim": s.dim, "metric": s.metric, "index_type": s.index_type,
                "checkpoint_sha256": s.checkpoint_sha256, "count": s.num_vectors,
                "num_frames": counts["frames"], "num_identities": counts["identities"],
                "num_videos": counts["videos"], "num_builds": counts["builds"], "generation": s.generation,
                "index_file": s.index_file, "created": s.created_at.isoformat() + "Z",
                "size_bytes": sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())}

    # ---- reading -------------------------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The `k` most cosine-similar frames to each query (Q, dim): per query, scores (descending) and frame ids.

        Rows hold fewer than `k` hits when the index holds fewer: FAISS's `-1` "no result" ids are dropped here.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self._refresh()
        q = unit_vectors(queries, self.dim)
        if len(self) == 0:
            return [np.empty(0, np.float32)] * len(q), [np.empty(0, np.int64)] * len(q)
        k = min(k, len(self))
        scores, ids = self._search(q, k)
        keep = ids >= 0
        return [s[m] for s, m in zip(scores, keep)], [i[m] for i, m in zip(ids, keep)]

    def get(self, ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Frame metadata for `ids`, in their order: id, path, identity, video, frame, time_s, width, height."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if (ids < 0).any():
            raise ValueError("negative id: FAISS's -1 means 'no result' and must be dropped before get()")
        unique = np.unique(ids)
        columns = [Frame.id, Frame.path, Identity.name.label("identity"), Video.name.label("video"), Frame.frame,
                   Frame.time_s, Frame.width, Frame.height]
        found = []
        with Session(self._engine) as session:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start:start + _CHUNK].tolist()
                query = (select(*columns).join(Identity, Frame.identity_id == Identity.id)
                         .join(Video, Frame.video_id == Video.id).where(Frame.id.in_(chunk)))
                found.extend(session.execute(query).all())
        table = pd.DataFrame(found, columns=[c.key for c in columns]).set_index("id")
        missing = np.setdiff1d(unique, table.index.to_numpy())
        if len(missing):
            raise KeyError(f"no frame rows for ids {missing[:10].tolist()}")
        return table.loc[ids].reset_index()

    def paths(self) -> set[str]:
        """Every stored frame path (relative to its collection root): what a build must not add again."""
        with Session(self._engine) as session:
            return set(session.scalars(select(Frame.path)))

    def find(self, paths: Sequence[str]) -> pd.DataFrame:
        """The indexed frames among `paths` (as stored: relative to the collection root): path, id, identity.

        Paths that are not in the index are simply absent from the result.
        """
        columns = [Frame.path, Frame.id, Identity.name.label("identity")]
        found = []
        with Session(self._engine) as session:
            for start in range(0, len(paths), _CHUNK):
                chunk = list(paths[start:start + _CHUNK])
                query = select(*columns).join(Identity, Frame.identity_id == Identity.id).where(Frame.path.in_(chunk))
                found.extend(session.execute(query).all())
        return pd.DataFrame(found, columns=[c.key for c in columns])

    def videos(self) -> pd.DataFrame:
        """Every indexed video and its frame count, sorted: identity, video, num_frames (for browsing and counts)."""
        query = (select(Identity.name.label("identity"), Video.name.label("video"),
                        func.count(Frame.id).label("num_frames"))
                 .join(Video, Video.identity_id == Identity.id).join(Frame, Frame.video_id == Video.id)
                 .group_by(Identity.name, Video.name).order_by(Identity.name, Video.name))
        with Session(self._engine) as session:
            found = session.execute(query).all()
        return pd.DataFrame(found, columns=["identity", "video", "num_frames"])

    def video_frames(self, identity: str, video: str) -> pd.DataFrame:
        """The frames of one video in frame order: id, path, frame, time_s (empty when the video is not indexed)."""
        columns = [Frame.id, Frame.path, Frame.frame, Frame.time_s]
        query = (select(*columns).join(Video, Frame.video_id == Video.id)
                 .join(Identity, Frame.identity_id == Identity.id)
                 .where(Identity.name == identity, Video.name == video).order_by(Frame.frame, Frame.id))
        with Session(self._engine) as session:
            found = session.execute(query).all()
        return pd.DataFrame(found, columns=[c.key for c in columns])

    def ids(self) -> np.ndarray:
        """Every frame id (= FAISS id), ascending."""
        with Session(self._engine) as session:
            return np.array(session.scalars(select(Frame.id).order_by(Frame.id)).all(), dtype=np.int64)

    def vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored unit pose codes of frames `ids`, in their order: (N, dim) float32.

        Read back from the FAISS index (exact for flat and HNSW; for IVF-PQ the quantised codes, which a direct
        map, built in memory on first use, makes reachable). An id the index does not hold is a `KeyError`.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        self._refresh()  # frames listed since this store opened are in the newest generation
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexIVF) and inner.direct_map.type == faiss.DirectMap.NoMap:
            inner.make_direct_map()  # memory only: the file on disk is untouched
        try:
            return self._index.reconstruct_batch(ids) if len(ids) else np.empty((0, self.dim), np.float32)
        except RuntimeError as err:  # FAISS reports an unknown id as an error from its C++ side
            raise KeyError(f"ids not in the index: {str(err).splitlines()[0]}") from None

    def manifest(self) -> dict:
        """The build's manifest as written beside the index (`manifest.json`): what a person checks first."""
        return json.loads((self.path / MANIFEST).read_text())

    def roots(self) -> dict[str, Path]:
        """The collection folders the index holds frames of, {prefix: absolute folder} (`indexer.frame_paths`)."""
        with Session(self._engine) as session:
            return {prefix: Path(path) for prefix, path in session.execute(select(Root.prefix, Root.path))}

    def frame_file(self, stored: str, roots: Mapping[str, Path] | None = None) -> tuple[Path, int]:
        """The file and frame number of the indexed frame stored as `stored`, inside the index's own roots.

        `roots` overrides the recorded ones (an index made before roots were recorded, or a collection that moved).
        A `DataError` names the stored path when no root holds it or it would lead outside its root.
        """
        return resolve_stored(stored, self.roots() if roots is None else roots)

    def verify(self) -> list[str]:
        """Every disagreement between the FAISS file, the rows and the manifest; an empty list means consistent."""
        problems = []
        self._refresh()
        s = self._state
        live = self.path / s.index_file
        if not live.is_file():
            return [f"{live}: the live FAISS file is missing"]
        if (sha := file_sha256(live)) != s.index_sha256:
            problems.append(f"{live}: sha256 {sha[:12]} differs from the database's {s.index_sha256[:12]}")
        with Session(self._engine) as session:
            row_ids = np.array(session.scalars(select(Frame.id).order_by(Frame.id)).all(), dtype=np.int64)
            live_build = session.get(Build, s.live_build_id) if s.live_build_id is not None else None
        faiss_ids = np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))
        if self._index.ntotal != len(row_ids) or s.num_vectors != len(row_ids):
            problems.append(f"counts differ: FAISS {self._index.ntotal}, frame rows {len(row_ids)}, "
                            f"recorded {s.num_vectors}")
        if len(faiss_ids) != len(row_ids) or not np.array_equal(faiss_ids, row_ids):
            only_faiss = np.setdiff1d(faiss_ids, row_ids)[:10].tolist()
            only_rows = np.setdiff1d(row_ids, faiss_ids)[:10].tolist()
            problems.append(f"id sets differ: in FAISS only {only_faiss}, in rows only {only_rows}")
        if self._index.d != s.dim:
            problems.append(f"FAISS dim {self._index.d} differs from the recorded dim {s.dim}")
        if live_build is not None and (live_build.status != "committed" or live_build.index_file != s.index_file):
            problems.append(f"build {live_build.id} made {s.index_file} live but reads {live_build.status}, "
                            f"{live_build.index_file}")
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError) as err:
            return [*problems, f"{self.path / MANIFEST}: unreadable ({err})"]
        expected = _manifest(s, FileCheck.of(live, self._check.edge_bytes))
        for key in ("checkpoint_sha256", "dim", "metric", "index_type", "count", "generation", "index_file",
                    "index_sha256", "index_bytes", "index_edge_sha256"):
            if key in ("index_bytes", "index_edge_sha256") and key not in manifest:
                continue  # a manifest written before opens checked size and ends: opens hash the whole file
            if manifest.get(key) != expected[key]:
                problems.append(f"{self.path / MANIFEST}: {key} is {manifest.get(key)!r}, database says "
                                f"{expected[key]!r}")
        return problems

    # ---- writing -------------------------------------------------------------------------------------------------

    def add(self, rows: pd.DataFrame, vectors: np.ndarray, *, skipped: Iterable[tuple[str, str]] = (),
            roots: Mapping[str, Path] | None = None) -> np.ndarray:
        """Add frames (one row per vector; columns `ROW_COLUMNS` and any of `OPTIONAL_COLUMNS`) as one build.

        Returns the new frames' ids (their FAISS ids), in row order. `skipped` lists (path, reason) pairs; `roots`
        {prefix: folder} the collection folders the rows' paths are relative to (`indexer.frame_paths`).
        """
        build = self.start_build(roots=roots)
        try:
            ids = build.add(rows, vectors)
            for path, reason in skipped:
                build.skip(path, reason)
            build.commit()
        except BaseException:
            build.abort()
            raise
        return ids

    def start_build(self, *, roots: Mapping[str, Path] | None = None,
                    memory_budget: int = AUTO_MEMORY_BUDGET) -> IndexBuild:
        """A build to stream batches into; nothing is visible until its `commit()`.

        `roots` {prefix: folder} are the collection folders its frames come from, recorded at commit.
        """
        self._require_writer()
        with Session(self._engine) as session, session.begin():
            build = Build(started_at=_now(), checkpoint_sha256=self.checkpoint_sha256, posedex_version=__version__,
                          status="running", num_added=0, num_skipped=0, skipped_json="[]")
            session.add(build)
            session.flush()
            build_id = build.id
            next_id = (session.scalar(select(func.max(Frame.id))) or 0) + 1
        return IndexBuild(self, build_id, next_id, memory_budget, roots or {})

    # ---- internals -----------------------------------------------------------------------------------------------

    def _require_writer(self) -> None:
        if self.readonly:
            raise DataError(self.path, "opened read-only: open it with readonly=False to write")

    def _read_state(self) -> IndexState:
        try:
            with Session(self._engine) as session:
                state = session.get(IndexState, 1)
        except DatabaseError as err:
            raise DataError(self.path / DATABASE, f"cannot read the index state ({err.orig})") from None
        if state is None:
            raise DataError(self.path / DATABASE, "holds no index state: not a complete posedex index")
        return state

    def _refresh(self) -> None:
        """Follow a generation another process committed since this store was opened (one small query if none)."""
        state = self._read_state()
        if state.generation != self._state.generation:
            self._follow(state)

    def _follow(self, state: IndexState) -> None:
        """Make `state`'s generation this store's view; a reader whose file was just replaced follows the newer one.

        Between a reader's reading the state and opening its file, a writer may commit the next generation and remove
        this one (step 4 of the commit protocol); the state then names a newer file, which is read instead.
        """
        for attempt in range(_FOLLOW_ATTEMPTS):
            try:
                index, check = self._read_live(state, mmap=self.readonly)
                break
            except DataError:
                newer = self._read_state() if self.readonly else state
                if attempt == _FOLLOW_ATTEMPTS - 1 or newer.generation == state.generation:
                    raise
                state = newer
        self._state, self._index, self._check, self._gpu = state, index, check, None

    def _read_live(self, s: IndexState, *, mmap: bool) -> tuple[faiss.IndexIDMap2, FileCheck]:
        """The generation `s` names and its `FileCheck`, checked before FAISS parses a byte of it (module docstring).

        Size and both ends against the manifest's record when it has one for this generation, else the whole
        file's sha256 against the database's.
        """
        live = self.path / s.index_file
        if not live.is_file():
            raise DataError(live, "missing: the live FAISS generation file is gone")
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        recorded = FileCheck.recorded(manifest, s.index_sha256)
        if recorded is None:
            if file_sha256(live) != s.index_sha256:
                raise DataError(live, "sha256 does not match the database's record: corrupt or replaced FAISS file")
            check = FileCheck.of(live)
        else:
            check = FileCheck.of(live, recorded.edge_bytes)
            if check.size != recorded.size:
                raise DataError(live, f"size {check.size} bytes does not match the recorded {recorded.size}: "
                                      "truncated, corrupt or replaced FAISS file")
            if check.edge_sha256 != recorded.edge_sha256:
                raise DataError(live, f"sha256 of its first and last {recorded.edge_bytes} bytes does not match the "
                                      "recorded one: corrupt or replaced FAISS file")
        flags = 0
        if mmap and s.index_type in ("flat", "hnsw") and hasattr(faiss, "IO_FLAG_MMAP_IFC"):
            flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
        try:
            index = faiss.read_index(str(live), flags)
        except RuntimeError as err:
            raise DataError(live, f"FAISS cannot read it ({str(err).splitlines()[0]})") from None
        if not isinstance(index, faiss.IndexIDMap2) or index.d != s.dim:
            raise DataError(live, f"not an id-mapped index of dim {s.dim}")
        if index.ntotal != s.num_vectors or index.id_map.size() != index.ntotal:
            raise DataError(live, f"holds {index.ntotal} vectors and {index.id_map.size()} ids, the database records "
                                  f"{s.num_vectors}")
        return index, check

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexFlat) and faiss.get_num_gpus() > 0:
            if self._gpu is None:
                resources = faiss.StandardGpuResources()
                gpu = faiss.index_cpu_to_gpu(resources, 0, inner)
                self._gpu = (resources, gpu, faiss.vector_to_array(self._index.id_map).astype(np.int64))
            _, gpu, id_map = self._gpu
            scores, positions = gpu.search(q, k)
            return scores, np.where(positions >= 0, id_map[np.maximum(positions, 0)], -1)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
        return search_index(self._index, q, k)

    def _publish(self, index: faiss.IndexIDMap2, index_type: str, build_id: int, rows: pd.DataFrame,
                 ids: np.ndarray, skipped: list[dict], roots: Mapping[str, Path]) -> None:
        """Steps 1-4 of the commit protocol (module docstring) for a finished build."""
        s = self._state
        generation = s.generation + 1
        index_file = f"index.{generation}.faiss"
        sha, check = _write_generation(index, self.path / index_file)
        try:
            with Session(self._engine) as session, session.begin():
                self._insert_frames(session, rows, ids, build_id)
                self._record_roots(session, roots)
                state = session.get(IndexState, 1)
                state.generation, state.index_file, state.index_sha256 = generation, index_file, sha
                state.num_vectors, state.index_type, state.live_build_id = index.ntotal, index_type, build_id
                build = session.get(Build, build_id)
                build.status, build.finished_at, build.generation, build.index_file = ("committed", _now(),
                                                                                       generation, index_file)
                build.num_added, build.num_skipped, build.skipped_json = len(ids), len(skipped), json.dumps(skipped)
        except IntegrityError as err:
            (self.path / index_file).unlink(missing_ok=True)
            raise ValueError(f"frame rows clash with the index (a path already indexed?): {err.orig}") from None
        with Session(self._engine, expire_on_commit=False) as session:
            self._state = session.get(IndexState, 1)
        self._index, self._check, self._gpu = index, check, None
        _write_json_atomic(_manifest(self._state, check), self.path / MANIFEST)
        self._remove_stale_generations()

    @staticmethod
    def _insert_frames(session: Session, rows: pd.DataFrame, ids: np.ndarray, build_id: int) -> None:
        identities = {name: i for name, i in session.execute(select(Identity.name, Identity.id))}
        for name in sorted(set(rows["identity"]) - identities.keys()):
            identities[name] = session.scalar(insert(Identity).values(name=name).returning(Identity.id))
        videos = {(i, n): v for v, i, n in session.execute(select(Video.id, Video.identity_id, Video.name))}
        records = []
        for frame_id, row in zip(ids.tolist(), rows.to_dict("records")):
            key = (identities[row["identity"]], row["video"])
            if key not in videos:
                videos[key] = session.scalar(insert(Video).values(identity_id=key[0], name=key[1])
                                             .returning(Video.id))
            records.append({"id": frame_id, "path": row["path"], "identity_id": key[0], "video_id": videos[key],
                            "frame": row["frame"], "build_id": build_id,
                            **{c: row.get(c) for c in OPTIONAL_COLUMNS}})
        if records:
            session.execute(insert(Frame), records)

    @staticmethod
    def _record_roots(session: Session, roots: Mapping[str, Path]) -> None:
        recorded = {root.prefix: root for root in session.scalars(select(Root))}
        for prefix, folder in roots.items():
            if prefix in recorded:
                recorded[prefix].path = str(Path(folder).resolve())
            else:
                session.add(Root(prefix=prefix, path=str(Path(folder).resolve())))

    def _remove_stale_generations(self) -> None:
        for file in self.path.glob("index.*.faiss"):
            if file.name != self._state.index_file:
                file.unlink(missing_ok=True)

    def _recover(self) -> None:
        """A writer's first act: tidy what a crashed writer left (the index itself is already consistent)."""
        with Session(self._engine) as session, session.begin():
            for build in session.scalars(select(Build).where(Build.status == "running")):
                build.status, build.finished_at = "interrupted", _now()
        self._remove_stale_generations()
        for tmp in self.path.glob(f".{MANIFEST}.tmp-*"):
            tmp.unlink(missing_ok=True)
        try:
            manifest = json.loads((self.path / MANIFEST).read_text())
        except ValueError:
            manifest = {}
        expected = _manifest(self._state, self._check)  # completes a manifest written before opens checked ends
        if {k: manifest.get(k) for k in expected if k != "posedex_version"} != {
                k: v for k, v in expected.items() if k != "posedex_version"}:
            _write_json_atomic(expected, self.path / MANIFEST)


class IndexBuild:
    """One build in progress: batches go in with `add`, bad frames with `skip`; `commit` publishes them all at once.

    Use `Store.start_build`. In a ``with`` block, leaving normally commits and leaving by an exception aborts.
    """

    def __init__(self, store: Store, build_id: int, next_id: int, memory_budget: int,
                 roots: Mapping[str, Path]) -> None:
        self.store = store
        self.roots = dict(roots)
        self.build_id = build_id
        self._next_id = next_id
        self._memory_budget = memory_budget
        self._rows: list[pd.DataFrame] = []
        self._vectors: list[np.ndarray] = []
        self._skipped: list[dict] = []
        self._done = False

    def add(self, rows: pd.DataFrame, vectors: np.ndarray) -> np.ndarray:
        """Queue a batch; returns the ids its frames will have once committed."""
        self._require_open()
        missing = [c for c in ROW_COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"rows lack columns {missing}")
        x = unit_vectors(vectors, self.store.dim)
        if len(x) != len(rows):
            raise ValueError(f"{len(rows)} rows but {len(x)} vectors")
        ids = np.arange(self._next_id, self._next_id + len(x), dtype=np.int64)
        self._next_id += len(x)
        columns = [c for c in (*ROW_COLUMNS, *OPTIONAL_COLUMNS) if c in rows.columns]
        self._rows.append(rows[columns].astype({"path": str, "identity": str, "video": str, "frame": int}))
        self._vectors.append(x)
        return ids

    def skip(self, path: str, reason: str) -> None:
        """Record a frame left out, and why (the build lists them; DESIGN.md, "Rules that hold everywhere")."""
        self._require_open()
        self._skipped.append({"path": str(path), "reason": reason})

    def commit(self) -> int:
        """Publish every queued frame atomically; returns how many were added."""
        self._require_open()
        store = self.store
        rows = pd.concat(self._rows, ignore_index=True) if self._rows else pd.DataFrame(columns=list(ROW_COLUMNS))
        for column in OPTIONAL_COLUMNS:
            if column not in rows.columns:
                rows[column] = None
        rows = rows.astype(object).where(rows.notna(), None)  # NaN -> NULL
        if rows["path"].duplicated().any():
            raise ValueError(f"paths repeated in one build: {rows['path'][rows['path'].duplicated()].tolist()[:5]}")
        x = np.concatenate(self._vectors) if self._vectors else np.empty((0, store.dim), np.float32)
        ids = np.arange(self._next_id - len(x), self._next_id, dtype=np.int64)
        if len(store) == 0:  # first vectors: choose (auto) and train (ivfpq) the real index type now
            index_type = resolve_index_type(store.index_type, len(x), store.dim, self._memory_budget)
            index = new_index(index_type, store.dim, x)
        else:
            index_type, index = store.index_type, faiss.clone_index(store._index)
        index.add_with_ids(x, ids)
        store._publish(index, index_type, self.build_id, rows, ids, self._skipped, self.roots)
        self._done = True
        return len(ids)

    def abort(self) -> None:
        """Drop the queued frames; the build is recorded as aborted."""
        if self._done:
            return
        self._done = True
        with Session(self.store._engine) as session, session.begin():
            build = session.get(Build, self.build_id)
            if build is not None and build.status == "running":
                build.status, build.finished_at = "aborted", _now()

    def _require_open(self) -> None:
        if self._done:
            raise RuntimeError("this build has already been committed or aborted")

    def __enter__(self) -> IndexBuild:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._done:
            self.commit()
        else:
            self.abort()


def _lock(path: Path) -> int:
    """Hold `write.lock` for this process: one writer per index at a time."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataError(path, "another process is writing this index") from None
    return fd


def _manifest(state: IndexState, check: FileCheck) -> dict:
    """The manifest of `state`, with `check` of its live FAISS file (what opens read instead of the whole file)."""
    return {"format": FORMAT, "posedex_version": __version__, "checkpoint_sha256": state.checkpoint_sha256,
            "dim": state.dim, "metric": state.metric, "index_type": state.index_type, "count": state.num_vectors,
            "created": state.created_at.isoformat() + "Z", "generation": state.generation,
            "index_file": state.index_file, "index_sha256": state.index_sha256, "index_bytes": check.size,
            "index_edge_bytes": check.edge_bytes, "index_edge_sha256": check.edge_sha256}
