"""Group commit of inbound deliveries: what ``inbox.accept`` persists, many per transaction.

A delivery waits in a per-process queue; the first one to wait starts a flush that takes
everything queued at that moment (up to :data:`MAX_BATCH`) and writes it with one multi-row
``INSERT ... ON CONFLICT (connection, event_id) DO NOTHING RETURNING`` in one transaction (on
PostgreSQL the statement runs in autocommit: it is the transaction, one round trip). Deliveries
that arrive while a flush runs are taken by the next one: an idle hub adds no wait, a busy one
writes bigger batches (one commit for many webhooks instead of one each). The ids of rows that
were already there (duplicates) are read after the insert, in one SELECT.

Every caller is answered only after the commit that holds its row (or the row that was already
there: a duplicate). When the write fails, every caller of the batch gets
:class:`IntakeUnavailable` (503 with Retry-After): none of the batch's rows is stored, and
nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.errors import OrderhubError
from hub.logging import get_logger
from hub.store import Store
from hub.store import tables as t
from hub.store._upsert import insert_ignore

log = get_logger("hub.sync.intake")
I = t.inbox  # noqa: E741
MAX_BATCH = 200  # deliveries per transaction (a larger backlog is written by the next flushes)
#: SQLite has ``INSERT ... RETURNING`` since 3.35; older versions insert row by row.
SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35)

Key = tuple[str, str]  # (connection, event_id): the inbox's unique key

# PostgreSQL: the batch's new rows in one statement (arrays, so asyncpg prepares it once whatever
# the batch size), run in autocommit: one round trip, and the statement is its own transaction.
_PG_INSERT = text(
    "INSERT INTO inbox (id, connection, event_id, topic, object_key, source_ts, headers, body, status, attempts, "
    "received_at) "
    "SELECT u.id, u.connection, u.event_id, u.topic, u.object_key, u.source_ts, u.headers, u.body, 'pending', 0, "
    "u.received_at FROM unnest(CAST(:id AS text[]), CAST(:connection AS text[]), CAST(:event_id AS text[]), "
    "CAST(:topic AS text[]), CAST(:object_key AS text[]), CAST(:source_ts AS timestamptz[]), "
    "CAST(:headers AS jsonb[]), CAST(:body AS bytea[]), CAST(:received_at AS timestamptz[])) "
    "AS u(id, connection, event_id, topic, object_key, source_ts, headers, body, received_at) "
    "ON CONFLICT (connection, event_id) DO NOTHING RETURNING id, connection, event_id"
)


class IntakeUnavailable(OrderhubError):
    """The inbox could not store a batch of deliveries; none of them was acknowledged."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified delivery, ready to be stored (``id`` is used when it is new)."""

    id: str
    connection: str
    event_id: str
    topic: str | None
    object_key: str | None
    source_ts: datetime | None
    headers: dict[str, str]
    body: bytes
    received_at: datetime

    @property
    def key(self) -> Key:
        return (self.connection, self.event_id)


class Stored(NamedTuple):
    """Where a delivery is: its inbox id, and whether that row was there before (a duplicate)."""

    id: str
    duplicate: bool


class Batcher:
    """The per-process queue of deliveries waiting for their transaction (one flush at a time)."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self.loop = asyncio.get_running_loop()
        pg = store.dialect == "postgresql"
        self._autocommit = store.engine.execution_options(isolation_level="AUTOCOMMIT") if pg else None
        self._queue: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, delivery: Delivery) -> Stored:
        """Store ``delivery`` with whatever else is waiting; returns after the commit."""
        fut: asyncio.Future[Stored] = self.loop.create_future()
        self._queue.append((delivery, fut))
        if self._flusher is None:
            self._flusher = self.loop.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._flush(batch)
        except BaseException:  # cancelled (shutdown): nobody waiting may be left without an answer
            waiting, self._queue = self._queue, []
            _fail(waiting, "the hub is shutting down")
            raise
        finally:
            self._flusher = None

    async def _flush(self, batch: list[tuple[Delivery, asyncio.Future[Stored]]]) -> None:
        try:
            stored = await persist(self.store, [d for d, _ in batch], self._autocommit)
        except asyncio.CancelledError:
            _fail(batch, "the hub is shutting down")
            raise
        except Exception as exc:
            log.warning(
                "inbox batch not stored; its deliveries are refused with 503 for the senders to retry",
                extra={"fields": {"deliveries": len(batch), "error": f"{type(exc).__name__}: {str(exc)[:300]}"}},
            )
            _fail(batch, f"the database refused the write ({type(exc).__name__})")
            return
        for (_d, fut), s in zip(batch, stored, strict=True):
            if not fut.done():  # a caller that gave up (cancelled) needs no answer: its row is stored
                fut.set_result(s)


def _fail(batch: Sequence[tuple[Delivery, asyncio.Future[Stored]]], why: str) -> None:
    for _d, fut in batch:
        if not fut.done():
            fut.set_exception(
                IntakeUnavailable(f"the delivery was not stored: {why}; nothing was acknowledged, send it again")
            )


async def persist(store: Store, deliveries: Sequence[Delivery], autocommit: AsyncEngine | None = None) -> list[Stored]:
    """Store ``deliveries`` (all their new rows or none); one :class:`Stored` per delivery, in order.

    Copies of one event in the batch give one row: the first copy is new (unless the row was
    already there), the others are duplicates of it. On PostgreSQL the new rows are written by one
    statement on ``autocommit`` (the store's engine with ``isolation_level="AUTOCOMMIT"``), which is
    its own transaction; the ids of the rows already there are read after it (should that read fail,
    the batch is refused although its new rows are stored: their senders' retries are duplicates).
    """
    first: dict[Key, Delivery] = {}
    for d in deliveries:
        first.setdefault(d.key, d)
    rows = list(first.values())
    if store.dialect == "postgresql":
        engine = autocommit or store.engine.execution_options(isolation_level="AUTOCOMMIT")
        async with engine.begin() as conn:  # no BEGIN/COMMIT is sent: the INSERT commits by itself
            found = await _insert_and_look_up(conn, rows)
    else:
        async with store.begin() as conn:
            found = await _insert_and_look_up(conn, rows)
    out: list[Stored] = []
    for d in deliveries:
        at, duplicate = found[d.key]
        out.append(Stored(at, duplicate or first[d.key] is not d))
    return out


async def _insert_and_look_up(conn: AsyncConnection, rows: list[Delivery]) -> dict[Key, tuple[str, bool]]:
    """{key: (id, it was there before)} for every row, inserting those not there yet."""
    found = {k: (at, False) for k, at in (await _insert(conn, rows)).items()}
    missing = [d.key for d in rows if d.key not in found]
    if missing:
        found.update(await _existing(conn, missing))
    return found


async def _insert(conn: AsyncConnection, rows: list[Delivery]) -> dict[Key, str]:
    """Insert the rows whose key is not there yet; {key: id} of those inserted."""
    if conn.dialect.name == "postgresql":
        res = await conn.execute(
            _PG_INSERT,
            {
                "id": [d.id for d in rows],
                "connection": [d.connection for d in rows],
                "event_id": [d.event_id for d in rows],
                "topic": [d.topic for d in rows],
                "object_key": [d.object_key for d in rows],
                "source_ts": [d.source_ts for d in rows],
                "headers": [orjson.dumps(d.headers).decode() for d in rows],
                "body": [d.body for d in rows],
                "received_at": [d.received_at for d in rows],
            },
        )
        return {(r.connection, r.event_id): r.id for r in res}
    if SQLITE_RETURNING:
        stmt = (
            sqlite.insert(I)
            .on_conflict_do_nothing(index_elements=["connection", "event_id"])
            .returning(I.c.id, I.c.connection, I.c.event_id)
        )
        res = await conn.execute(stmt, [_values(d) for d in rows])
        return {(r.connection, r.event_id): r.id for r in res}
    out: dict[Key, str] = {}
    for d in rows:  # an SQLite without RETURNING: one row at a time, in the same transaction
        res = await conn.execute(insert_ignore(conn, I, ["connection", "event_id"]).values(**_values(d)))
        if res.rowcount == 1:
            out[d.key] = d.id
    return out


def _values(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "connection": d.connection,
        "event_id": d.event_id,
        "topic": d.topic,
        "object_key": d.object_key,
        "source_ts": d.source_ts,
        "headers": d.headers,
        "body": d.body,
        "status": "pending",
        "attempts": 0,
        "received_at": d.received_at,
    }


async def _existing(conn: AsyncConnection, keys: list[Key]) -> dict[Key, tuple[str, bool]]:
    """{key: (id, True)} of the rows already stored under ``keys``; LookupError when one is not there
    (it conflicted on insert, so it was deleted since: the batch fails and its senders retry)."""
    q = select(I.c.id, I.c.connection, I.c.event_id).where(tuple_(I.c.connection, I.c.event_id).in_(keys))
    found = {(r.connection, r.event_id): (r.id, True) for r in (await conn.execute(q)).all()}
    gone = [k for k in keys if k not in found]
    if gone:
        raise LookupError(f"inbox rows {gone[:3]} conflicted on insert but cannot be read back")
    return found
