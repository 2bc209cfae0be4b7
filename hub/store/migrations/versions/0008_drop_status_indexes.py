"""drop the (status, time) indexes of the inbox and the sync jobs: the partial indexes of 0005 serve
every query, and each index costs a write on every status change

``ix_inbox_status_received`` and ``ix_sync_jobs_status_next`` were left beside the partial indexes
of migration 0005 (pending items by arrival, due jobs by time, leases by expiry, open jobs by
object), which serve every claim and count. A queue row changes status two or three times, and a
status change is never a HOT update, so each index took an entry per change. Measured with
``python -m bench.profile_worker --stage jobs`` (4,000 orders): PostgreSQL CPU per order
0.34-0.43 ms with the two indexes, 0.22-0.24 ms without; the claims' plans use the partial
indexes on PostgreSQL and SQLite alike.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = [
    ("ix_inbox_status_received", "inbox", ["status", "received_at"]),
    ("ix_sync_jobs_status_next", "sync_jobs", ["status", "next_run_at"]),
]


def upgrade() -> None:
    for name, table, _cols in _INDEXES:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, cols in _INDEXES:
        op.create_index(name, table, cols)
