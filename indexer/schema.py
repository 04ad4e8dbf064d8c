"""The metadata database of a pose index: SQLAlchemy 2.0 typed models for identities, videos, frames, builds and
the collection roots.

A frame row's primary key *is* its FAISS id (DESIGN.md, "Index dir"): the store assigns ids, SQLite does not.
The schema changes only through Alembic migrations (`indexer/migrations/`); `env.py` imports `metadata` from here.

Choices made:

- `IndexState` is a single row (id 1) naming the live FAISS generation file and its sha256. Updating it in the same
  transaction that inserts a build's frame rows makes the database the one commit point of a build.
- Times are naive UTC `DateTime`s (SQLite stores no time zone; naive-and-documented beats silently dropped).
- A build's skipped frames are a JSON text list of ``{"path", "reason"}`` (read whole, never queried into).
- Constraints are named by a naming convention, so Alembic's batch mode on SQLite can find and alter them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata


class Identity(Base):
    """A person, by the folder name the collection gives them (``id10001``, ``Aaron_Eckhart``)."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


class Video(Base):
    """One video of one identity; its name is unique only within the identity."""

    __tablename__ = "videos"
    __table_args__ = (UniqueConstraint("identity_id", "name", name="uq_videos_identity_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    name: Mapped[str] = mapped_column(String)


class Build(Base):
    """One run that added vectors: when, with which checkpoint, what it added and skipped, how it ended."""

    __tablename__ = "builds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    posedex_version: Mapped[str] = mapped_column(String)
    # running -> committed | aborted; a `running` row found by the next writer is marked `interrupted`.
    status: Mapped[str] = mapped_column(String(16))
    num_added: Mapped[int] = mapped_column(Integer, default=0)
    num_skipped: Mapped[int] = mapped_column(Integer, default=0)
    skipped_json: Mapped[str] = mapped_column(Text, default="[]")  # [{"path": ..., "reason": ...}, ...]
    generation: Mapped[int | None] = mapped_column(Integer)  # the FAISS generation this build made live
    index_file: Mapped[str | None] = mapped_column(String)  # its file name inside the index dir


class Frame(Base):
    """One indexed frame. `id` is its FAISS id; `path` is relative to the collection root."""

    __tablename__ = "frames"
    # a video's frames in order (`Metadata.video_frames`, motion search) come straight off this index, unsorted
    __table_args__ = (Index("ix_frames_video_id_frame", "video_id", "frame"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    path: Mapped[str] = mapped_column(String, unique=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id"))
    frame: Mapped[int] = mapped_column(Integer)  # frame number within the video
    time_s: Mapped[float | None] = mapped_column(Float)  # seconds from the video's start, when known
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id"), index=True)


class Root(Base):
    """A collection folder the index holds frames of: a frame's stored path is `prefix/relative` under `path`.

    `prefix` is "" for the root of a one-root build (its paths carry no prefix), else the root's folder name.
    Recorded so that readers (query grids, the UI) can show a hit's frame, and read nothing outside these folders.
    """

    __tablename__ = "roots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String, unique=True)
    path: Mapped[str] = mapped_column(String)  # absolute, resolved when the build ran


class IndexState(Base):
    """The one row (id 1) that says what the index is and which FAISS generation file is live."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    dim: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(16))  # "cosine": L2-normalised vectors, inner product
    index_type: Mapped[str] = mapped_column(String(16))  # flat | hnsw | ivf | ivfpq | auto (resolved at first build)
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    generation: Mapped[int] = mapped_column(Integer)
    index_file: Mapped[str] = mapped_column(String)
    index_sha256: Mapped[str] = mapped_column(String(64))
    num_vectors: Mapped[int] = mapped_column(Integer)
    live_build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id"))
