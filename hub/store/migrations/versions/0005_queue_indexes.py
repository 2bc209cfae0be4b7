"""partial indexes for the inbox and job claims; aggressive autovacuum on the queue tables

The claims looked for ``pending OR (leased AND expired)`` through one (status, time) index: a
bitmap scan that visited every dead index entry a busy queue leaves behind (each item is
updated two or three times). At 20,000 orders the job claim took 64 ms (36,851 index entries
visited for 1,239 live rows). Each claim now reads two partial indexes in order, and the queue
tables are vacuumed and analysed after 1 % of their rows change instead of 20 %.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = [
    ("ix_inbox_pending", "inbox", ["received_at"], "status = 'pending'"),
    ("ix_inbox_leased", "inbox", ["lease_until"], "status = 'processing'"),
    ("ix_sync_jobs_pending_due", "sync_jobs", ["next_run_at"], "status = 'pending'"),
    ("ix_sync_jobs_leased", "sync_jobs", ["lease_until"], "status = 'running'"),
]
_QUEUES = ["inbox", "sync_jobs", "outbox", "webhook_deliveries"]


def upgrade() -> None:
    for name, table, cols, where in _INDEXES:
        op.create_index(name, table, cols, postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    if op.get_bind().dialect.name == "postgresql":
        for table in _QUEUES:
            op.execute(
                f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0.01, "
                "autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_threshold = 500)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _QUEUES:
            op.execute(
                f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor, "
                "autovacuum_vacuum_threshold)"
            )
    for name, table, _cols, _where in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
