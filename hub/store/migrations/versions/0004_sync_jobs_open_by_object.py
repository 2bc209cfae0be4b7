"""index for the job claim's "an older job of this object is unfinished" check

Without it the check probes ``ix_sync_jobs_object`` by connection alone (the operation sits
between connection and object_id), which grows with every job of the connection: 18 ms per
claim of 50 at 700 pending jobs with fresh statistics, measured before this index; 2 ms after.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    op.create_index(
        "ix_sync_jobs_open_by_object",
        "sync_jobs",
        ["connection", "object_id", "created_at"],
        postgresql_where=_OPEN,
        sqlite_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_sync_jobs_open_by_object", table_name="sync_jobs")
