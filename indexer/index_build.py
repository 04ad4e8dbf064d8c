"""One build of a pose index in progress: frames queued batch by batch, published at once or not at all.

`Store.start_build` makes one (and `Store.add` uses one for a single batch); `indexer.build` streams a collection
into one. It reaches the store only through its public methods: the live index's type, size and a copy of it, then
`Store.publish` (the commit protocol, `indexer.generations`) or `Store.abort_build`.

Choices made:

- Frame ids are given out when a batch is queued (`add` returns them), counting up from the largest id in the
  database when the build started; only one writer holds the store, so no one else gives out ids meanwhile.
- The first vectors of an index choose its real type (`auto`) and train it (`ivf`, `ivfpq`) at commit, over every queued
  vector; later builds add to a copy of the live index, so the live one is never changed in place.
- Before the commit the new index's recall@10 against exact search is measured (`measure_recall`, 200 stored
  vectors held out as queries; flat is exact and records 1.0 without measuring) and recorded in the manifest. The
  reference is every vector the index holds: this build's as given, earlier builds' as the live index stores
  them (exact for flat and HNSW; for IVF-PQ their decoded codes, so an add measures the search, not the
  quantisation of what was there).
- A path repeated within one build is a `ValueError` at commit; one already indexed is refused by the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
import pandas as pd

from indexer.faiss_index import measure_recall, new_index, resolve_index_type, unit_vectors
from indexer.generations import record_quality
from indexer.metadata import OPTIONAL_COLUMNS, ROW_COLUMNS

if TYPE_CHECKING:  # the store makes builds; a build only calls it back
    from indexer.store import Store


class IndexBuild:
    """One build in progress: batches go in with `add`, bad frames with `skip`; `commit` publishes them all at once.

    Use `Store.start_build`. In a ``with`` block, leaving normally commits and leaving by an exception aborts.
    """

    def __init__(
        self, store: Store, build_id: int, next_id: int, memory_budget: int, roots: Mapping[str, Path]
    ) -> None:
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
        if len(store) == 0:  # first vectors: choose (auto) and train (ivf, ivfpq) the real index type now
            index_type = resolve_index_type(store.index_type, len(x), store.dim, self._memory_budget)
            index = new_index(index_type, store.dim, x)
        else:
            index_type, index = store.index_type, store.clone_index()
        index.add_with_ids(x, ids)
        quality = self._quality(index, index_type, x, ids)
        store.publish(index, index_type, self.build_id, rows, ids, self._skipped, self.roots)
        record_quality(store.path, quality)
        self._done = True
        return len(ids)

    def _quality(self, index: faiss.IndexIDMap2, index_type: str, x: np.ndarray, ids: np.ndarray) -> dict:
        """The manifest's recall@10 of `index` (which now holds `x` with `ids` after the store's vectors)."""
        if index_type == "flat":
            return {"recall_at_10": 1.0, "recall_queries": 0}  # exact search by construction
        if len(self.store):
            old_ids = self.store.ids()
            x, ids = np.concatenate([self.store.vectors(old_ids), x]), np.concatenate([old_ids, ids])
        recall, queries = measure_recall(index, x, ids)
        return {"recall_at_10": round(recall, 4), "recall_queries": queries}

    def abort(self) -> None:
        """Drop the queued frames; the build is recorded as aborted."""
        if self._done:
            return
        self._done = True
        self.store.abort_build(self.build_id)

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
