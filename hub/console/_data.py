"""Read models for the console pages: straight queries on the store, no HTTP round trips."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import func, select

from hub import kpis
from hub.clock import now
from hub.store import tables as t

#: Queue depth samples kept in Redis for the dashboard's chart (one per DEPTH_SAMPLE_EVERY seconds).
DEPTH_SAMPLES = 240
DEPTH_SAMPLE_EVERY = 15.0
#: The window the dashboard's KPIs are computed over.
KPI_WINDOW = timedelta(days=30)


def per_minute(times: list[datetime], end: datetime, minutes: int = 60) -> list[int]:
    """Counts of ``times`` per minute over the ``minutes`` before ``end``, oldest minute first."""
    start = end - timedelta(minutes=minutes)
    counts = [0] * minutes
    for ts in times:
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=end.tzinfo)
        if start <= ts < end:
            counts[min(int((ts - start).total_seconds() // 60), minutes - 1)] += 1
    return counts


def per_hour(times: list[datetime], end: datetime, hours: int = 24) -> list[int]:
    """Counts of ``times`` per hour over the ``hours`` before ``end``, oldest hour first."""
    return [sum(x) for x in _chunks(per_minute(times, end, hours * 60), 60)]


def _chunks(xs: list[int], n: int) -> list[list[int]]:
    return [xs[i : i + n] for i in range(0, len(xs), n)]


@dataclass
class Dashboard:
    """Everything the dashboard shows, computed at request time."""

    at: datetime
    orders_per_minute: list[int]
    orders_last_hour: int
    orders_by_status: dict[str, int]
    depth: dict[str, int]
    oldest_age_s: dict[str, float]
    lag_s: float
    open_failures: int
    failures_per_hour: list[int]
    depth_history: dict[str, list[float]]
    kpis: dict[str, Any]


async def dashboard(hub: Any) -> Dashboard:
    """Throughput, queues, lag, failures and KPIs."""
    from hub.sync.stats import depth as queue_depth

    ts = now()
    d = await queue_depth(hub)
    async with hub.store.connect() as conn:
        created = [
            r[0]
            for r in (
                await conn.execute(
                    select(t.orders.c.created_at).where(t.orders.c.created_at >= ts - timedelta(hours=1))
                )
            ).all()
        ]
        by_status = {
            str(s): int(n)
            for s, n in (await conn.execute(select(t.orders.c.status, func.count()).group_by(t.orders.c.status))).all()
        }
        d_oldest = (
            await conn.execute(
                select(func.min(t.webhook_deliveries.c.created_at)).where(
                    t.webhook_deliveries.c.status.in_(("pending", "delivering"))
                )
            )
        ).scalar_one()
        open_failures = int(
            (
                await conn.execute(
                    select(func.count()).select_from(t.sync_failures).where(t.sync_failures.c.status == "open")
                )
            ).scalar_one()
        )
        failed_at = [
            r[0]
            for r in (
                await conn.execute(
                    select(t.sync_failures.c.created_at).where(t.sync_failures.c.created_at >= ts - timedelta(hours=24))
                )
            ).all()
        ]
        facts = await kpi_facts(conn, ts - KPI_WINDOW)
    if d_oldest is not None and d_oldest.tzinfo is None:
        d_oldest = d_oldest.replace(tzinfo=ts.tzinfo)
    oldest = {
        "inbox": d.inbox_oldest_s,
        "sync_jobs": d.jobs_oldest_s,
        "webhook_deliveries": (ts - d_oldest).total_seconds() if d_oldest else 0.0,
    }
    depth = {"inbox": d.inbox, "sync_jobs": d.jobs, "webhook_deliveries": d.deliveries}
    history = await depth_history(hub, depth)
    return Dashboard(
        at=ts,
        orders_per_minute=per_minute(created, ts),
        orders_last_hour=len(created),
        orders_by_status=dict(sorted(by_status.items())),
        depth=depth,
        oldest_age_s=oldest,
        lag_s=max(oldest.values()),
        open_failures=open_failures,
        failures_per_hour=per_hour(failed_at, ts),
        depth_history=history,
        kpis=kpis.summary(facts),
    )


async def kpi_facts(conn: Any, since: datetime) -> list[kpis.OrderFact]:
    """Fulfilment facts of orders placed since ``since`` (the ``kpi_facts`` table)."""
    k = t.kpi_facts
    rows = (await conn.execute(select(k).where(k.c.placed_at >= since).limit(200_000))).all()
    return [
        kpis.OrderFact(
            order_id=r.order_id,
            placed_at=r.placed_at,
            shipped_at=r.shipped_at,
            delivered_at=r.delivered_at,
            promised_ship_by=r.promised_ship_by,
            promised_deliver_by=r.promised_deliver_by,
            had_exception=bool(r.had_exception),
            complete=bool(r.complete),
            shipments=int(r.shipments or 0),
            cost_to_serve=Decimal(r.cost_to_serve) if r.cost_to_serve is not None else None,
        )
        for r in rows
    ]


async def depth_history(hub: Any, current: dict[str, int]) -> dict[str, list[float]]:
    """Queue depth over time: a sample is added (at most every DEPTH_SAMPLE_EVERY s, shared by all
    processes through Redis) and the kept samples are returned per queue, oldest first."""
    key = hub.key("console", "depth_samples")
    gate = hub.key("console", "depth_sample_gate")
    if await hub.redis.set(gate, b"1", nx=True, px=int(DEPTH_SAMPLE_EVERY * 1000)):
        await hub.redis.lpush(key, orjson.dumps({"t": time.time(), **current}))
        await hub.redis.ltrim(key, 0, DEPTH_SAMPLES - 1)
    raw = await hub.redis.lrange(key, 0, DEPTH_SAMPLES - 1)
    samples = [orjson.loads(x) for x in reversed(raw)]
    return {q: [float(s.get(q, 0)) for s in samples] for q in current}


def age(seconds: float) -> str:
    """``42 s``, ``3 min``, ``2.5 h``, ``4.0 d``: a duration for people."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


async def money_trail(conn: Any, order: Any) -> dict[str, Any]:
    """Paid, refunded, disputed and outstanding amounts of an order, with the refund and dispute rows."""
    from hub.model import Money, PaymentStatus

    cur = order.currency
    unpaid = {PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.VOIDED}
    paid = Money.zero(cur) if order.payment_status in unpaid else order.totals.total
    refunds = (
        await conn.execute(select(t.refunds).where(t.refunds.c.order_id == order.id).order_by(t.refunds.c.created_at))
    ).all()
    disputes = (
        await conn.execute(
            select(t.payment_disputes)
            .where(t.payment_disputes.c.order_id == order.id)
            .order_by(t.payment_disputes.c.id)
        )
    ).all()
    refunded = sum((Decimal(r.amount) for r in refunds if r.status not in ("failed", "cancelled")), Decimal(0))
    disputed = sum((Decimal(d.amount) for d in disputes if d.status != "won"), Decimal(0))
    return {
        "paid": paid.amount,
        "refunded": refunded,
        "disputed": disputed,
        "outstanding": paid.amount - refunded - disputed,
        "currency": cur,
        "refunds": [
            {"id": r.id, "amount": Decimal(r.amount), "status": r.status, "at": r.created_at, "return_id": r.return_id}
            for r in refunds
        ],
        "disputes": [
            {"kind": d.kind, "amount": Decimal(d.amount), "status": d.status, "at": d.created_at} for d in disputes
        ],
    }


async def order_logistics(conn: Any, order_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The order's fulfilment requests and shipments (their stored JSON plus status)."""
    fuls = (
        await conn.execute(
            select(t.fulfillments).where(t.fulfillments.c.order_id == order_id).order_by(t.fulfillments.c.created_at)
        )
    ).all()
    shps = (
        await conn.execute(
            select(t.shipments).where(t.shipments.c.order_id == order_id).order_by(t.shipments.c.shipped_at)
        )
    ).all()
    return (
        [{**dict(f.data), "status": f.status, "connection": f.connection, "external_id": f.external_id} for f in fuls],
        [{**dict(s.data), "status": s.status} for s in shps],
    )


async def skus(conn: Any, prefix: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """SKUs with their totals over all locations (for browsing the inventory page)."""
    L = t.inventory_levels
    q = (
        select(L.c.sku, func.sum(L.c.on_hand), func.sum(L.c.reserved), func.sum(L.c.safety_stock))
        .group_by(L.c.sku)
        .order_by(L.c.sku)
        .limit(limit)
    )
    if prefix:
        q = q.where(L.c.sku.startswith(prefix, autoescape=True))
    return [
        {"sku": s, "on_hand": int(oh or 0), "reserved": int(rs or 0), "safety_stock": int(ss or 0)}
        for s, oh, rs, ss in (await conn.execute(q)).all()
    ]


async def recent_ledger(conn: Any, sku: str, limit: int = 50) -> list[Any]:
    """The newest ledger rows of a SKU, newest first."""
    lg = t.inventory_ledger
    return list((await conn.execute(select(lg).where(lg.c.sku == sku).order_by(lg.c.id.desc()).limit(limit))).all())
