"""documents stored as ``json`` (text kept as written) instead of ``jsonb`` on PostgreSQL

The hub never queries inside its documents (order documents, partner events, fulfilment
requests, job payloads, webhook headers, failure records): it writes them whole and reads them
whole. ``jsonb`` made PostgreSQL parse every value into its binary form on write and print it back
to text on read. Measured on the development machine (PostgreSQL 15, lz4): a 6 kB document cost
250-270 us of server CPU to insert as ``jsonb`` against 100 us as ``json``, and 90-105 us to read
against 20 us. ``json`` still checks that the value is valid JSON.

Every ``jsonb`` column of the hub's tables becomes ``json`` (the tables are rewritten: on a large
database run it in a maintenance window); the lz4 compression of migration 0006 is set again.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = sa.text(
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND data_type = :type "
    "ORDER BY table_name, column_name"
)


def _convert(source: str, target: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite keeps JSON as text already
    lz4 = bool(
        bind.execute(
            sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
    )
    columns = bind.execute(_COLUMNS, {"type": source}).all()
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    for table, cols in by_table.items():
        changes = [f'ALTER COLUMN "{c}" TYPE {target} USING "{c}"::{target}' for c in cols]
        if lz4:
            changes += [f'ALTER COLUMN "{c}" SET COMPRESSION lz4' for c in cols]
        op.execute(f'ALTER TABLE "{table}" ' + ", ".join(changes))  # one rewrite per table


def upgrade() -> None:
    _convert("jsonb", "json")


def downgrade() -> None:
    _convert("json", "jsonb")
