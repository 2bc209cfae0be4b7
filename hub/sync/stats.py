"""Queue depth, oldest age and lag, for back-pressure and /metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import metrics
from hub.clock import now
from hub.store import tables as t

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass
class Depth:
    inbox: int
    jobs: int
    deliveries: int
    inbox_oldest_s: float
    jobs_oldest_s: float

    @property
    def total(self) -> int:
        return self.inbox + self.jobs


async def open_rows(
    conn: AsyncConnection, table: Table, statuses: tuple[str, ...], since: ColumnElement[Any]
) -> tuple[int, datetime | None]:
    """How many rows of a queue table are in ``statuses``, and the least ``since`` among them.

    One query per status: each reads the partial index of its status (``status = 'pending'``...),
    where ``status IN (...)`` read the whole table (neither PostgreSQL nor SQLite matches a list
    against a one-value index predicate), and the inbox keeps every item it ever received."""
    count, oldest = 0, None
    for status in statuses:
        n, first = (await conn.execute(select(func.count(), func.min(since)).where(table.c.status == status))).one()
        count += int(n)
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return count, oldest


async def depth(hub: Hub) -> Depth:
    ts = now()
    async with hub.store.connect() as conn:
        i = await open_rows(conn, t.inbox, ("pending", "processing"), t.inbox.c.received_at)
        j = await open_rows(conn, t.sync_jobs, ("pending", "running"), t.sync_jobs.c.created_at)
        d = (
            await conn.execute(
                select(func.count())
                .select_from(t.webhook_deliveries)
                .where(t.webhook_deliveries.c.status.in_(("pending", "delivering")))
            )
        ).scalar_one()
    return Depth(
        inbox=int(i[0]),
        jobs=int(j[0]),
        deliveries=int(d),
        inbox_oldest_s=(ts - i[1]).total_seconds() if i[1] else 0.0,
        jobs_oldest_s=(ts - j[1]).total_seconds() if j[1] else 0.0,
    )


async def cached_depth(hub: Hub, max_age: float = 1.0) -> Depth:
    """:func:`depth`, computed at most once per ``max_age`` seconds per process."""
    cached = hub.state.get("depth_cache")
    if cached and time.monotonic() - cached[0] < max_age:
        return cached[1]  # type: ignore[no-any-return]
    d = await depth(hub)
    hub.state["depth_cache"] = (time.monotonic(), d)
    return d


async def refresh_gauges(hub: Hub) -> None:
    d = await depth(hub)
    metrics.queue_depth.labels("inbox").set(d.inbox)
    metrics.queue_depth.labels("sync_jobs").set(d.jobs)
    metrics.queue_depth.labels("webhook_deliveries").set(d.deliveries)
    metrics.oldest_age.labels("inbox").set(d.inbox_oldest_s)
    metrics.oldest_age.labels("sync_jobs").set(d.jobs_oldest_s)
    async with hub.store.connect() as conn:
        rows = (await conn.execute(select(t.orders.c.status, func.count()).group_by(t.orders.c.status))).all()
    counts: dict[str, int] = {str(s): int(n) for s, n in rows}
    from hub.model import OrderStatus

    for status in OrderStatus:
        metrics.orders_by_status.labels(str(status)).set(counts.get(str(status), 0))
