"""Alembic environment of the index database: the target is `indexer.schema.metadata`, batch mode for SQLite.

The store runs migrations programmatically and hands its own connection in ``config.attributes["connection"]``;
the `alembic` command line (run from the repo root, `alembic.ini` beside it) uses ``sqlalchemy.url`` instead, e.g.
``alembic -x url=sqlite:///path/to/index/meta.sqlite upgrade head``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from indexer.schema import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=sqlite:///<index dir>/meta.sqlite")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
