"""Queue depth, oldest age and lag, for back-pressure and /metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

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


async def depth(hub: Hub) -> Depth:
    ts = now()
    async with hub.store.connect() as conn:
        i = (
            await conn.execute(
                select(func.count(), func.min(t.inbox.c.received_at)).where(
                    t.inbox.c.status.in_(("pending", "processing"))
                )
            )
        ).one()
        j = (
            await conn.execute(
                select(func.count(), func.min(t.sync_jobs.c.created_at)).where(
                    t.sync_jobs.c.status.in_(("pending", "running"))
                )
            )
        ).one()
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
