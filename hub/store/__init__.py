"""The store: SQLAlchemy 2 async Core on PostgreSQL (asyncpg) or SQLite (aiosqlite).

Operations are plain async functions taking an ``AsyncConnection`` so that several of
them (an order change, its reservation, its partner event) commit in one transaction::

    async with store.begin() as conn:
        await orders.upsert_order(conn, order)
        await outbox.emit(conn, "order.created", order, object_id=order.id)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.store._pending import attach, detach, flush_pending, install_autoflush
from hub.store.engine import is_sqlite, make_engine


class Store:
    """One database: an engine and its transactions."""

    def __init__(self, url: str, *, pool_size: int = 8, application_name: str = "orderhub") -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url, pool_size=pool_size, application_name=application_name)
        install_autoflush(self.engine.sync_engine)
        # the same pool, each statement its own transaction (no BEGIN/COMMIT round trips)
        self._autocommit: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def dialect(self) -> str:
        return "sqlite" if is_sqlite(self.url) else "postgresql"

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: commits on success, rolls back on error.

        Rows nothing reads back in the transaction (events, timeline, ledger, allocations, jobs...)
        are buffered and inserted together just before the commit (on PostgreSQL one statement for
        the plain inserts, ``hub.store._combined``), in the order written; a statement touching a
        buffered table flushes first (``hub.store._pending``).
        """
        async with self.engine.begin() as conn:
            attach(conn)
            try:
                yield conn
                await flush_pending(conn)
            finally:
                detach(conn)

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.engine.connect()

    def autocommit(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection on which every statement is its own transaction: a single statement without
        the round trips of BEGIN and COMMIT (PostgreSQL)."""
        return self._autocommit.connect()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()


__all__ = ["Store"]
