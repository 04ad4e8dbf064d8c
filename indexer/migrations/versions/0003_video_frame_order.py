"""a video's frames in frame order from one index: (video_id, frame) replaces (video_id)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

`Metadata.video_frames` (the motion search and the UI read whole videos) found a video's rows through the index on
video_id and then sorted them in a temporary B-tree; at 10M rows (benchmarks/metadata_scale.py) that sort is the
lookup's cost. The composite index returns the rows already in order, and serves every lookup by video_id alone,
so the single-column index goes. Rows are untouched; downgrading restores the single-column index.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_frames_video_id_frame", "frames", ["video_id", "frame"], unique=False)
    op.drop_index("ix_frames_video_id", table_name="frames")


def downgrade() -> None:
    op.create_index("ix_frames_video_id", "frames", ["video_id"], unique=False)
    op.drop_index("ix_frames_video_id_frame", table_name="frames")
