"""Read-only use never writes: queries, `info`, `verify` and a `Retriever` leave every file of the index as it was.

An index at an older schema is refused by readers with one line naming `index migrate`, which upgrades it under
the writer lock.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine

from indexer.metadata import alembic_config, head_revision, schema_revision
from indexer.store import Store, _lock
from retrieval.search import Retriever
from tests.indexer.conftest import FRAMES
from ui.index_command import main

FAST = ["--workers", "0", "--device", "cpu", "--no-progress"]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of `folder` by name: its bytes and its mtime in nanoseconds."""
    return {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(folder.iterdir())}


def _build(runner: CliRunner, root: Path, checkpoint: Path, out: Path) -> None:
    result = runner.invoke(main, ["build", str(root), "--checkpoint", str(checkpoint), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output


def _downgrade_one(out: Path) -> None:
    """Take the index's database one revision back, as an older posedex would have left it."""
    config = alembic_config()
    engine = create_engine(f"sqlite:///{out / 'meta.sqlite'}")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "-1")
    finally:
        engine.dispose()


def test_reading_changes_no_byte_of_the_index(runner, synthvox, tiny_checkpoint, tmp_path):
    out = tmp_path / "idx"
    _build(runner, synthvox, tiny_checkpoint, out)
    before = _snapshot(out)
    photo = str(synthvox / "sv0000" / "v00" / "00001.png")
    for args in (
        ["info", "--index", str(out)],
        ["verify", "--index", str(out)],
        [
            "query",
            photo,
            "--index",
            str(out),
            "--checkpoint",
            str(tiny_checkpoint),
            "--device",
            "cpu",
            "--json",
            "--other-identities",
        ],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
    with Retriever(out, tiny_checkpoint, device="cpu", collection=synthvox) as retriever:
        assert len(retriever.search(photo, 5)) == 5 and retriever.summary().num_frames == FRAMES
    with Store.open(out) as store:
        assert store.verify() == [] and len(store.search(np.ones((1, store.dim), np.float32), 3)[1][0]) == 3
    assert _snapshot(out) == before


def test_an_older_schema_is_refused_by_readers_until_index_migrate(runner, synthvox, tiny_checkpoint, tmp_path):
    out = tmp_path / "idx"
    _build(runner, synthvox, tiny_checkpoint, out)
    _downgrade_one(out)
    old = schema_revision(out / "meta.sqlite")
    assert old is not None and old != head_revision()
    before = _snapshot(out)
    photo = str(synthvox / "sv0000" / "v00" / "00001.png")
    for args in (
        ["info", "--index", str(out)],
        ["query", photo, "--index", str(out), "--checkpoint", str(tiny_checkpoint), "--device", "cpu"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"run `index migrate --index {out}`" in lines[0], lines
    result = runner.invoke(main, ["verify", "--index", str(out)])
    assert result.exit_code == 1 and "run `index migrate" in result.output
    assert _snapshot(out) == before  # refusing wrote nothing either

    lock_fd = _lock(out)  # another process is writing: migrate waits for no one, it says so
    try:
        result = runner.invoke(main, ["migrate", "--index", str(out)])
    finally:
        os.close(lock_fd)
    assert result.exit_code == 2 and "another process is writing this index" in result.stderr
    result = runner.invoke(main, ["migrate", "--index", str(out)])
    assert result.exit_code == 0 and f"schema revision {old} -> {head_revision()}" in result.output
    assert runner.invoke(main, ["verify", "--index", str(out)]).output == "ok\n"
    assert f"frames:     {FRAMES}" in runner.invoke(main, ["info", "--index", str(out)]).output
    result = runner.invoke(main, ["migrate", "--index", str(out)])
    assert result.exit_code == 0 and "already at schema revision" in result.output


def test_migrate_refuses_a_folder_that_is_no_index(runner, tmp_path):
    result = runner.invoke(main, ["migrate", "--index", str(tmp_path)])
    assert result.exit_code == 2 and "not a posedex index" in result.stderr
