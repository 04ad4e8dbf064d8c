"""collection roots: where the indexed frames live, so a reader can show a hit's frame

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Indexes made before this revision record no roots: their frames stay searchable, and showing a frame needs the
collection root from the caller. Downgrading drops the table and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roots")),
        sa.UniqueConstraint("prefix", name=op.f("uq_roots_prefix")),
    )


def downgrade() -> None:
    op.drop_table("roots")
