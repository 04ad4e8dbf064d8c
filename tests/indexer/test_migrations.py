"""The index database's schema: Alembic migrations up and down on a real SQLite file, and head == `schema.py`."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from indexer import schema
from indexer.metadata import alembic_config, connect, upgrade_to_head, video_frames_query
from indexer.schema import Build, Frame, Identity, Root, Video

TABLES = {"identities", "videos", "frames", "builds", "index_state", "roots"}


def _migrate(db, target: str, direction=command.upgrade) -> None:
    config = alembic_config()
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            direction(config, target)
    finally:
        engine.dispose()


def _tables(db) -> set[str]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _write_rows(db) -> None:
    engine = connect(db, readonly=False)
    try:
        with Session(engine) as session, session.begin():
            build = Build(
                started_at=datetime(2026, 1, 1),
                checkpoint_sha256="ab" * 32,
                posedex_version="0",
                status="committed",
                num_added=1,
                num_skipped=0,
                skipped_json="[]",
            )
            identity = Identity(name="id10001")
            session.add_all([build, identity])
            session.flush()
            video = Video(identity_id=identity.id, name="vid")
            session.add(video)
            session.flush()
            session.add(
                Frame(
                    id=7,
                    path="id10001/vid/0001.jpg",
                    identity_id=identity.id,
                    video_id=video.id,
                    frame=1,
                    time_s=0.04,
                    width=64,
                    height=64,
                    build_id=build.id,
                )
            )
        with Session(engine) as session:
            assert session.scalars(select(Frame.path)).all() == ["id10001/vid/0001.jpg"]
    finally:
        engine.dispose()


def _frame_paths(db) -> list[str]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            return session.scalars(select(Frame.path)).all()
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_a_real_file(tmp_path):
    db = tmp_path / "meta.sqlite"
    _migrate(db, "0001")  # an index made before roots were recorded...
    assert _tables(db) == TABLES - {"roots"}
    _write_rows(db)
    _migrate(db, "head")  # ...upgrades with its rows intact
    assert _tables(db) == TABLES and _frame_paths(db) == ["id10001/vid/0001.jpg"]
    engine = connect(db, readonly=False)
    with Session(engine) as session, session.begin():
        session.add(Root(prefix="", path="/data/vox"))
    engine.dispose()
    _migrate(db, "0001", command.downgrade)  # 0003 -> 0001 drops the roots and keeps every frame
    assert _tables(db) == TABLES - {"roots"} and _frame_paths(db) == ["id10001/vid/0001.jpg"]
    _migrate(db, "head")
    assert _tables(db) == TABLES and _frame_paths(db) == ["id10001/vid/0001.jpg"]
    _migrate(db, "base", command.downgrade)  # below the initial revision there is nothing: every table dropped
    assert _tables(db) == set()
    _migrate(db, "head")
    _write_rows(db)  # the same ids and unique paths insert again: nothing of the old rows is left behind


def _frame_indexes(db) -> set[str]:
    engine = create_engine(f"sqlite:///{db}")
    try:
        return {index["name"] for index in inspect(engine).get_indexes("frames")}
    finally:
        engine.dispose()


def test_video_frame_order_comes_from_an_index_and_downgrades(tmp_path):
    """0003: a video's frames come off the (video_id, frame) index in order, with no sort (the 10M-row benchmark's
    temporary B-tree); downgrading brings back the single-column index and keeps the rows."""
    db = tmp_path / "meta.sqlite"
    _migrate(db, "0002")
    _write_rows(db)
    assert "ix_frames_video_id" in _frame_indexes(db)
    _migrate(db, "head")
    assert {"ix_frames_video_id_frame", "ix_frames_identity_id"} <= _frame_indexes(db)
    assert "ix_frames_video_id" not in _frame_indexes(db)
    sql = video_frames_query("id10001", "vid").compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as connection:
            plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        engine.dispose()
    assert "ix_frames_video_id_frame" in plan and "TEMP B-TREE" not in plan, plan
    _migrate(db, "0002", command.downgrade)
    assert "ix_frames_video_id" in _frame_indexes(db) and "ix_frames_video_id_frame" not in _frame_indexes(db)
    assert _frame_paths(db) == ["id10001/vid/0001.jpg"]


def test_head_schema_equals_schema_metadata(tmp_path):
    db = tmp_path / "meta.sqlite"
    upgrade_to_head(db)
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_upgrade_finds_migrations_from_any_working_directory_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alembic.ini, no indexer/ here
    db = tmp_path / "meta.sqlite"
    upgrade_to_head(db)
    upgrade_to_head(db)  # already at head: a no-op, not an error
    assert _tables(db) == TABLES


def test_foreign_keys_are_enforced(tmp_path):
    db = tmp_path / "meta.sqlite"
    upgrade_to_head(db)
    engine = connect(db, readonly=False)
    try:
        with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
            session.add(Video(identity_id=999, name="orphan"))
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
