"""Order persistence: idempotent upsert keyed by (connection, external_id)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import Conflict, NotFound
from hub.model import Order
from hub.store import tables as t
from hub.store._any import DIALECTS, one_of, one_of_param
from hub.store._pending import flush_pending, pending, write
from hub.store._upsert import insert_ignore
from hub.store.engine import document

ORDERS = t.orders


@dataclass
class Prefetched:
    """What a transaction applying many orders learnt about them in two queries (:func:`prefetch`)."""

    absent: set[tuple[str, str]]  # (connection, external_id) not stored yet
    email_counts: dict[str, int]  # orders per email hash created in the last day, kept up to date


def _prefetch_statements(dialect: str) -> dict[str, Any]:
    return {
        "known": select(ORDERS.c.connection, ORDERS.c.external_id).where(
            and_(
                one_of_param(ORDERS.c.connection, "b_connections", dialect),
                one_of_param(ORDERS.c.external_id, "b_ids", dialect),
            )
        ),
        "emails": select(ORDERS.c.email_hash, func.count())
        .where(
            and_(one_of_param(ORDERS.c.email_hash, "b_hashes", dialect), ORDERS.c.created_at >= bindparam("b_since"))
        )
        .group_by(ORDERS.c.email_hash),
    }


# built once per dialect: a chunk of orders runs them both
_PREFETCH = {d: _prefetch_statements(d) for d in DIALECTS}


async def prefetch(conn: AsyncConnection, incoming: list[Order]) -> None:
    """Before applying ``incoming`` in this transaction (inside ``Store.begin``, with their entity
    locks held): which are new, and the velocity counts of their emails. New orders are then
    written with the transaction's other rows at its end, and screening asks no query per order.
    A concurrent writer of the same order makes the final insert fail, and the caller applies the
    orders again one by one."""
    buf = pending(conn)
    if buf is None or not incoming:
        return
    wanted = {(o.connection, o.external_id) for o in incoming}
    stmts = _PREFETCH[conn.dialect.name]
    rows = (
        await conn.execute(
            stmts["known"], {"b_connections": list({c for c, _ in wanted}), "b_ids": list({e for _, e in wanted})}
        )
    ).all()
    absent = wanted - {(r.connection, r.external_id) for r in rows}
    hashes = {h for h in (email_hash(o) for o in incoming) if h}
    counts: dict[str, int] = dict.fromkeys(hashes, 0)
    if hashes:
        params = {"b_hashes": list(hashes), "b_since": now() - timedelta(days=1)}
        for h, n in (await conn.execute(stmts["emails"], params)).all():
            counts[h] = int(n)
    buf.facts["orders"] = Prefetched(absent, counts)


def prefetched(conn: AsyncConnection) -> Prefetched | None:
    buf = pending(conn)
    found: Prefetched | None = buf.facts.get("orders") if buf is not None else None
    return found


@dataclass(frozen=True)
class UpsertResult:
    """What :func:`upsert_order` did: ``created``, ``updated`` or ``unchanged`` (stale or identical)."""

    order: Order
    outcome: str
    previous: Order | None = None

    @property
    def created(self) -> bool:
        return self.outcome == "created"


def email_hash(order: Order) -> str | None:
    """A stable hash of the customer's email (for velocity checks without storing PII twice)."""
    email = order.customer.email if order.customer else None
    return hashlib.sha256(email.strip().lower().encode()).hexdigest() if email else None


def _row(order: Order, ts: datetime, *, lazy: bool = False) -> dict[str, Any]:
    """The orders row of ``order``; ``lazy`` keeps the model itself as ``data`` (a buffered row:
    serialised once, when it is written, however often the transaction changes it)."""
    return {
        "id": order.id,
        "connection": order.connection,
        "external_id": order.external_id,
        "status": str(order.status),
        "currency": order.currency,
        "total": order.totals.total.amount,
        "email_hash": email_hash(order),
        "placed_at": order.placed_at,
        "source_updated_at": order.source_updated_at,
        "data": order if lazy else document(order),
        "updated_at": ts,
    }


# hot statements, built once (an insert() costs tens of microseconds to construct)
_INSERT_ORDER = insert(ORDERS)
_INSERT_LINE = insert(t.order_lines)
_INSERT_TIMELINE = insert(t.order_events)


def _serialise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "data": document(r["data"])} if isinstance(r["data"], Order) else r for r in rows]


async def _write_lines(conn: AsyncConnection, order: Order, *, new: bool = False) -> None:
    if not new:
        await conn.execute(delete(t.order_lines).where(t.order_lines.c.order_id == order.id))
    for ln in order.lines:
        row = {
            "order_id": order.id,
            "line_no": ln.line_no,
            "sku": ln.sku,
            "quantity": ln.quantity,
            "cancelled_quantity": ln.cancelled_quantity,
            "unit_price": ln.unit_price.amount,
            "currency": ln.unit_price.currency,
        }
        await write(conn, _INSERT_LINE, row)


async def upsert_order(
    conn: AsyncConnection, incoming: Order, *, lock: Callable[[AsyncConnection, str], Awaitable[None]] | None = None
) -> UpsertResult:
    """Insert the order, or update the stored one with the same (connection, external_id).

    Safe under concurrency: the insert is ``ON CONFLICT DO NOTHING`` and the loser of a race
    takes the update path. An update whose ``source_updated_at`` is older than the stored one
    is ignored (``unchanged``), so out-of-order deliveries end in the newest state. The hub's
    own fields (id, status, holds, allocations, decisions) are kept from the stored order.
    """
    ts = now()
    known = prefetched(conn)
    key = (incoming.connection, incoming.external_id)
    if known is not None and key in known.absent:
        known.absent.discard(key)
        lazy = {**_row(incoming, ts, lazy=True), "created_at": ts, "version": 1}  # serialised when written
        if lazy["email_hash"] in known.email_counts:
            known.email_counts[lazy["email_hash"]] += 1
        await write(conn, _INSERT_ORDER, lazy, prepare=_serialise)
        await _write_lines(conn, incoming, new=True)
        return UpsertResult(incoming, "created")
    row = _row(incoming, ts)
    res = await conn.execute(
        insert_ignore(conn, ORDERS, ["connection", "external_id"]).values(**row, created_at=ts, version=1)
    )
    if res.rowcount == 1:
        await _write_lines(conn, incoming, new=True)
        return UpsertResult(incoming, "created")
    if lock is not None:
        # take the caller's lock on the existing order before reading it (same order as every other writer)
        existing = (
            await conn.execute(
                select(ORDERS.c.id).where(
                    and_(ORDERS.c.connection == incoming.connection, ORDERS.c.external_id == incoming.external_id)
                )
            )
        ).one()
        await lock(conn, existing.id)
    stored = await get_by_external(conn, incoming.connection, incoming.external_id, for_update=True)
    assert stored is not None
    if (
        stored.source_updated_at
        and incoming.source_updated_at
        and incoming.source_updated_at <= stored.source_updated_at
    ):
        return UpsertResult(stored, "unchanged", stored)
    merged = incoming.model_copy(
        update={
            "id": stored.id,
            "status": stored.status,
            "holds": stored.holds,
            "allocations": stored.allocations,
            "backordered": stored.backordered,
            "decisions": stored.decisions,
            "promise": stored.promise,
        }
    )
    if merged.to_json() == stored.to_json():
        return UpsertResult(stored, "unchanged", stored)
    await save_order(conn, merged)
    await _write_lines(conn, merged)
    return UpsertResult(merged, "updated", stored)


async def save_order(conn: AsyncConnection, order: Order, expected_version: int | None = None) -> None:
    """Write the hub's current view of ``order``; with ``expected_version`` a lost race raises Conflict."""
    buf = pending(conn)
    waiting = [r for r in buf.rows("orders") if r["id"] == order.id] if buf is not None else []
    if waiting:  # created in this transaction and not written yet: change the row to be written
        if expected_version is not None and waiting[0]["version"] != expected_version:
            raise Conflict(f"order {order.id} was changed concurrently; reload and retry", order_id=order.id)
        values = _row(order, now(), lazy=True)
        values.pop("id")
        waiting[0].update(values)
        return
    values = _row(order, now())
    values.pop("id")
    q = update(ORDERS).where(ORDERS.c.id == order.id)
    if expected_version is not None:
        q = q.where(ORDERS.c.version == expected_version)
    res = await conn.execute(q.values(**values, version=ORDERS.c.version + 1))
    if res.rowcount != 1:
        if expected_version is not None:
            raise Conflict(f"order {order.id} was changed concurrently; reload and retry", order_id=order.id)
        raise NotFound(f"order {order.id} does not exist", order_id=order.id)


async def get_order(conn: AsyncConnection, order_id: str, *, for_update: bool = False) -> Order:
    q = select(ORDERS.c.data).where(ORDERS.c.id == order_id)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    if row is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    return Order.from_stored(row.data)


async def get_orders(conn: AsyncConnection, order_ids: Iterable[str]) -> dict[str, Order]:
    """Orders by id (those that exist), in one query."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = (await conn.execute(select(ORDERS.c.data).where(one_of(conn, ORDERS.c.id, ids)))).all()
    orders = [Order.from_stored(r.data) for r in rows]
    return {o.id: o for o in orders}


async def get_version(conn: AsyncConnection, order_id: str) -> int:
    row = (await conn.execute(select(ORDERS.c.version).where(ORDERS.c.id == order_id))).first()
    if row is None:
        raise NotFound(f"order {order_id} does not exist", order_id=order_id)
    return int(row.version)


async def get_by_external(
    conn: AsyncConnection, connection: str, external_id: str, *, for_update: bool = False
) -> Order | None:
    q = select(ORDERS.c.data).where(and_(ORDERS.c.connection == connection, ORDERS.c.external_id == external_id))
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    return Order.from_stored(row.data) if row else None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()


async def list_orders(
    conn: AsyncConnection,
    *,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
    connection: str | None = None,
    external_id: str | None = None,
) -> tuple[list[Order], str | None]:
    """Newest first, keyset-paginated by id (ids sort by creation time)."""
    q = select(ORDERS.c.id, ORDERS.c.data).order_by(ORDERS.c.id.desc()).limit(limit + 1)
    if cursor:
        q = q.where(ORDERS.c.id < decode_cursor(cursor))
    if status:
        q = q.where(ORDERS.c.status == status)
    if connection:
        q = q.where(ORDERS.c.connection == connection)
    if external_id:
        q = q.where(ORDERS.c.external_id == external_id)
    rows = (await conn.execute(q)).all()
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return [Order.from_stored(r.data) for r in rows[:limit]], nxt


async def add_timeline(
    conn: AsyncConnection, order_id: str, kind: str, detail: str | None = None, status: str | None = None
) -> None:
    """Append to the order's timeline (shown by the console and the API)."""
    row = {"order_id": order_id, "at": now(), "kind": kind, "detail": detail, "status": status}
    await write(conn, _INSERT_TIMELINE, row)


async def timeline(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    await flush_pending(conn)
    rows = (
        await conn.execute(
            select(t.order_events).where(t.order_events.c.order_id == order_id).order_by(t.order_events.c.id)
        )
    ).all()
    return [{"at": r.at.isoformat(), "kind": r.kind, "status": r.status, "detail": r.detail} for r in rows]
