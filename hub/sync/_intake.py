"""Group commit of inbound deliveries: what ``inbox.accept`` persists, many per transaction.

A delivery waits in a per-process queue; the first one to wait starts a flush that takes
everything queued at that moment (up to :data:`MAX_BATCH`) and writes it with one multi-row
``INSERT ... ON CONFLICT (connection, event_id) DO NOTHING RETURNING`` in one transaction.
Deliveries that arrive while a flush runs are taken by the next one: an idle hub adds no wait, a
busy one writes bigger batches (one commit for many webhooks instead of one each). The ids of rows
that were already there (duplicates) are read after the insert, in one SELECT.

On PostgreSQL the INSERT runs in autocommit (it is the transaction: one round trip), sent through
the driver's connection (asyncpg), and the flushes of one busy period share one pooled connection:
SQLAlchemy's per-statement work and a pool checkout per flush cost more CPU than the write itself.
A busy period keeps its connection :data:`LINGER_S` after its last flush, so that webhooks arriving
one at a time (a steady few hundred a second) do not each pay for a checkout and SQLAlchemy's
transaction bookkeeping (autocommit makes both no-ops): 400 us of the API's CPU per webhook
measured with them, 200 us without. ``Batcher.flushes`` counts the batches written.

Every caller is answered only after the commit that holds its row (or the row that was already
there: a duplicate). When the write fails, every caller of the batch gets
:class:`IntakeUnavailable` (503 with Retry-After): none of the batch's rows is stored, and
nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import select, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import OrderhubError
from hub.logging import get_logger
from hub.store import Store
from hub.store import tables as t
from hub.store._upsert import insert_ignore

log = get_logger("hub.sync.intake")
I = t.inbox  # noqa: E741
MAX_BATCH = 200  # deliveries per transaction (a larger backlog is written by the next flushes)
LINGER_S = 1.0  # how long a busy period keeps its connection for the next delivery (PostgreSQL)
#: Within a busy period, a flush that would write fewer than GATHER_MIN deliveries first waits
#: GATHER_S for more (PostgreSQL): at a steady few hundred webhooks a second each flush otherwise
#: wrote one or two, and its round trip and commit cost more CPU than the webhook's own handling.
GATHER_S = 0.002
GATHER_MIN = 4
#: SQLite has ``INSERT ... RETURNING`` since 3.35; older versions insert row by row.
SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35)

Key = tuple[str, str]  # (connection, event_id): the inbox's unique key

# PostgreSQL: the batch's new rows in one statement; arrays, so it is prepared once whatever the batch size.
_PG_INSERT = (
    "INSERT INTO inbox (id, connection, event_id, topic, object_key, source_ts, headers, body, status, attempts, "
    "received_at) "
    "SELECT u.id, u.connection, u.event_id, u.topic, u.object_key, u.source_ts, u.headers, u.body, 'pending', 0, "
    "u.received_at FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], "
    "$7::json[], $8::bytea[], $9::timestamptz[]) "
    "AS u(id, connection, event_id, topic, object_key, source_ts, headers, body, received_at) "
    "ON CONFLICT (connection, event_id) DO NOTHING RETURNING id, connection, event_id"
)
_PG_EXISTING = (
    "SELECT id, connection, event_id FROM inbox WHERE (connection, event_id) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[]))"
)

Found = dict[Key, tuple[str, bool]]  # key -> (inbox id, the row was there before)
Writer = Callable[[list["Delivery"]], Awaitable[Found]]


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

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH, linger: float = LINGER_S) -> None:
        self.store = store
        self.max_batch = max_batch
        self.loop = asyncio.get_running_loop()
        pg = store.dialect == "postgresql"
        self._pg = pg
        self.linger = linger if pg else 0.0
        self.gather = GATHER_S if pg else 0.0
        self._queue: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[bool] | None = None  # set while a busy period lingers
        self._closed = False
        self.flushes = 0  # batches written (each one transaction)

    async def submit(self, delivery: Delivery) -> Stored:
        """Store ``delivery`` with whatever else is waiting; returns after the commit."""
        if self._closed:
            raise IntakeUnavailable("the delivery was not stored: the hub is shutting down; send it again")
        fut: asyncio.Future[Stored] = self.loop.create_future()
        self._queue.append((delivery, fut))
        if self._flusher is None:
            self._flusher = self.loop.create_task(self._run())
        elif self._wake is not None and not self._wake.done():
            self._wake.set_result(True)  # a lingering busy period takes it on its open connection
        return await fut

    async def close(self) -> None:
        """Stop taking deliveries; a lingering busy period gives its connection back, and the
        deliveries already queued are written first."""
        self._closed = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(False)
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _more(self) -> bool:
        """After a flush that emptied the queue: wait up to ``linger`` seconds for the next delivery."""
        if self._queue or self.linger <= 0 or self._closed:
            return bool(self._queue)
        wake: asyncio.Future[bool] = self.loop.create_future()
        self._wake = wake
        timer = self.loop.call_later(self.linger, _resolve, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None
        return bool(self._queue)

    async def _run(self) -> None:
        try:
            while self._queue:
                await self._busy_period()
        except BaseException:  # cancelled (shutdown): nobody waiting may be left without an answer
            waiting, self._queue = self._queue, []
            _fail(waiting, "the hub is shutting down")
            raise
        finally:
            self._flusher = None

    def _take(self) -> list[tuple[Delivery, asyncio.Future[Stored]]]:
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        return batch

    async def _busy_period(self) -> None:
        """Flush batches until nothing waits, with one writer; a failed write refuses its batch and ends the period."""
        batch: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        opened = False
        try:
            async with self._writer() as write:
                opened = True
                first = True
                while await self._more():
                    if not first and len(self._queue) < GATHER_MIN and self.gather > 0:
                        await asyncio.sleep(self.gather)
                    first = False
                    batch = self._take()
                    self.flushes += 1
                    stored = _answers([d for d, _ in batch], await write(_unique(d for d, _ in batch)))
                    for (_d, fut), s in zip(batch, stored, strict=True):
                        if not fut.done():  # a caller that gave up (cancelled) needs no answer: its row is stored
                            fut.set_result(s)
                    batch = []
        except asyncio.CancelledError:
            _fail(batch, "the hub is shutting down")
            raise
        except Exception as exc:
            if not opened:
                batch = self._take()  # the database cannot be reached: the next batch is refused
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if not batch:  # every batch was answered; releasing the connection failed
                log.warning("intake connection not released cleanly", extra={"fields": {"error": error}})
                return
            log.warning(
                "inbox batch not stored; its deliveries are refused with 503 for the senders to retry",
                extra={"fields": {"deliveries": len(batch), "error": error}},
            )
            _fail(batch, f"the database refused the write ({type(exc).__name__})")

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[Writer]:
        """What writes a batch: on PostgreSQL one autocommit connection held for the busy period."""
        if not self._pg:
            yield lambda rows: _write_sqlite(self.store, rows)
            return
        async with self.store.autocommit() as conn:
            try:
                driver = (await conn.get_raw_connection()).driver_connection

                async def write(rows: list[Delivery]) -> Found:
                    # straight to the driver, without SQLAlchemy's begin/commit (no-ops in autocommit
                    # that cost 60 us a flush): the INSERT is its own transaction
                    return await _write_pg(driver, rows)

                yield write
            except BaseException:
                await conn.invalidate()  # the driver connection may be mid-statement: never reuse it
                raise


def _resolve(wake: asyncio.Future[bool]) -> None:
    if not wake.done():
        wake.set_result(False)


def _fail(batch: Sequence[tuple[Delivery, asyncio.Future[Stored]]], why: str) -> None:
    for _d, fut in batch:
        if not fut.done():
            fut.set_exception(
                IntakeUnavailable(f"the delivery was not stored: {why}; nothing was acknowledged, send it again")
            )


def _unique(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """The first delivery of each key (copies of one event in a batch make one row)."""
    first: dict[Key, Delivery] = {}
    for d in deliveries:
        first.setdefault(d.key, d)
    return list(first.values())


def _answers(deliveries: list[Delivery], found: Found) -> list[Stored]:
    """Each delivery's :class:`Stored`: the first copy of a new event is new, the others are duplicates."""
    seen: set[Key] = set()
    out: list[Stored] = []
    for d in deliveries:
        at, before = found[d.key]
        out.append(Stored(at, before or d.key in seen))
        seen.add(d.key)
    return out


async def _write_pg(driver: Any, rows: list[Delivery]) -> Found:
    """PostgreSQL (asyncpg connection in autocommit): insert the new rows, then read the others' ids."""
    inserted = await driver.fetch(
        _PG_INSERT,
        [d.id for d in rows],
        [d.connection for d in rows],
        [d.event_id for d in rows],
        [d.topic for d in rows],
        [d.object_key for d in rows],
        [d.source_ts for d in rows],
        [orjson.dumps(d.headers).decode() for d in rows],
        [d.body for d in rows],
        [d.received_at for d in rows],
    )
    found: Found = {(r["connection"], r["event_id"]): (r["id"], False) for r in inserted}
    missing = [d.key for d in rows if d.key not in found]
    if missing:
        there = await driver.fetch(_PG_EXISTING, [k[0] for k in missing], [k[1] for k in missing])
        found.update({(r["connection"], r["event_id"]): (r["id"], True) for r in there})
        _check_found(found, missing)
    return found


async def _write_sqlite(store: Store, rows: list[Delivery]) -> Found:
    """SQLite: insert the new rows and read the others' ids, in one transaction."""
    async with store.begin() as conn:
        found: Found = {k: (at, False) for k, at in (await _insert_sqlite(conn, rows)).items()}
        missing = [d.key for d in rows if d.key not in found]
        if missing:
            q = select(I.c.id, I.c.connection, I.c.event_id).where(tuple_(I.c.connection, I.c.event_id).in_(missing))
            found.update({(r.connection, r.event_id): (r.id, True) for r in (await conn.execute(q)).all()})
            _check_found(found, missing)
    return found


def _check_found(found: Found, keys: list[Key]) -> None:
    gone = [k for k in keys if k not in found]
    if gone:  # it conflicted on insert, so it was deleted since: the batch fails and its senders retry
        raise LookupError(f"inbox rows {gone[:3]} conflicted on insert but cannot be read back")


async def _insert_sqlite(conn: AsyncConnection, rows: list[Delivery]) -> dict[Key, str]:
    """Insert the rows whose key is not there yet; {key: id} of those inserted."""
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
