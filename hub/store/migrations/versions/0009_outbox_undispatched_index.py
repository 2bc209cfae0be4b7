"""the outbox's fan-out index holds only the events still to fan out

``ix_outbox_dispatched_seq`` indexed every event by (dispatched, seq): it grew with the outbox, which
keeps every event as history, and took a second entry for each event when fan-out marked it
dispatched (a change of an indexed column is never a HOT update). ``ix_outbox_undispatched`` indexes
``seq`` of the undispatched events only: a few rows at any time, the one the fan-out query reads in
order, and nothing to write when an event is marked dispatched.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_undispatched",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("NOT dispatched"),
        sqlite_where=sa.text("dispatched = 0"),
    )
    op.drop_index("ix_outbox_dispatched_seq", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_dispatched_seq", "outbox", ["dispatched", "seq"])
    op.drop_index("ix_outbox_undispatched", table_name="outbox")
