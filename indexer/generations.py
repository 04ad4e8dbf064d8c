"""The FAISS side of an index dir: generation files, ``manifest.json``, and the commit protocol that publishes them.

The vectors live in ``index.<generation>.faiss`` (FAISS ids are the frame rows' primary keys); the database
(`indexer.metadata`) names the live generation and its sha256; ``manifest.json`` is a human-readable copy of the
database's summary. Here a generation is written, published, checked on open, followed by readers, recovered
after a crash and verified.

Commit protocol of a build, `publish` (a crash or kill -9 at any point leaves the previous index queryable and
consistent):

1. write the new generation to a file nobody reads yet (``faiss.write_index`` truncates in place, so never the live
   file), fsync it and the folder, take its sha256 and its `FileCheck` (size, sha256 of both ends);
2. ONE database transaction inserts the build's frame rows and points `IndexState` at the new file and its sha256:
   this commit is the commit of the build (`Metadata.commit_build`; ``synchronous=FULL``, WAL);
3. replace ``manifest.json`` (which carries the `FileCheck`) atomically (`model.atomic_write`: temp file, fsync,
   `os.replace`, fsync the folder);
4. remove older generation files. Leftovers of a crash (unpublished generations, stale manifest, `running` builds)
   are cleaned by the next writer that opens the index (`recover`).

Choices made:

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
- ``manifest.json`` also records what the live index gives up against exact search (`QUALITY_KEYS`: recall@10
  and the number of held-out queries that measured it, `indexer.faiss_index.measure_recall`). It is measured
  before the commit and written by `record_quality` just after step 3 (the database does not keep it); a crash
  in between leaves a manifest without it, which `index info` reports as not measured.
- A reader follows the newest committed generation (`follow`): a generation file removed under a reader that is
  opening it (step 4 of another process's commit) is followed to the newer one the database then names.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from indexer.metadata import Metadata
from indexer.schema import IndexState
from model import __version__
from model.atomic_write import atomic_file, fsync_dir, fsync_file
from model.checkpoint import file_sha256
from model.data.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "posedex.index/1"
EDGE_BYTES = 1 << 20  # an open hashes this many bytes at each end of the FAISS file (recorded with the digest)
QUALITY_KEYS = ("recall_at_10", "recall_queries")  # manifest-only facts of the live generation
_FOLLOW_ATTEMPTS = 5  # generations a reader follows while opening before it reports a missing file


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
            return cls(
                size=int(manifest["index_bytes"]),
                edge_bytes=int(manifest["index_edge_bytes"]),
                edge_sha256=str(manifest["index_edge_sha256"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # written before posedex recorded it (or unreadable): open by the whole file's sha256


def generation_file(generation: int) -> str:
    """The file name of generation `generation`, inside the index dir."""
    return f"index.{generation}.faiss"


def write_generation(index: faiss.Index, path: Path) -> tuple[str, FileCheck]:
    """Write `index` to a new file, make it durable, return its sha256 and what an open will check of it."""
    faiss.write_index(index, str(path))
    fsync_file(path)
    fsync_dir(path.parent)
    return file_sha256(path), FileCheck.of(path)


def manifest_of(state: IndexState, check: FileCheck) -> dict:
    """The manifest of `state`, with `check` of its live FAISS file (what opens read instead of the whole file)."""
    return {
        "format": FORMAT,
        "posedex_version": __version__,
        "checkpoint_sha256": state.checkpoint_sha256,
        "dim": state.dim,
        "metric": state.metric,
        "index_type": state.index_type,
        "count": state.num_vectors,
        "created": state.created_at.isoformat() + "Z",
        "generation": state.generation,
        "index_file": state.index_file,
        "index_sha256": state.index_sha256,
        "index_bytes": check.size,
        "index_edge_bytes": check.edge_bytes,
        "index_edge_sha256": check.edge_sha256,
    }


def write_manifest(folder: Path, state: IndexState, check: FileCheck, quality: Mapping | None = None) -> None:
    """Replace ``manifest.json`` in `folder` atomically with the manifest of `state` and `check`, plus `quality`
    (`QUALITY_KEYS`) when given."""
    manifest = manifest_of(state, check) | {key: quality[key] for key in QUALITY_KEYS if key in (quality or {})}
    with atomic_file(folder / MANIFEST) as tmp, open(tmp, "w") as file:
        json.dump(manifest, file, indent=2, sort_keys=True)
        file.write("\n")


def record_quality(folder: Path, quality: Mapping) -> None:
    """Add `quality` (`QUALITY_KEYS`: recall@10, queries) to the manifest just written for the live generation."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest |= {key: quality[key] for key in QUALITY_KEYS}
    with atomic_file(folder / MANIFEST) as tmp, open(tmp, "w") as file:
        json.dump(manifest, file, indent=2, sort_keys=True)
        file.write("\n")


def read_generation(folder: Path, state: IndexState, *, mmap: bool) -> tuple[faiss.IndexIDMap2, FileCheck]:
    """The generation `state` names and its `FileCheck`, checked before FAISS parses a byte of it (module docstring).

    Size and both ends against the manifest's record when it has one for this generation, else the whole
    file's sha256 against the database's. `mmap`: memory-map the vectors, read-only, where FAISS can.
    """
    live = folder / state.index_file
    try:
        return _read_generation(folder, live, state, mmap=mmap)
    except FileNotFoundError:  # removed by a writer's commit after the state was read: `follow` reads the newer one
        raise DataError(live, "missing: the live FAISS generation file is gone") from None


def _read_generation(folder: Path, live: Path, state: IndexState, *, mmap: bool) -> tuple[faiss.IndexIDMap2, FileCheck]:
    """`read_generation`'s checks and read of `live`; a file gone at any step is a `FileNotFoundError`."""
    if not live.is_file():
        raise FileNotFoundError(live)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    recorded = FileCheck.recorded(manifest, state.index_sha256)
    if recorded is None:
        if file_sha256(live) != state.index_sha256:
            raise DataError(live, "sha256 does not match the database's record: corrupt or replaced FAISS file")
        check = FileCheck.of(live)
    else:
        check = FileCheck.of(live, recorded.edge_bytes)
        if check.size != recorded.size:
            raise DataError(
                live,
                f"size {check.size} bytes does not match the recorded {recorded.size}: "
                "truncated, corrupt or replaced FAISS file",
            )
        if check.edge_sha256 != recorded.edge_sha256:
            raise DataError(
                live,
                f"sha256 of its first and last {recorded.edge_bytes} bytes does not match the "
                "recorded one: corrupt or replaced FAISS file",
            )
    flags = 0
    if mmap and state.index_type in ("flat", "hnsw") and hasattr(faiss, "IO_FLAG_MMAP_IFC"):
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
    try:
        index = faiss.read_index(str(live), flags)
    except RuntimeError as err:
        raise DataError(live, f"FAISS cannot read it ({str(err).splitlines()[0]})") from None
    if not isinstance(index, faiss.IndexIDMap2) or index.d != state.dim:
        raise DataError(live, f"not an id-mapped index of dim {state.dim}")
    if index.ntotal != state.num_vectors or index.id_map.size() != index.ntotal:
        raise DataError(
            live,
            f"holds {index.ntotal} vectors and {index.id_map.size()} ids, the database records {state.num_vectors}",
        )
    return index, check


def follow(
    folder: Path, metadata: Metadata, state: IndexState, *, readonly: bool
) -> tuple[IndexState, faiss.IndexIDMap2, FileCheck]:
    """The generation `state` names, read; a reader whose file was just replaced follows the newer one.

    Between a reader's reading the state and opening its file, a writer may commit the next generation and remove
    this one (step 4); the database then names a newer file, which is read instead. A writer (not `readonly`)
    holds `write.lock`, so its state cannot move: its failure is reported at once.
    """
    attempt = 1
    while True:
        try:
            index, check = read_generation(folder, state, mmap=readonly)
            return state, index, check
        except DataError:
            newer = metadata.state() if readonly else state
            if attempt == _FOLLOW_ATTEMPTS or newer.generation == state.generation:
                raise
            state, attempt = newer, attempt + 1


def publish(
    folder: Path,
    metadata: Metadata,
    state: IndexState,
    index: faiss.IndexIDMap2,
    index_type: str,
    build_id: int,
    rows: pd.DataFrame,
    ids: np.ndarray,
    skipped: list[dict],
    roots: Mapping[str, Path],
) -> tuple[IndexState, FileCheck]:
    """Steps 1-4 of the commit protocol (module docstring): make `index` the generation after `state`'s, with the
    frame rows `rows` of build `build_id` (FAISS ids `ids`); returns the new state and the new file's check.

    A `ValueError` (rows clashing with the index) leaves the previous generation live and removes the new file.
    """
    generation = state.generation + 1
    index_file = generation_file(generation)
    sha, check = write_generation(index, folder / index_file)
    try:
        new_state = metadata.commit_build(
            build_id,
            rows,
            ids,
            skipped,
            roots,
            generation=generation,
            index_file=index_file,
            index_sha256=sha,
            num_vectors=index.ntotal,
            index_type=index_type,
        )
    except ValueError:
        (folder / index_file).unlink(missing_ok=True)
        raise
    write_manifest(folder, new_state, check)
    remove_stale_generations(folder, new_state.index_file)
    return new_state, check


def remove_stale_generations(folder: Path, live_file: str) -> None:
    """Remove every generation file in `folder` but `live_file`."""
    for file in folder.glob("index.*.faiss"):
        if file.name != live_file:
            file.unlink(missing_ok=True)


def recover(folder: Path, metadata: Metadata, state: IndexState, check: FileCheck) -> None:
    """A writer's first act: tidy what a crashed writer left (the index itself is already consistent).

    Running builds become interrupted, unpublished generations and manifest temporaries go, and a manifest that
    lags the database (or predates the recorded `FileCheck`) is rewritten from `state` and `check`.
    """
    metadata.interrupt_running_builds()
    remove_stale_generations(folder, state.index_file)
    for tmp in folder.glob(f".{MANIFEST}.tmp-*"):
        tmp.unlink(missing_ok=True)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except ValueError:
        manifest = {}
    expected = manifest_of(state, check)  # completes a manifest written before opens checked ends
    if {k: manifest.get(k) for k in expected if k != "posedex_version"} != {
        k: v for k, v in expected.items() if k != "posedex_version"
    }:
        same = manifest.get("index_sha256") == state.index_sha256  # its quality belongs to the live generation
        write_manifest(folder, state, check, manifest if same else None)


def verify(folder: Path, metadata: Metadata, state: IndexState, index: faiss.IndexIDMap2, edge_bytes: int) -> list[str]:
    """Every disagreement between the live FAISS file (`index`, as loaded), the rows and the manifest of `state`.

    The whole file's sha256 is taken here (an open checks only its size and ends, `edge_bytes` each).
    """
    problems = []
    live = folder / state.index_file
    if not live.is_file():
        return [f"{live}: the live FAISS file is missing"]
    if (sha := file_sha256(live)) != state.index_sha256:
        problems.append(f"{live}: sha256 {sha[:12]} differs from the database's {state.index_sha256[:12]}")
    row_ids = metadata.ids()
    live_build = metadata.build(state.live_build_id) if state.live_build_id is not None else None
    faiss_ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    if index.ntotal != len(row_ids) or state.num_vectors != len(row_ids):
        problems.append(f"counts differ: FAISS {index.ntotal}, frame rows {len(row_ids)}, recorded {state.num_vectors}")
    if len(faiss_ids) != len(row_ids) or not np.array_equal(faiss_ids, row_ids):
        only_faiss = np.setdiff1d(faiss_ids, row_ids)[:10].tolist()
        only_rows = np.setdiff1d(row_ids, faiss_ids)[:10].tolist()
        problems.append(f"id sets differ: in FAISS only {only_faiss}, in rows only {only_rows}")
    if index.d != state.dim:
        problems.append(f"FAISS dim {index.d} differs from the recorded dim {state.dim}")
    if live_build is not None and (live_build.status != "committed" or live_build.index_file != state.index_file):
        problems.append(
            f"build {live_build.id} made {state.index_file} live but reads {live_build.status}, {live_build.index_file}"
        )
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        return [*problems, f"{folder / MANIFEST}: unreadable ({err})"]
    expected = manifest_of(state, FileCheck.of(live, edge_bytes))
    for key in (
        "checkpoint_sha256",
        "dim",
        "metric",
        "index_type",
        "count",
        "generation",
        "index_file",
        "index_sha256",
        "index_bytes",
        "index_edge_sha256",
    ):
        if key in ("index_bytes", "index_edge_sha256") and key not in manifest:
            continue  # a manifest written before opens checked size and ends: opens hash the whole file
        if manifest.get(key) != expected[key]:
            problems.append(f"{folder / MANIFEST}: {key} is {manifest.get(key)!r}, database says {expected[key]!r}")
    return problems
