"""large values compressed with lz4 instead of pglz (PostgreSQL 14+ built with lz4)

Every order writes several values over PostgreSQL's 2 kB compression threshold: the webhook body
in the inbox, the order document, its partner events. A profile of the server during the ingest
benchmark showed ``pglz_compress`` as its hottest function (7 % of its CPU). lz4 compresses
several times faster at a similar ratio. Values already stored keep their compression and stay
readable; on a server without lz4 this migration changes nothing.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the columns written for every order (or most), whose values often pass 2 kB
COLUMNS = [
    ("inbox", "body"),
    ("inbox", "headers"),
    ("orders", "data"),
    ("outbox", "data"),
    ("fulfillments", "data"),
    ("sync_jobs", "payload"),
]


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return bool(found)


def _set(method: str) -> None:
    bind = op.get_bind()
    for table, column in COLUMNS:
        exists = bind.execute(
            sa.text(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = :t AND column_name = :c"
            ),
            {"t": table, "c": column},
        ).first()
        if exists:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')


def upgrade() -> None:
    if _lz4_available():
        _set("lz4")


def downgrade() -> None:
    if _lz4_available():
        _set("default")
