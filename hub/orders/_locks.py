from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def lock_order(conn: AsyncConnection, order_id: str) -> None:
    """Serialise changes to one order across workers and API nodes (PostgreSQL advisory lock,
    released at commit; SQLite has one writer at a time already)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ord:{order_id}"})
