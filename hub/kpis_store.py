"""Loading KPI facts from the store for :mod:`hub.kpis` (which is pure).

One :class:`~hub.kpis.OrderFact` per ``kpi_facts`` row, selected by the order's ``placed_at``.
The refund times (``refund_requested_at``, ``refund_issued_at``) come from migration 0002; they are
reached through :data:`KPI_REFUND_TIMES` until ``hub.store.tables.kpi_facts`` declares them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, column, literal_column, select, table, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import TableClause

from hub.errors import InputError
from hub.kpis import OrderFact
from hub.store import tables as t
from hub.store._types import UTCDateTime

__all__ = ["KPI_REFUND_TIMES", "load_facts", "mark_refund_issued", "mark_refund_requested", "parse_period"]


def _refund_times_table() -> TableClause:
    if "refund_issued_at" in t.kpi_facts.c and "refund_requested_at" in t.kpi_facts.c:
        return t.kpi_facts
    return table(
        "kpi_facts",
        column("order_id"),
        column("refund_requested_at", UTCDateTime()),
        column("refund_issued_at", UTCDateTime()),
    )


#: ``kpi_facts`` with its refund-time columns (the declared table once it has them, else a light clause).
KPI_REFUND_TIMES: TableClause = _refund_times_table()


async def mark_refund_requested(conn: AsyncConnection, order_id: str, at: datetime) -> None:
    """Record the order's first refund request (later requests keep the first time)."""
    k = KPI_REFUND_TIMES
    await conn.execute(
        update(k)
        .where(and_(k.c.order_id == order_id, k.c.refund_requested_at.is_(None)))
        .values(refund_requested_at=at)
    )


async def mark_refund_issued(conn: AsyncConnection, order_id: str, at: datetime) -> None:
    """Record the order's first issued refund; a refund without a request counts as requested then too."""
    k = KPI_REFUND_TIMES
    await conn.execute(
        update(k).where(and_(k.c.order_id == order_id, k.c.refund_issued_at.is_(None))).values(refund_issued_at=at)
    )
    await mark_refund_requested(conn, order_id, at)


async def load_facts(conn: AsyncConnection, start: datetime, end: datetime) -> list[OrderFact]:
    """Facts of the orders placed in ``[start, end)``, oldest first."""
    k = t.kpi_facts
    q = (
        select(k, _column("refund_requested_at").label("rq_at"), _column("refund_issued_at").label("ri_at"))
        .where(and_(k.c.placed_at >= start, k.c.placed_at < end))
        .order_by(k.c.placed_at, k.c.order_id)
    )
    rows = (await conn.execute(q)).all()
    return [_fact(row) for row in rows]


def _column(name: str) -> ColumnElement[Any]:
    if name in t.kpi_facts.c:
        return t.kpi_facts.c[name]
    return literal_column(f"kpi_facts.{name}", UTCDateTime())


def _fact(row: Any) -> OrderFact:
    cost = row.cost_to_serve
    return OrderFact(
        order_id=row.order_id,
        placed_at=row.placed_at,
        shipped_at=row.shipped_at,
        delivered_at=row.delivered_at,
        promised_ship_by=row.promised_ship_by,
        promised_deliver_by=row.promised_deliver_by,
        had_exception=bool(row.had_exception),
        complete=bool(row.complete),
        shipments=int(row.shipments or 0),
        cost_to_serve=Decimal(cost) if cost is not None else None,
        refund_requested_at=row.rq_at,
        refund_issued_at=row.ri_at,
    )


def _parse_bound(value: str, name: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            ts = datetime.combine(day, time(), tzinfo=UTC)
            return ts + timedelta(days=1) if end else ts
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{name}={value!r} is not a date (2026-11-01) or an ISO-8601 time (2026-11-01T00:00:00Z)",
            field=name,
            value=value,
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_period(
    start: str | None, end: str | None, now: datetime, *, default_days: int = 30
) -> tuple[datetime, datetime]:
    """``from``/``to`` query values as ``[start, end)``: a date-only ``to`` includes that whole day.

    Without ``to`` the period ends now; without ``from`` it starts ``default_days`` before its end.
    """
    hi = _parse_bound(end, "to", end=True) if end else now
    lo = _parse_bound(start, "from", end=False) if start else hi - timedelta(days=default_days)
    if lo >= hi:
        raise InputError(
            f"the period is empty: from ({lo.isoformat()}) must be before to ({hi.isoformat()})",
            **{"from": lo.isoformat(), "to": hi.isoformat()},
        )
    return lo, hi
