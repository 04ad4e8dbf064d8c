"""initial schema: identities, videos, builds, frames, index_state

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25

Downgrading to base drops every table (and so the index's metadata): there is nothing older to go back to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=False),
        sa.Column("posedex_version", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("num_added", sa.Integer(), nullable=False),
        sa.Column("num_skipped", sa.Integer(), nullable=False),
        sa.Column("skipped_json", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("index_file", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("name", name=op.f("uq_identities_name")),
    )
    op.create_table(
        "index_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("index_type", sa.String(length=16), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("index_file", sa.String(), nullable=False),
        sa.Column("index_sha256", sa.String(length=64), nullable=False),
        sa.Column("num_vectors", sa.Integer(), nullable=False),
        sa.Column("live_build_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["live_build_id"], ["builds.id"], name=op.f("fk_index_state_live_build_id_builds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_state")),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], name=op.f("fk_videos_identity_id_identities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videos")),
        sa.UniqueConstraint("identity_id", "name", name="uq_videos_identity_id_name"),
    )
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_videos_identity_id"), ["identity_id"], unique=False)

    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["build_id"], ["builds.id"], name=op.f("fk_frames_build_id_builds")),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], name=op.f("fk_frames_identity_id_identities")),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], name=op.f("fk_frames_video_id_videos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frames")),
        sa.UniqueConstraint("path", name=op.f("uq_frames_path")),
    )
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frames_build_id"), ["build_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_identity_id"), ["identity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_video_id"), ["video_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frames_video_id"))
        batch_op.drop_index(batch_op.f("ix_frames_identity_id"))
        batch_op.drop_index(batch_op.f("ix_frames_build_id"))
    op.drop_table("frames")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_identity_id"))
    op.drop_table("videos")
    op.drop_table("index_state")
    op.drop_table("identities")
    op.drop_table("builds")
