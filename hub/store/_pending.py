"""Rows a transaction writes at its end: partner events and timeline entries (see Store.begin)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

PENDING = "orderhub.pending"


def pending(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]] | None:
    """The buffers of a transaction opened by ``Store.begin`` (None: write at once)."""
    buf: dict[str, list[dict[str, Any]]] | None = conn.info.get(PENDING)
    return buf


async def flush_pending(conn: AsyncConnection) -> None:
    """Insert the buffered rows now (before the commit, or before reading them back)."""
    from hub.store import tables as t

    buf = pending(conn)
    if not buf:
        return
    if buf["outbox"]:
        rows, buf["outbox"] = buf["outbox"], []
        await conn.execute(insert(t.outbox), rows)
    if buf["timeline"]:
        rows, buf["timeline"] = buf["timeline"], []
        await conn.execute(insert(t.order_events), rows)
