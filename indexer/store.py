"""The pose index on disk: `Store`, the one object that opens an index dir's FAISS file and SQLite database together.

An index dir holds ``meta.sqlite`` (the truth: frames, identities, videos, builds, collection roots and the live
generation; `indexer.metadata`), ``index.<generation>.faiss`` (the vectors; FAISS ids are the frame rows' primary
keys), ``manifest.json`` (a human-readable copy of the database's summary; both `indexer.generations`, which also
holds the commit protocol of a build) and ``write.lock`` (held by the one writer; here). A `Store` composes an
open `Metadata` with the live generation loaded from it; builds (`indexer.index_build`) go through its public
methods.

Choices made:

- Cosine similarity over L2-normalised vectors; which FAISS index and how it is built is `indexer.faiss_index`.
- Search runs a flat index on the GPU when `faiss.get_num_gpus() > 0` (same results); HNSW and IVF-PQ stay on the
  CPU (HNSW has no GPU version; GPU IVF-PQ limits its code sizes).
- `-1` ids ("no result") are dropped per query row and refused by `get`, so they never reach a row lookup.
- Readers take no lock and write nothing: no migration, no pragma stored in the file (`query_only`), so every file
  of a cleanly closed index keeps its bytes and mtime under any number of queries. SQLite's own `-wal`/`-shm`
  files come and go beside the database while a reader is open; after a crashed writer, the last connection to
  close (reader or not) folds the leftover `-wal` into `meta.sqlite` (same rows, other bytes).
- Only a writer migrates the schema (`migrate`, and `open(readonly=False)`), under `write.lock`, and its first act
  is to tidy what a crashed writer left (`indexer.generations.recover`).
- A reader follows the newest committed generation: `search`, `vectors` and `info` first check the state (one
  small query) and load a newer FAISS file when there is one, so frames listed from the rows are always in the
  vectors searched (`indexer.generations.follow`). Rows only grow between generations, so rows read after a
  search hold every id it returned.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from indexer import generations
from indexer.faiss_index import (
    AUTO_MEMORY_BUDGET,
    HNSW_EF_SEARCH,
    INDEX_TYPES,
    IdFilter,
    new_index,
    search_index,
    tune_search,
    unit_vectors,
)
from indexer.frame_paths import resolve_stored
from indexer.generations import MANIFEST, generation_file, write_generation, write_manifest
from indexer.index_build import IndexBuild
from indexer.metadata import DATABASE, Metadata, head_revision, require_head, upgrade_to_head
from model.atomic_write import atomic_folder
from model.data.errors import DataError

LOCK = "write.lock"


def require_index_folder(path: Path) -> None:
    """A `DataError` unless `path` is a folder that holds an index, sound or not.

    This is the line between bad input (no index there: the user named the wrong folder) and a damaged index (what
    `Store.verify` reports).
    """
    if not path.is_dir():
        raise DataError(path, "not a folder" if path.exists() else "no such index folder")
    if not (path / DATABASE).exists() and not (path / MANIFEST).exists():
        raise DataError(path, f"not a posedex index (no {DATABASE}, no {MANIFEST})")


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


class Store:
    """A pose index dir, opened for reading (many processes) or writing (one process, `write.lock`).

    Use `Store.create` / `Store.open`, and `close()` (or a ``with`` block) when done.
    """

    def __init__(self, path: Path, metadata: Metadata, *, readonly: bool, lock_fd: int | None) -> None:
        self.path = path
        self.readonly = readonly
        self._metadata = metadata
        self._lock_fd = lock_fd
        self._gpu: tuple[object, faiss.Index, np.ndarray] | None = None  # a flat index's GPU copy, made on first use
        tune_search()
        self._state, self._index, self._check = generations.follow(path, metadata, metadata.state(), readonly=readonly)

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
            placeholder = (
                "flat" if index_type in ("auto", "ivf", "ivfpq") else index_type
            )  # the real one: at first build
            index_file = generation_file(0)
            sha, check = write_generation(new_index(placeholder, dim), tmp / index_file)
            metadata = Metadata(tmp / DATABASE, readonly=False)
            try:
                state = metadata.create_state(
                    dim=dim,
                    index_type=index_type,
                    checkpoint_sha256=checkpoint_sha256,
                    index_file=index_file,
                    index_sha256=sha,
                )
                write_manifest(tmp, state, check)
            finally:
                metadata.close()
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
            metadata = Metadata(db, readonly=readonly)
            try:
                store = cls(path, metadata, readonly=readonly, lock_fd=lock_fd)
            except BaseException:
                metadata.close()
                raise
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise
        if not readonly:
            generations.recover(path, metadata, store._state, store._check)
        return store

    def close(self) -> None:
        self._metadata.close()
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
        s, counts = self._metadata.snapshot()
        return {
            "path": str(self.path),
            "dim": s.dim,
            "metric": s.metric,
            "index_type": s.index_type,
            "checkpoint_sha256": s.checkpoint_sha256,
            "count": s.num_vectors,
            "num_frames": counts["frames"],
            "num_identities": counts["identities"],
            "num_videos": counts["videos"],
            "num_builds": counts["builds"],
            "generation": s.generation,
            "index_file": s.index_file,
            "created": s.created_at.isoformat() + "Z",
            "size_bytes": _folder_bytes(self.path),
        }

    # ---- reading -------------------------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, *, id_filter: IdFilter | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The `k` most cosine-similar frames to each query (Q, dim): per query, scores (descending) and frame ids.

        Rows hold fewer than `k` hits when the index (or what `id_filter` allows of it) holds fewer: FAISS's `-1`
        "no result" ids are dropped here.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self._refresh()
        q = unit_vectors(queries, self.dim)
        if len(self) == 0:
            return [np.empty(0, np.float32)] * len(q), [np.empty(0, np.int64)] * len(q)
        k = min(k, len(self))
        scores, ids = self._search(q, k, id_filter)
        keep = ids >= 0
        return [s[m] for s, m in zip(scores, keep)], [i[m] for i, m in zip(ids, keep)]

    def get(self, ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Frame metadata for `ids`, in their order: id, path, identity, video, frame, time_s, width, height.

        A negative id (FAISS's "no result") is a `ValueError`; an id without a frame row a `KeyError`.
        """
        return self._metadata.get(ids)

    def paths(self) -> set[str]:
        """Every stored frame path (relative to its collection root): what a build must not add again."""
        return self._metadata.paths()

    def find(self, paths: Sequence[str]) -> pd.DataFrame:
        """The indexed frames among `paths` (as stored: relative to the collection root): path, id, identity.

        Paths that are not in the index are simply absent from the result.
        """
        return self._metadata.find(paths)

    def videos(self) -> pd.DataFrame:
        """Every indexed video and its frame count, sorted: identity, video, num_frames (for browsing and counts)."""
        return self._metadata.videos()

    def video_frames(self, identity: str, video: str) -> pd.DataFrame:
        """The frames of one video in frame order: id, path, frame, time_s (empty when the video is not indexed)."""
        return self._metadata.video_frames(identity, video)

    def ids(self) -> np.ndarray:
        """Every frame id (= FAISS id), ascending."""
        return self._metadata.ids()

    def identity_ids(self, names: Iterable[str]) -> np.ndarray:
        """The frame ids of the identities `names`, ascending: what an `IdFilter` on identities names."""
        return self._metadata.identity_ids(names)

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
        return self._metadata.roots()

    def frame_file(self, stored: str, roots: Mapping[str, Path] | None = None) -> tuple[Path, int]:
        """The file and frame number of the indexed frame stored as `stored`, inside the index's own roots.

        `roots` overrides the recorded ones (an index made before roots were recorded, or a collection that moved).
        A `DataError` names the stored path when no root holds it or it would lead outside its root.
        """
        return resolve_stored(stored, self.roots() if roots is None else roots)

    def verify(self) -> list[str]:
        """Every disagreement between the FAISS file, the rows and the manifest; an empty list means consistent."""
        self._refresh()
        return generations.verify(self.path, self._metadata, self._state, self._index, self._check.edge_bytes)

    # ---- writing -------------------------------------------------------------------------------------------------

    def add(
        self,
        rows: pd.DataFrame,
        vectors: np.ndarray,
        *,
        skipped: Iterable[tuple[str, str]] = (),
        roots: Mapping[str, Path] | None = None,
    ) -> np.ndarray:
        """Add frames (one row per vector; columns `ROW_COLUMNS` and any of `OPTIONAL_COLUMNS` of
        `indexer.metadata`) as one build.

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

    def start_build(
        self, *, roots: Mapping[str, Path] | None = None, memory_budget: int = AUTO_MEMORY_BUDGET
    ) -> IndexBuild:
        """A build to stream batches into; nothing is visible until its `commit()`.

        `roots` {prefix: folder} are the collection folders its frames come from, recorded at commit.
        """
        self._require_writer()
        build_id, next_id = self._metadata.start_build(self.checkpoint_sha256)
        return IndexBuild(self, build_id, next_id, memory_budget, roots or {})

    def clone_index(self) -> faiss.IndexIDMap2:
        """A copy of the live generation's FAISS index, for a build to add its vectors to."""
        return faiss.clone_index(self._index)

    def publish(
        self,
        index: faiss.IndexIDMap2,
        index_type: str,
        build_id: int,
        rows: pd.DataFrame,
        ids: np.ndarray,
        skipped: list[dict],
        roots: Mapping[str, Path],
    ) -> None:
        """Make `index` the next generation, with build `build_id`'s frame `rows` (FAISS ids `ids`), `skipped`
        frames and `roots`: the commit protocol (`indexer.generations`). What `IndexBuild.commit` calls."""
        self._require_writer()
        self._state, self._check = generations.publish(
            self.path, self._metadata, self._state, index, index_type, build_id, rows, ids, skipped, roots
        )
        self._index, self._gpu = index, None

    def abort_build(self, build_id: int) -> None:
        """Record build `build_id` as aborted, unless it has already been committed or aborted."""
        self._metadata.abort_build(build_id)

    # ---- internals -----------------------------------------------------------------------------------------------

    def _require_writer(self) -> None:
        if self.readonly:
            raise DataError(self.path, "opened read-only: open it with readonly=False to write")

    def _refresh(self) -> None:
        """Follow a generation another process committed since this store was opened (one small query if none)."""
        state = self._metadata.state()
        if state.generation != self._state.generation:
            self._state, self._index, self._check = generations.follow(
                self.path, self._metadata, state, readonly=self.readonly
            )
            self._gpu = None

    def _search(self, q: np.ndarray, k: int, id_filter: IdFilter | None) -> tuple[np.ndarray, np.ndarray]:
        inner = faiss.downcast_index(self._index.index)
        # a filtered search stays on the CPU: FAISS's GPU flat index takes no ID selector
        if isinstance(inner, faiss.IndexFlat) and faiss.get_num_gpus() > 0 and id_filter is None:
            if self._gpu is None:
                resources = faiss.StandardGpuResources()
                gpu = faiss.index_cpu_to_gpu(resources, 0, inner)
                self._gpu = (resources, gpu, faiss.vector_to_array(self._index.id_map).astype(np.int64))
            _, gpu, id_map = self._gpu
            scores, positions = gpu.search(q, k)
            return scores, np.where(positions >= 0, id_map[np.maximum(positions, 0)], -1)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
        return search_index(self._index, q, k, id_filter)


def _folder_bytes(folder: Path) -> int:
    """The bytes of the files in `folder`; a file a writer's commit removes while they are counted counts 0."""
    total = 0
    for file in folder.iterdir():
        with suppress(FileNotFoundError):
            total += file.stat().st_size if file.is_file() else 0
    return total


def _lock(path: Path) -> int:
    """Hold `write.lock` for this process: one writer per index at a time."""
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataError(path, "another process is writing this index") from None
    return fd
