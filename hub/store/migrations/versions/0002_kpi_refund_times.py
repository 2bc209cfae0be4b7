"""kpi refund times

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:24:12.939258
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.store._types


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kpi_facts") as batch:
        batch.add_column(sa.Column("refund_requested_at", hub.store._types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("refund_issued_at", hub.store._types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kpi_facts") as batch:
        batch.drop_column("refund_issued_at")
        batch.drop_column("refund_requested_at")
