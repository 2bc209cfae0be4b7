"""index for the fraud screen's velocity per email

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_email_hash_created", "orders", ["email_hash", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_email_hash_created", table_name="orders")
