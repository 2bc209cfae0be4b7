"""Backorders over time: promise dates from expected receipts, and what happens past the age limit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import and_, insert, select, update

from hub.allocation import Backorder, ExpectedReceipt, expected_promises, expired_backorders
from hub.clock import now
from hub.model import Decision, OrderStatus, Promise
from hub.orders._locks import lock_order
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t

if TYPE_CHECKING:
    from hub.runtime import Hub


async def add_expected_receipt(hub: Hub, sku: str, location: str, quantity: int, expected_at: datetime) -> int:
    """Record incoming stock; backorders of the SKU get (new) promise dates."""
    hub.config.location(location)
    async with hub.store.begin() as conn:
        res = await conn.execute(
            insert(t.expected_receipts).values(
                sku=sku, location=location, quantity=quantity, expected_at=expected_at, received=False
            )
        )
        rid = int(res.inserted_primary_key[0]) if res.inserted_primary_key else 0
    await sweep(hub, skus=[sku])
    return rid


async def _load(hub: Hub, skus: list[str] | None) -> tuple[list[Backorder], list[ExpectedReceipt]]:
    b, o = t.backorders, t.orders
    async with hub.store.connect() as conn:
        q = select(b.c.order_id, b.c.line_no, b.c.sku, b.c.quantity, b.c.created_at, b.c.priority).join(
            o, o.c.id == b.c.order_id
        )
        if skus:
            q = q.where(b.c.sku.in_(skus))
        rows = (await conn.execute(q)).all()
        rq = select(t.expected_receipts).where(t.expected_receipts.c.received.is_(False))
        if skus:
            rq = rq.where(t.expected_receipts.c.sku.in_(skus))
        receipts = [
            ExpectedReceipt(r.sku, r.location, r.quantity, r.expected_at) for r in (await conn.execute(rq)).all()
        ]
    backorders = [
        Backorder(
            order_id=r.order_id,
            line_no=r.line_no,
            sku=r.sku,
            quantity=r.quantity,
            placed_at=r.created_at,
            value=Decimal(r.priority or 0),
        )
        for r in rows
    ]
    return backorders, receipts


async def sweep(hub: Hub, skus: list[str] | None = None) -> dict[str, int]:
    """Give backorders their promise date from expected receipts; flag (or cancel, per
    ``[allocation] backorder_expired_action``) backorders older than ``backorder_max_age_days``."""
    from hub.orders.service import cancel

    cfg = hub.config.allocation
    backorders, receipts = await _load(hub, skus)
    promised = 0
    per_order: dict[str, datetime | None] = {}
    for bo, when in expected_promises(backorders, receipts, cfg.backorder_priority):
        cur = per_order.get(bo.order_id, now())
        per_order[bo.order_id] = None if when is None or cur is None else max(cur, when)
    for order_id, when in per_order.items():
        if when is None:
            continue
        async with hub.store.begin() as conn:
            await lock_order(conn, order_id)
            order = await repo.get_order(conn, order_id)
            if order.promise is not None and order.promise.ship_by == when:
                continue
            order = order.model_copy(
                update={
                    "promise": Promise(ship_by=when, deliver_by=order.promise.deliver_by if order.promise else None),
                    "decisions": [
                        *order.decisions,
                        Decision(
                            at=now(),
                            kind="backorder_promise",
                            summary=f"expected receipts cover the backorder by {when.date()}",
                        ),
                    ],
                }
            )
            await repo.save_order(conn, order)
            await outbox.emit(conn, "order.updated", order, object_id=order.id, connection=order.connection)
            promised += 1
    flagged = cancelled = 0
    expired = {b.order_id for b in expired_backorders(backorders, now(), cfg.backorder_max_age_days)}
    for order_id in sorted(expired):
        async with hub.store.begin() as conn:
            await lock_order(conn, order_id)
            order = await repo.get_order(conn, order_id)
            if order.status not in (OrderStatus.BACKORDERED, OrderStatus.PARTIALLY_ALLOCATED):
                continue
            if cfg.backorder_expired_action == "cancel":
                await cancel(
                    hub,
                    conn,
                    order,
                    reason=f"backordered longer than {cfg.backorder_max_age_days} days",
                    actor="backorder-policy",
                    lines={int(k): v for k, v in order.backordered.items()},
                )
                cancelled += 1
                continue
            row = (
                await conn.execute(select(t.backorders.c.flagged_at).where(t.backorders.c.order_id == order_id))
            ).first()
            if row is not None and row.flagged_at is not None:
                continue
            await conn.execute(
                update(t.backorders).where(and_(t.backorders.c.order_id == order_id)).values(flagged_at=now())
            )
            order = order.model_copy(
                update={
                    "decisions": [
                        *order.decisions,
                        Decision(
                            at=now(),
                            kind="backorder_expired",
                            summary=f"backordered longer than {cfg.backorder_max_age_days} days",
                        ),
                    ]
                }
            )
            await repo.save_order(conn, order)
            await repo.add_timeline(conn, order.id, "exception", "backorder past its age limit", str(order.status))
            await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == order.id).values(had_exception=True))
            await outbox.emit(conn, "order.backordered", order, object_id=order.id, connection=order.connection)
            flagged += 1
    return {"promised": promised, "flagged": flagged, "cancelled": cancelled}
