"""the outbox is append-only: the events still to fan out are listed in ``outbox_pending``

Fan-out marked each event ``dispatched``: an UPDATE of a row holding the whole event (never a HOT
update, the column being in the partial index's predicate, so every index took an entry again) that
left a dead row for VACUUM. At 500 orders/s (three events an order) that UPDATE and the outbox's
VACUUM took 0.58 s of PostgreSQL's statement time per 5 s. Now each event also writes its ``seq``
to ``outbox_pending``, a one-column table that stays a few rows long, and the fan-out deletes it there.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_SETTINGS = "autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor, autovacuum_vacuum_threshold"
_AGGRESSIVE = (
    "autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_threshold = 500"
)


def upgrade() -> None:
    op.create_table(
        "outbox_pending",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    )
    false = "false" if op.get_bind().dialect.name == "postgresql" else "0"
    op.execute(f"INSERT INTO outbox_pending (seq) SELECT seq FROM outbox WHERE dispatched = {false}")
    op.drop_index("ix_outbox_undispatched", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("dispatched")
    if op.get_bind().dialect.name == "postgresql":  # the queue is the new table now (see 0005)
        op.execute(f"ALTER TABLE outbox_pending SET ({_AGGRESSIVE})")
        op.execute(f"ALTER TABLE outbox RESET ({_SETTINGS})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE outbox SET ({_AGGRESSIVE})")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("dispatched", sa.Boolean(), nullable=False, server_default="0"))
    op.execute("UPDATE outbox SET dispatched = (seq NOT IN (SELECT seq FROM outbox_pending))")
    op.create_index(
        "ix_outbox_undispatched",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("NOT dispatched"),
        sqlite_where=sa.text("dispatched = 0"),
    )
    op.drop_table("outbox_pending")
