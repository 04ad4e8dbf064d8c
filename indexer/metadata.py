"""The index's SQLite database, ``meta.sqlite``: its connections, its schema revision, and every query of its tables.

The database is the truth of an index: frames, identities, videos, builds, collection roots and the live
generation (`indexer.schema`). `Metadata` is one open database; the FAISS file it points at is `indexer.generations`'
to read and write, and `indexer.store.Store` composes the two.

Choices made:

- Every connection turns foreign keys on. A writer's uses WAL and ``synchronous=FULL``: its commit of a build's rows
  is the build's commit point (`indexer.generations`, step 2), which must survive a power loss. A reader's sets
  ``query_only`` and nothing that is stored in the file, so queries leave every byte and mtime of a cleanly closed
  database as they were.
- Only a writer migrates the schema (`upgrade_to_head`, under ``write.lock``); a reader checks `require_head` and
  says to run ``index migrate``, since a migration under a reader that holds no lock could change tables mid-query.
- Ids and paths are looked up `_CHUNK` at a time, well under SQLite's limit on the variables of one statement.
- Times are naive UTC (`indexer.schema`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, Select, create_engine, event, func, insert, select
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session

from indexer.schema import Build, Frame, Identity, IndexState, Root, Video
from model import __version__
from model.data.errors import DataError

DATABASE = "meta.sqlite"
METRIC = "cosine"
ROW_COLUMNS = ("path", "identity", "video", "frame")  # required of a build's frame rows
OPTIONAL_COLUMNS = ("time_s", "width", "height")
_CHUNK = 500  # ids per `IN (...)` query, well under SQLite's variable limit


def migrations_dir() -> Path:
    """The Alembic scripts, found beside this package (never relative to the working directory)."""
    return Path(__file__).resolve().with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config over `migrations_dir`; the caller passes its connection in ``attributes["connection"]``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def now() -> datetime:
    """The time as the tables store it: naive UTC (see `indexer.schema`)."""
    return datetime.now(UTC).replace(tzinfo=None)


def connect(db: Path, *, readonly: bool) -> Engine:
    """An engine on the database at `db` whose every connection has a reader's or a writer's pragmas (see above)."""
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
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_revision(db: Path) -> str | None:
    """The schema revision the database at `db` is at (None: no schema yet), read without writing a byte."""
    engine = connect(db, readonly=True)
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
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current in known:
        raise DataError(
            db,
            f"schema revision {current} is older than this posedex's {head}: run `index migrate --index {db.parent}`",
        )
    raise DataError(db, f"schema revision {current} unknown to posedex {__version__}; upgrade posedex")


def upgrade_to_head(db: Path) -> str | None:
    """Bring the database at `db` to the newest schema revision (a no-op when it is there already).

    Returns the revision it was at. The caller holds `write.lock` (or owns a folder nobody else sees yet).
    """
    config = alembic_config()
    head = head_revision()
    engine = connect(db, readonly=False)
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


def video_frames_query(identity: str, video: str) -> Select:
    """The frames of one video in frame order (id, path, frame, time_s): served by the (video_id, frame) index in
    order, without a sort (migration 0003)."""
    return (
        select(Frame.id, Frame.path, Frame.frame, Frame.time_s)
        .join(Video, Frame.video_id == Video.id)
        .join(Identity, Video.identity_id == Identity.id)  # through the video: its unique (identity, name) row
        .where(Identity.name == identity, Video.name == video)
        .order_by(Frame.frame, Frame.id)
    )


class Metadata:
    """One open ``meta.sqlite``: the index state, the frame rows and the builds, read and written by query.

    `close()` when done. A reader's (`readonly`) connections cannot write.
    """

    def __init__(self, db: Path, *, readonly: bool) -> None:
        self.db = db
        self.engine = connect(db, readonly=readonly)  # the SQLAlchemy engine every query here goes through

    def close(self) -> None:
        self.engine.dispose()

    # ---- the index state -----------------------------------------------------------------------------------------

    def state(self) -> IndexState:
        """The index state row: the live generation, its file and sha256, dim, type, count."""
        try:
            with Session(self.engine) as session:
                state = session.get(IndexState, 1)
        except DatabaseError as err:
            raise DataError(self.db, f"cannot read the index state ({err.orig})") from None
        if state is None:
            raise DataError(self.db, "holds no index state: not a complete posedex index")
        return state

    def create_state(
        self, *, dim: int, index_type: str, checkpoint_sha256: str, index_file: str, index_sha256: str
    ) -> IndexState:
        """Record a new, empty index at generation 0 whose FAISS file is `index_file`; returns its state row."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            state = IndexState(
                id=1,
                dim=dim,
                metric=METRIC,
                index_type=index_type,
                checkpoint_sha256=checkpoint_sha256,
                created_at=now(),
                generation=0,
                index_file=index_file,
                index_sha256=index_sha256,
                num_vectors=0,
                live_build_id=None,
            )
            session.add(state)
        return state

    def snapshot(self) -> tuple[IndexState, dict[str, int]]:
        """The state and the numbers of frames, identities, videos and builds, read in one statement.

        One statement is one snapshot, so a commit in between cannot pair one generation's frame count with
        another's vector count.
        """
        names = ("frames", "identities", "videos", "builds")
        counts_of = [
            select(func.count()).select_from(table).scalar_subquery().label(name)
            for name, table in zip(names, (Frame, Identity, Video, Build))
        ]
        with Session(self.engine) as session:
            state, *numbers = session.execute(select(IndexState, *counts_of).where(IndexState.id == 1)).one()
        return state, dict(zip(names, numbers))

    # ---- frames --------------------------------------------------------------------------------------------------

    def get(self, ids: Sequence[int] | np.ndarray) -> pd.DataFrame:
        """Frame rows for `ids`, in their order: id, path, identity, video, frame, time_s, width, height.

        A negative id (FAISS's -1, "no result") is a `ValueError`, an id without a row a `KeyError`.
        """
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if (ids < 0).any():
            raise ValueError("negative id: FAISS's -1 means 'no result' and must be dropped before get()")
        unique = np.unique(ids)
        columns = [
            Frame.id,
            Frame.path,
            Identity.name.label("identity"),
            Video.name.label("video"),
            Frame.frame,
            Frame.time_s,
            Frame.width,
            Frame.height,
        ]
        found = []
        with Session(self.engine) as session:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK].tolist()
                query = (
                    select(*columns)
                    .join(Identity, Frame.identity_id == Identity.id)
                    .join(Video, Frame.video_id == Video.id)
                    .where(Frame.id.in_(chunk))
                )
                found.extend(session.execute(query).all())
        table = pd.DataFrame(found, columns=[c.key for c in columns]).set_index("id")
        missing = np.setdiff1d(unique, table.index.to_numpy())
        if len(missing):
            raise KeyError(f"no frame rows for ids {missing[:10].tolist()}")
        return table.loc[ids].reset_index()

    def paths(self) -> set[str]:
        """Every stored frame path."""
        with Session(self.engine) as session:
            return set(session.scalars(select(Frame.path)))

    def find(self, paths: Sequence[str]) -> pd.DataFrame:
        """The frames among the stored `paths`: path, id, identity (absent paths are absent)."""
        columns = [Frame.path, Frame.id, Identity.name.label("identity")]
        found = []
        with Session(self.engine) as session:
            for start in range(0, len(paths), _CHUNK):
                chunk = list(paths[start : start + _CHUNK])
                query = select(*columns).join(Identity, Frame.identity_id == Identity.id).where(Frame.path.in_(chunk))
                found.extend(session.execute(query).all())
        return pd.DataFrame(found, columns=[c.key for c in columns])

    def videos(self) -> pd.DataFrame:
        """Every video and its frame count, sorted: identity, video, num_frames."""
        query = (
            select(Identity.name.label("identity"), Video.name.label("video"), func.count(Frame.id).label("num_frames"))
            .join(Video, Video.identity_id == Identity.id)
            .join(Frame, Frame.video_id == Video.id)
            .group_by(Identity.name, Video.name)
            .order_by(Identity.name, Video.name)
        )
        with Session(self.engine) as session:
            found = session.execute(query).all()
        return pd.DataFrame(found, columns=["identity", "video", "num_frames"])

    def video_frames(self, identity: str, video: str) -> pd.DataFrame:
        """The frames of one video in frame order: id, path, frame, time_s."""
        query = video_frames_query(identity, video)
        with Session(self.engine) as session:
            found = session.execute(query).all()
        return pd.DataFrame(found, columns=list(query.selected_columns.keys()))

    def identity_ids(self, names: Iterable[str]) -> np.ndarray:
        """The frame ids of the identities `names`, ascending (int64; names the index lacks add none).

        Read through SQLAlchemy Core into NumPy, not as ORM scalars: an identity may hold half of millions of frames
        (`benchmarks/filter_speed.py`), and the rows are only ids.
        """
        names = list(names)
        found: list[np.ndarray] = []
        with self.engine.connect() as connection:
            for start in range(0, len(names), _CHUNK):
                query = (
                    select(Frame.id)
                    .join(Identity, Frame.identity_id == Identity.id)
                    .where(Identity.name.in_(names[start : start + _CHUNK]))
                )
                rows = connection.execute(query).all()
                found.append(np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)))
        return np.sort(np.concatenate(found)) if found else np.empty(0, np.int64)

    def ids(self) -> np.ndarray:
        """Every frame id (= FAISS id), ascending."""
        with Session(self.engine) as session:
            return np.array(session.scalars(select(Frame.id).order_by(Frame.id)).all(), dtype=np.int64)

    def roots(self) -> dict[str, Path]:
        """The recorded collection folders, {prefix: absolute folder}."""
        with Session(self.engine) as session:
            return {prefix: Path(path) for prefix, path in session.execute(select(Root.prefix, Root.path))}

    # ---- builds --------------------------------------------------------------------------------------------------

    def build(self, build_id: int) -> Build | None:
        """The record of build `build_id` (None when there is none)."""
        with Session(self.engine) as session:
            return session.get(Build, build_id)

    def start_build(self, checkpoint_sha256: str) -> tuple[int, int]:
        """Record a running build; returns its id and the first frame id it may give out."""
        with Session(self.engine) as session, session.begin():
            build = Build(
                started_at=now(),
                checkpoint_sha256=checkpoint_sha256,
                posedex_version=__version__,
                status="running",
                num_added=0,
                num_skipped=0,
                skipped_json="[]",
            )
            session.add(build)
            session.flush()
            build_id = build.id
            next_id = (session.scalar(select(func.max(Frame.id))) or 0) + 1
        return build_id, next_id

    def abort_build(self, build_id: int) -> None:
        """Record build `build_id` as aborted, unless it is no longer running."""
        with Session(self.engine) as session, session.begin():
            build = session.get(Build, build_id)
            if build is not None and build.status == "running":
                build.status, build.finished_at = "aborted", now()

    def interrupt_running_builds(self) -> None:
        """Record every build still `running` as interrupted: what a writer finds left by a crashed one."""
        with Session(self.engine) as session, session.begin():
            for build in session.scalars(select(Build).where(Build.status == "running")):
                build.status, build.finished_at = "interrupted", now()

    def commit_build(
        self,
        build_id: int,
        rows: pd.DataFrame,
        ids: np.ndarray,
        skipped: list[dict],
        roots: Mapping[str, Path],
        *,
        generation: int,
        index_file: str,
        index_sha256: str,
        num_vectors: int,
        index_type: str,
    ) -> IndexState:
        """In ONE transaction, insert build `build_id`'s frame rows with their `ids`, record its `roots`, and make
        `index_file` (of `generation`) live; returns the new state. A `ValueError` when rows clash with the index.

        This transaction is step 2 of the commit protocol (`indexer.generations`): the commit of the build.
        """
        try:
            with Session(self.engine) as session, session.begin():
                self._insert_frames(session, rows, ids, build_id)
                self._record_roots(session, roots)
                state = session.get(IndexState, 1)
                state.generation, state.index_file, state.index_sha256 = generation, index_file, index_sha256
                state.num_vectors, state.index_type, state.live_build_id = num_vectors, index_type, build_id
                build = session.get(Build, build_id)
                build.status, build.finished_at, build.generation, build.index_file = (
                    "committed",
                    now(),
                    generation,
                    index_file,
                )
                build.num_added, build.num_skipped, build.skipped_json = len(ids), len(skipped), json.dumps(skipped)
        except IntegrityError as err:
            raise ValueError(f"frame rows clash with the index (a path already indexed?): {err.orig}") from None
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(IndexState, 1)

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
                videos[key] = session.scalar(insert(Video).values(identity_id=key[0], name=key[1]).returning(Video.id))
            records.append(
                {
                    "id": frame_id,
                    "path": row["path"],
                    "identity_id": key[0],
                    "video_id": videos[key],
                    "frame": row["frame"],
                    "build_id": build_id,
                    **{c: row.get(c) for c in OPTIONAL_COLUMNS},
                }
            )
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
