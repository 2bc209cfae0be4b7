"""Applying canonical messages to the hub: orders in, allocation, fulfilment, shipments, tracking.

Every function here takes the caller's transaction: the order change, its reservations,
its sync jobs and its partner events commit together or not at all.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import metrics
from hub.clock import now
from hub.errors import Conflict, IllegalTransition, InsufficientStock, NotFound, RetriableError
from hub.logging import get_logger
from hub.model import (
    Allocation,
    AllocationStatus,
    Decision,
    FulfillmentLine,
    FulfillmentRequest,
    FulfillmentStatus,
    Hold,
    HoldKind,
    Order,
    OrderStatus,
    PaymentStatus,
    Shipment,
    TrackingEvent,
    TrackingStatus,
    new_id,
)
from hub.orders._locks import lock_order
from hub.orders.stock import stock_changed
from hub.plugins import (
    Capability,
    FulfillmentException,
    Ignored,
    InventoryCounted,
    Kind,
    Message,
    OrderCancelled,
    OrderUpserted,
    RefundCreated,
    ReturnRequested,
    ShipmentConfirmed,
    TrackingUpdated,
)
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from hub.store._pending import pending, write
from hub.store.engine import document
from hub.store.inventory import Reservation
from hub.sync import jobs

if TYPE_CHECKING:
    from hub.runtime import Hub

log = get_logger("hub.orders")
PAYMENT_OK = {
    PaymentStatus.PAID,
    PaymentStatus.AUTHORIZED,
    PaymentStatus.PARTIALLY_PAID,
    PaymentStatus.PARTIALLY_REFUNDED,
}
MAX_ALLOCATION_TRIES = 50


# ----------------------------------------------------------------------------- entry point
# hot statements, built once (an insert() costs tens of microseconds to construct)
_INSERT_FULFILLMENT = insert(t.fulfillments)
_INSERT_ALLOCATION = insert(t.allocations)
_INSERT_BACKORDER = insert(t.backorders)
_INSERT_KPI = insert(t.kpi_facts)


async def apply_messages(
    hub: Hub, conn: AsyncConnection, connection_id: str, messages: list[Message], *, source: str
) -> None:
    """Apply what one inbound delivery said, in order."""
    for msg in messages:
        if isinstance(msg, OrderUpserted):
            await ingest_order(hub, conn, msg.order)
        elif isinstance(msg, OrderCancelled):
            await channel_cancelled(hub, conn, connection_id, msg)
        elif isinstance(msg, ShipmentConfirmed):
            await confirm_shipment(hub, conn, connection_id, msg)
        elif isinstance(msg, TrackingUpdated):
            await tracking_updated(hub, conn, connection_id, msg.event)
        elif isinstance(msg, RefundCreated):
            from hub.returns.service import channel_refund

            await channel_refund(hub, conn, connection_id, msg)
        elif isinstance(msg, ReturnRequested):
            from hub.returns.service import channel_return

            await channel_return(hub, conn, connection_id, msg)
        elif isinstance(msg, InventoryCounted):
            await inventory_counted(hub, conn, msg, ref=source)
        elif isinstance(msg, FulfillmentException):
            await fulfillment_exception(hub, conn, connection_id, msg)
        elif isinstance(msg, Ignored):
            continue
        else:  # pragma: no cover - the Message union is closed
            raise TypeError(f"unknown message {type(msg).__name__}")


async def _timeline(conn: AsyncConnection, order: Order, kind: str, detail: str | None = None) -> None:
    await repo.add_timeline(conn, order.id, kind, detail, str(order.status))


def _decision(kind: str, summary: str, **details: Any) -> Decision:
    return Decision(at=now(), kind=kind, summary=summary, details=details)


# ----------------------------------------------------------------------------- orders in
async def ingest_order(hub: Hub, conn: AsyncConnection, incoming: Order) -> Order:
    """Create or update an order from its source; new orders are screened, then allocated."""
    # a new order's id is known to nobody else until commit, so only an existing one is locked
    res = await repo.upsert_order(conn, incoming, lock=lock_order)
    order = res.order
    if res.outcome == "unchanged":
        return order
    if res.created:
        await _kpi_insert(conn, order)
        await _timeline(conn, order, "received", f"from {order.connection}")
        await outbox.emit(conn, "order.created", order, object_id=order.id, connection=order.connection)
        return await screen_and_allocate(hub, conn, order)
    await _timeline(conn, order, "updated", f"from {order.connection}")
    await outbox.emit(conn, "order.updated", order, object_id=order.id, connection=order.connection)
    prev = res.previous
    # a payment that became authorised releases the payment hold by itself
    if prev is not None and order.status == OrderStatus.ON_HOLD and order.payment_status in PAYMENT_OK:
        payment_holds = [h for h in order.active_holds if h.kind == HoldKind.PAYMENT]
        if payment_holds and len(payment_holds) == len(order.active_holds):
            return await release_hold(hub, conn, order, actor="payment", kinds={HoldKind.PAYMENT})
    return order


async def screen_and_allocate(hub: Hub, conn: AsyncConnection, order: Order) -> Order:
    holds = await _screen(hub, conn, order)
    if holds:
        order = order.model_copy(update={"holds": [*order.holds, *holds]}).transition(OrderStatus.ON_HOLD)
        order = order.model_copy(
            update={
                "decisions": [
                    *order.decisions,
                    _decision("hold", "; ".join(h.reason for h in holds), kinds=[str(h.kind) for h in holds]),
                ]
            }
        )
        await repo.save_order(conn, order)
        await _kpi_set(conn, order.id, had_exception=True)
        await _timeline(conn, order, "on_hold", "; ".join(h.reason for h in holds))
        await outbox.emit(conn, "order.on_hold", order, object_id=order.id, connection=order.connection)
        return order
    return await allocate(hub, conn, order)


async def _screen(hub: Hub, conn: AsyncConnection, order: Order) -> list[Hold]:
    from hub.holds import screen

    email_hash = repo.email_hash(order)
    count = 0
    known = repo.prefetched(conn)
    if email_hash and known is not None and email_hash in known.email_counts:
        count = known.email_counts[email_hash]
    elif email_hash:
        since = now() - timedelta(days=1)
        count = int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(t.orders)
                    .where(and_(t.orders.c.email_hash == email_hash, t.orders.c.created_at >= since))
                )
            ).scalar_one()
        )
    context = {"orders_by_email_today": count}
    return list(screen(order, context, hub.config, hub.pm.hook.orderhub_screen_fraud))


async def release_hold(
    hub: Hub, conn: AsyncConnection, order: Order, *, actor: str, kinds: set[HoldKind] | None = None
) -> Order:
    """Release the order's active holds (all, or only ``kinds``) and allocate it."""
    if order.status != OrderStatus.ON_HOLD:
        raise Conflict(f"order {order.id} is {order.status}, not on_hold; nothing to release", order_id=order.id)
    ts = now()
    holds = [
        h.model_copy(update={"released_at": ts, "released_by": actor})
        if h.released_at is None and (kinds is None or h.kind in kinds)
        else h
        for h in order.holds
    ]
    order = order.model_copy(update={"holds": holds})
    if order.active_holds:
        await repo.save_order(conn, order)
        return order
    order = order.transition(OrderStatus.RECEIVED)
    order = order.model_copy(
        update={"decisions": [*order.decisions, _decision("hold_released", f"holds released by {actor}")]}
    )
    await repo.save_order(conn, order)
    await _timeline(conn, order, "hold_released", f"by {actor}")
    return await allocate(hub, conn, order)


# ----------------------------------------------------------------------------- allocation
async def _capacity_used(conn: AsyncConnection) -> dict[str, int]:
    start = now().replace(hour=0, minute=0, second=0, microsecond=0)
    f = t.fulfillments
    rows = (
        await conn.execute(select(f.c.location, func.count()).where(f.c.created_at >= start).group_by(f.c.location))
    ).all()
    return {r[0]: int(r[1]) for r in rows}


async def allocate(hub: Hub, conn: AsyncConnection, order: Order) -> Order:
    """Plan where the order's open units come from, reserve the whole plan atomically
    (never overselling: a plan made on stale stock is refused by the conditional update and
    planned again), backorder the rest, and release what was allocated to fulfilment."""
    from hub.allocation import plan_allocation
    from hub.promise import promise_for_locations

    started = time.perf_counter()
    skus = {ln.sku for ln in order.lines}
    for s in hub.config.allocation.substitutions:
        if s.sku in skus and order.allow_substitution:
            skus.update(s.substitutes)
    capacity = await _capacity_used(conn) if any(loc.daily_capacity is not None for loc in hub.config.locations) else {}
    plan = None
    for _ in range(MAX_ALLOCATION_TRIES):
        stock = await inv.levels(conn, skus)
        plan = plan_allocation(
            order,
            stock,
            hub.config.locations,
            hub.config,
            capacity_used=capacity,
            rank_hook=hub.pm.hook.orderhub_rank_locations,
        )
        try:
            await inv.reserve_all(
                conn, [Reservation(a.sku, a.location, a.quantity) for a in plan.reservations], order.id
            )
            break
        except InsufficientStock:
            continue  # someone else took the stock between our read and our reservation: plan again
    else:  # pragma: no cover - only under pathological contention
        raise Conflict(
            f"could not allocate order {order.id} after {MAX_ALLOCATION_TRIES} tries; it will be retried",
            order_id=order.id,
        )
    assert plan is not None
    order_had_backorders = bool(order.backordered)
    ts = now()
    decision = plan.decision(ts)  # built once: its details list every candidate
    fresh = [a.model_copy(update={"status": AllocationStatus.RESERVED}) for a in plan.reservations]
    allocations = [*order.allocations, *fresh]
    target = plan.status
    promise = order.promise
    if plan.reservations:
        promise = (
            promise_for_locations(
                [a.location for a in allocations], hub.config.locations, order.shipping_address, order.placed_at
            )
            or promise
        )
    order = order.model_copy(
        update={
            "allocations": allocations,
            "backordered": plan.backordered_json(),
            "decisions": [*order.decisions, decision],
            "promise": promise,
        }
    )
    if target != order.status:
        order = order.transition(target)
    if order_had_backorders:
        await conn.execute(delete(t.backorders).where(t.backorders.c.order_id == order.id))
    if plan.backordered:
        priority = order.totals.total.amount if hub.config.allocation.backorder_priority == "value" else 0
        for line_no, qty in plan.backordered.items():
            row = {
                "order_id": order.id,
                "line_no": line_no,
                "sku": order.line(line_no).sku,
                "quantity": qty,
                "priority": priority,
                "created_at": order.placed_at,
            }
            await write(conn, _INSERT_BACKORDER, row)
    if plan.reservations:
        await stock_changed(hub, conn, {a.sku for a in plan.reservations}, cause="reservation")
        await outbox.emit(conn, "order.allocated", order, object_id=order.id, connection=order.connection)
        await _timeline(conn, order, "allocated", decision.summary)
    if plan.backordered:
        await outbox.emit(conn, "order.backordered", order, object_id=order.id, connection=order.connection)
        await _timeline(conn, order, "backordered", decision.summary)
    if promise is not None:
        await _kpi_set(conn, order.id, promised_ship_by=promise.ship_by, promised_deliver_by=promise.deliver_by)
    if plan.reservations:
        order = await release_to_fulfillment(hub, conn, order, fresh=fresh)
    else:
        await repo.save_order(conn, order)
    metrics.allocation_latency.observe(time.perf_counter() - started)
    return order


async def release_to_fulfillment(
    hub: Hub, conn: AsyncConnection, order: Order, *, fresh: Sequence[Allocation] = ()
) -> Order:
    """Turn reserved allocations into one fulfilment request per location.

    ``fresh`` are allocations of ``order`` reserved in this transaction and not stored yet:
    they are written once, already released, instead of inserted and then updated.
    """
    reserved = [a for a in order.allocations if a.status == AllocationStatus.RESERVED]
    by_loc: dict[str, list[Allocation]] = defaultdict(list)
    for a in reserved:
        by_loc[a.location].append(a)
    ts = now()
    updated: list[Allocation] = [a for a in order.allocations if a.status != AllocationStatus.RESERVED]
    for loc_id, allocs in by_loc.items():
        try:
            loc = hub.config.location(loc_id)
            connection = loc.fulfilled_by
        except KeyError:
            connection = None
        req = FulfillmentRequest(
            id=new_id("ful"),
            order_id=order.id,
            location=loc_id,
            connection=connection,
            lines=[FulfillmentLine(line_no=a.line_no, sku=a.sku, quantity=a.quantity) for a in allocs],
            ship_to=order.shipping_address,
            status=FulfillmentStatus.PENDING if connection else FulfillmentStatus.ACCEPTED,
            created_at=ts,
        )
        await write(
            conn,
            _INSERT_FULFILLMENT,
            {
                "id": req.id,
                "order_id": order.id,
                "location": loc_id,
                "connection": connection,
                "status": str(req.status),
                "data": (doc := document(req)),
                "created_at": ts,
                "updated_at": ts,
            },
        )
        for a in allocs:
            if any(a is f for f in fresh):
                await write(
                    conn,
                    _INSERT_ALLOCATION,
                    {
                        "order_id": order.id,
                        "line_no": a.line_no,
                        "sku": a.sku,
                        "location": a.location,
                        "quantity": a.quantity,
                        "status": "released",
                        "fulfillment_id": req.id,
                        "created_at": ts,
                        "updated_at": ts,
                    },
                )
        if any(not any(a is f for f in fresh) for a in allocs):
            await conn.execute(
                update(t.allocations)
                .where(
                    and_(
                        t.allocations.c.order_id == order.id,
                        t.allocations.c.location == loc_id,
                        t.allocations.c.status == "reserved",
                    )
                )
                .values(status="released", fulfillment_id=req.id, updated_at=ts)
            )
        updated += [
            a.model_copy(update={"status": AllocationStatus.RELEASED, "fulfillment_id": req.id}) for a in allocs
        ]
        if connection:
            await jobs.enqueue(
                conn,
                connection,
                "submit_fulfillment",
                req.id,
                {"order_id": order.id},
                key=f"submit_fulfillment:{req.id}",
            )
        await outbox.emit(conn, "fulfillment.requested", doc, object_id=order.id, connection=connection)
    order = order.model_copy(update={"allocations": updated})
    if order.status == OrderStatus.ALLOCATED:
        order = order.transition(OrderStatus.RELEASED)
    await repo.save_order(conn, order)
    await _timeline(conn, order, "released", ", ".join(sorted(by_loc)))
    return order


async def reallocate_backorders(hub: Hub, skus: list[str], limit: int = 10_000) -> int:
    """Allocate waiting backorders of ``skus`` (oldest first, or by value), each in its own transaction."""
    b = t.backorders
    order_by = (
        [b.c.priority.desc(), b.c.created_at, b.c.order_id]
        if hub.config.allocation.backorder_priority == "value"
        else [b.c.created_at, b.c.order_id]
    )
    async with hub.store.connect() as conn:
        ids = list(
            dict.fromkeys(
                r.order_id
                for r in (
                    await conn.execute(select(b.c.order_id).where(b.c.sku.in_(skus)).order_by(*order_by).limit(limit))
                ).all()
            )
        )
    done = 0
    for oid in ids:
        async with hub.store.begin() as conn:
            await lock_order(conn, oid)
            order = await repo.get_order(conn, oid)
            if order.status not in (OrderStatus.BACKORDERED, OrderStatus.PARTIALLY_ALLOCATED):
                continue
            avail = {(lv.sku, lv.location): lv.available for lv in await inv.levels(conn, skus)}
            if not any(v > 0 for v in avail.values()):
                break
            before = sum(a.quantity for a in order.allocations)
            order = await allocate(hub, conn, order)
            if sum(a.quantity for a in order.allocations) > before:
                done += 1
    return done


async def _rewrite_allocations(conn: AsyncConnection, order_id: str, allocations: list[Allocation], ts: Any) -> None:
    """Replace the order's allocation rows with ``allocations`` (after a split by cancel or shipment)."""
    await conn.execute(delete(t.allocations).where(t.allocations.c.order_id == order_id))
    if allocations:
        await conn.execute(
            insert(t.allocations),
            [
                {
                    "order_id": order_id,
                    "line_no": a.line_no,
                    "sku": a.sku,
                    "location": a.location,
                    "quantity": a.quantity,
                    "status": str(a.status),
                    "fulfillment_id": a.fulfillment_id,
                    "created_at": ts,
                    "updated_at": ts,
                }
                for a in allocations
            ],
        )


# ----------------------------------------------------------------------------- cancellation
async def cancel(
    hub: Hub,
    conn: AsyncConnection,
    order: Order,
    *,
    reason: str | None,
    actor: str,
    lines: dict[int, int] | None = None,
    from_channel: bool = False,
) -> Order:
    """Cancel the whole order, or ``lines`` {line_no: quantity} of it.

    Releases reservations, cancels fulfilment requests not yet shipped (at the 3PL through a
    sync job), and tells the channel unless the channel itself cancelled.
    """
    await lock_order(conn, order.id)
    if order.status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == order.id).values(had_exception=True))
        await _timeline(
            conn, order, "exception", f"cancel requested by {actor} but the order is already {order.status}"
        )
        raise IllegalTransition(str(order.status), "cancelled", order.id)
    whole = lines is None
    to_cancel: dict[int, int] = {}
    new_lines = []
    for ln in order.lines:
        shipped = sum(
            a.quantity for a in order.allocations if a.line_no == ln.line_no and a.status == AllocationStatus.SHIPPED
        )
        cancellable = ln.open_quantity - shipped
        want = cancellable if whole else min(cancellable, (lines or {}).get(ln.line_no, 0))
        if want > 0:
            to_cancel[ln.line_no] = want
            ln = ln.model_copy(update={"cancelled_quantity": ln.cancelled_quantity + want})
        new_lines.append(ln)
    if not to_cancel:
        raise Conflict(f"order {order.id}: nothing left to cancel", order_id=order.id)
    released: set[str] = set()
    allocations: list[Allocation] = []
    remaining = dict(to_cancel)
    cancelled_fulfillments: set[str] = set()
    # take from backorders first, then from reservations
    backordered = {int(k): v for k, v in order.backordered.items()}
    for line_no in list(remaining):
        take = min(remaining[line_no], backordered.get(line_no, 0))
        if take:
            backordered[line_no] -= take
            remaining[line_no] -= take
    for a in order.allocations:
        want = remaining.get(a.line_no, 0)
        if want <= 0 or a.status not in (AllocationStatus.RESERVED, AllocationStatus.RELEASED):
            allocations.append(a)
            continue
        take = min(want, a.quantity)
        await inv.release(conn, a.sku, a.location, take, order.id, cause="cancellation")
        released.add(a.sku)
        remaining[a.line_no] = want - take
        if a.fulfillment_id:
            cancelled_fulfillments.add(a.fulfillment_id)
        allocations.append(a.model_copy(update={"status": AllocationStatus.CANCELLED, "quantity": take}))
        if a.quantity > take:
            allocations.append(a.model_copy(update={"quantity": a.quantity - take}))
    ts = now()
    await _rewrite_allocations(conn, order.id, allocations, ts)
    for fid in cancelled_fulfillments:
        row = (await conn.execute(select(t.fulfillments).where(t.fulfillments.c.id == fid))).first()
        if row is None:
            continue
        if row.connection and row.status in ("submitted", "accepted", "pending"):
            await jobs.enqueue(
                conn, row.connection, "cancel_fulfillment", fid, {"order_id": order.id}, key=f"cancel_fulfillment:{fid}"
            )
        await conn.execute(
            update(t.fulfillments).where(t.fulfillments.c.id == fid).values(status="cancelled", updated_at=ts)
        )
    backordered = {k: v for k, v in backordered.items() if v > 0}
    await conn.execute(delete(t.backorders).where(t.backorders.c.order_id == order.id))
    for line_no, qty in backordered.items():
        await conn.execute(
            insert(t.backorders).values(
                order_id=order.id,
                line_no=line_no,
                sku=order.line(line_no).sku,
                quantity=qty,
                priority=0,
                created_at=order.placed_at,
            )
        )
    order = order.model_copy(
        update={
            "lines": new_lines,
            "allocations": allocations,
            "backordered": {str(k): v for k, v in backordered.items()},
        }
    )
    fully = all(ln.open_quantity == 0 for ln in order.lines)
    if fully:
        order = order.transition(OrderStatus.CANCELLED)
    order = order.model_copy(
        update={
            "decisions": [
                *order.decisions,
                _decision(
                    "cancellation",
                    f"{'cancelled' if fully else 'partially cancelled'} by {actor}" + (f": {reason}" if reason else ""),
                    lines={str(k): v for k, v in to_cancel.items()},
                ),
            ]
        }
    )
    await repo.save_order(conn, order)
    await _timeline(conn, order, "cancelled" if fully else "partially_cancelled", reason)
    if released:
        await stock_changed(hub, conn, released, cause="release")
    await outbox.emit(
        conn, "order.cancelled" if fully else "order.updated", order, object_id=order.id, connection=order.connection
    )
    if (
        not from_channel
        and order.connection in hub.connections
        and Capability.PUSH_CANCELLATION in hub.connections[order.connection].capabilities
    ):
        await jobs.enqueue(
            conn,
            order.connection,
            "push_cancellation",
            order.id,
            {"reason": reason, "lines": {str(k): v for k, v in to_cancel.items()}},
            key=f"push_cancellation:{order.id}:{len(order.decisions)}",
        )
    return order


async def channel_cancelled(hub: Hub, conn: AsyncConnection, connection_id: str, msg: OrderCancelled) -> None:
    order = await repo.get_by_external(conn, connection_id, msg.external_id)
    if order is None and msg.order is not None:
        order = await ingest_order(hub, conn, msg.order)
    if order is None:
        raise NotFound(
            f"cancellation for unknown order {msg.external_id} on {connection_id}; it will be retried",
            connection=connection_id,
        )
    order = await repo.get_order(conn, order.id)
    if order.status == OrderStatus.CANCELLED:
        return
    await cancel(hub, conn, order, reason=msg.reason, actor=connection_id, from_channel=True)


# ----------------------------------------------------------------------------- shipments
async def _find_fulfillment(conn: AsyncConnection, connection_id: str, msg: ShipmentConfirmed) -> Any:
    f = t.fulfillments
    if msg.fulfillment_id:
        row = (await conn.execute(select(f).where(f.c.id == msg.fulfillment_id))).first()
        if row:
            return row
    if msg.external_order_id:
        row = (
            await conn.execute(
                select(f).where(and_(f.c.connection == connection_id, f.c.external_id == msg.external_order_id))
            )
        ).first()
        if row:
            return row
        row = (await conn.execute(select(f).where(f.c.id == msg.external_order_id))).first()
        if row:
            return row
    if msg.shipment.fulfillment_id:
        return (await conn.execute(select(f).where(f.c.id == msg.shipment.fulfillment_id))).first()
    return None


async def confirm_shipment(hub: Hub, conn: AsyncConnection, connection_id: str, msg: ShipmentConfirmed) -> None:
    """Goods left a location: on_hand and reserved go down together, the order moves to
    partially_shipped/shipped, tracking goes to the channel and partners."""
    s = t.shipments
    ext = (
        msg.shipment.id
        if not msg.external_order_id
        else f"{msg.external_order_id}:{msg.shipment.tracking_number or msg.shipment.id}"
    )
    if (
        await conn.execute(select(s.c.id).where(and_(s.c.connection == connection_id, s.c.external_id == ext)))
    ).first():
        return  # the same confirmation again
    ful = await _find_fulfillment(conn, connection_id, msg)
    if ful is None:
        raise NotFound(
            f"shipment from {connection_id} for unknown fulfilment {msg.fulfillment_id or msg.external_order_id}",
            connection=connection_id,
        )
    await lock_order(conn, ful.order_id)
    order = await repo.get_order(conn, ful.order_id)
    lines: list[Any] = list(msg.shipment.lines) or list(FulfillmentRequest.model_validate(ful.data).lines)
    remaining: dict[str, int] = defaultdict(int)
    for ln in lines:
        remaining[ln.sku] += ln.quantity
    allocations: list[Allocation] = []
    shipped_skus: set[str] = set()
    for a in order.allocations:
        want = remaining.get(a.sku, 0)
        if a.fulfillment_id != ful.id or a.status != AllocationStatus.RELEASED or want <= 0:
            allocations.append(a)
            continue
        take = min(want, a.quantity)
        await inv.ship(conn, a.sku, a.location, take, order.id)
        shipped_skus.add(a.sku)
        remaining[a.sku] = want - take
        allocations.append(a.model_copy(update={"status": AllocationStatus.SHIPPED, "quantity": take}))
        if a.quantity > take:
            allocations.append(a.model_copy(update={"quantity": a.quantity - take}))
    ts = now()
    shipment = msg.shipment.model_copy(
        update={"order_id": order.id, "fulfillment_id": ful.id, "location": ful.location}
    )
    await conn.execute(
        insert(s).values(
            id=shipment.id,
            order_id=order.id,
            fulfillment_id=ful.id,
            connection=connection_id,
            external_id=ext,
            tracking_number=shipment.tracking_number,
            status="shipped",
            data=shipment.to_json(),
            shipped_at=shipment.shipped_at,
        )
    )
    await _rewrite_allocations(conn, order.id, allocations, ts)
    ful_done = not any(a.fulfillment_id == ful.id and a.status == AllocationStatus.RELEASED for a in allocations)
    if ful_done:
        await conn.execute(
            update(t.fulfillments).where(t.fulfillments.c.id == ful.id).values(status="shipped", updated_at=ts)
        )
    order = order.model_copy(update={"allocations": allocations})
    open_units = sum(ln.open_quantity for ln in order.lines)
    shipped_units = sum(a.quantity for a in allocations if a.status == AllocationStatus.SHIPPED)
    target = OrderStatus.SHIPPED if shipped_units >= open_units else OrderStatus.PARTIALLY_SHIPPED
    order = order.transition(target)
    await repo.save_order(conn, order)
    n_ship = int((await conn.execute(select(func.count()).select_from(s).where(s.c.order_id == order.id))).scalar_one())
    await conn.execute(
        update(t.kpi_facts)
        .where(t.kpi_facts.c.order_id == order.id)
        .values(shipments=n_ship, shipped_at=shipment.shipped_at if target == OrderStatus.SHIPPED else None)
    )
    await _timeline(conn, order, str(target), f"{shipment.carrier or ''} {shipment.tracking_number or ''}".strip())
    await stock_changed(hub, conn, shipped_skus, cause="shipment")
    await outbox.emit(conn, "shipment.shipped", shipment, object_id=order.id, connection=order.connection)
    await outbox.emit(conn, "order.updated", order, object_id=order.id, connection=order.connection)
    channel = hub.connections.get(order.connection)
    if channel is not None and Capability.PUSH_FULFILLMENT in channel.capabilities:
        await jobs.enqueue(
            conn,
            order.connection,
            "push_fulfillment",
            order.id,
            {"shipment_id": shipment.id},
            key=f"push_fulfillment:{shipment.id}",
        )
    for cid, c in hub.connections.items():
        if c.kind == Kind.CARRIER and Capability.TRACKING in c.capabilities and shipment.tracking_number:
            await jobs.enqueue(
                conn, cid, "track", order.id, {"shipment_id": shipment.id}, key=f"track:{cid}:{shipment.id}"
            )
        if Capability.POST_INVOICE in c.capabilities:
            await jobs.enqueue(
                conn,
                cid,
                "post_invoice",
                order.id,
                {"shipment_id": shipment.id},
                key=f"post_invoice:{cid}:{shipment.id}",
            )


async def tracking_updated(hub: Hub, conn: AsyncConnection, connection_id: str, ev: TrackingEvent) -> None:
    """A carrier event: kept on the shipment; delivered moves the order to delivered."""
    s = t.shipments
    row = (await conn.execute(select(s).where(s.c.tracking_number == ev.tracking_number))).first()
    if row is None:
        raise RetriableError(
            f"tracking event for unknown tracking number {ev.tracking_number}; its shipment may not be applied yet, "
            "so it will be retried",
            connection=connection_id,
        )
    shipment = Shipment.model_validate(row.data)
    if any(e.status == ev.status and e.occurred_at == ev.occurred_at for e in shipment.events):
        return
    events = sorted([*shipment.events, ev], key=lambda e: e.occurred_at)
    delivered_at = ev.occurred_at if ev.status == TrackingStatus.DELIVERED else shipment.delivered_at
    shipment = shipment.model_copy(update={"events": events, "delivered_at": delivered_at})
    status = (
        "delivered"
        if delivered_at
        else ("exception" if ev.status in (TrackingStatus.FAILURE, TrackingStatus.RETURN_TO_SENDER) else row.status)
    )
    await conn.execute(
        update(s).where(s.c.id == row.id).values(data=shipment.to_json(), status=status, delivered_at=delivered_at)
    )
    if not row.order_id:
        return
    await lock_order(conn, row.order_id)
    order = await repo.get_order(conn, row.order_id)
    if status == "exception":
        await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == order.id).values(had_exception=True))
        await _timeline(conn, order, "exception", f"carrier: {ev.status} {ev.message or ''}".strip())
        await outbox.emit(conn, "order.updated", order, object_id=order.id, connection=order.connection)
        return
    if ev.status != TrackingStatus.DELIVERED:
        return
    await outbox.emit(conn, "shipment.delivered", shipment, object_id=order.id, connection=order.connection)
    undelivered = (
        await conn.execute(
            select(func.count()).select_from(s).where(and_(s.c.order_id == order.id, s.c.delivered_at.is_(None)))
        )
    ).scalar_one()
    if order.status == OrderStatus.SHIPPED and undelivered == 0:
        order = order.transition(OrderStatus.DELIVERED)
        await repo.save_order(conn, order)
        await conn.execute(
            update(t.kpi_facts).where(t.kpi_facts.c.order_id == order.id).values(delivered_at=delivered_at)
        )
        await _timeline(conn, order, "delivered")
        await outbox.emit(conn, "order.updated", order, object_id=order.id, connection=order.connection)


async def fulfillment_exception(hub: Hub, conn: AsyncConnection, connection_id: str, msg: FulfillmentException) -> None:
    f = t.fulfillments
    row = None
    if msg.fulfillment_id:
        row = (await conn.execute(select(f).where(f.c.id == msg.fulfillment_id))).first()
    if row is None and msg.external_order_id:
        row = (
            await conn.execute(
                select(f).where(and_(f.c.connection == connection_id, f.c.external_id == msg.external_order_id))
            )
        ).first()
    if row is None:
        raise NotFound(
            f"exception from {connection_id} for unknown fulfilment {msg.fulfillment_id or msg.external_order_id}"
        )
    await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == row.order_id).values(had_exception=True))
    await repo.add_timeline(conn, row.order_id, "exception", f"{connection_id}: {msg.reason}")


async def inventory_counted(hub: Hub, conn: AsyncConnection, msg: InventoryCounted, *, ref: str | None) -> None:
    skus = set()
    for sku, loc, on_hand in msg.counts:
        await inv.set_on_hand(conn, sku, loc, on_hand, cause="count", ref=ref)
        skus.add(sku)
    await stock_changed(hub, conn, skus, cause="count")


async def _kpi_insert(conn: AsyncConnection, order: Order) -> None:
    row = {
        "order_id": order.id,
        "placed_at": order.placed_at,
        "had_exception": False,
        "shipments": 0,
        "complete": True,
        "promised_ship_by": None,
        "promised_deliver_by": None,
    }
    await write(conn, _INSERT_KPI, row)


async def _kpi_set(conn: AsyncConnection, order_id: str, **values: Any) -> None:
    """Update the order's KPI facts (in the buffer when the row is still waiting to be inserted)."""
    buf = pending(conn)
    rows = [r for r in buf.rows("kpi_facts") if r["order_id"] == order_id] if buf is not None else []
    if rows:
        rows[0].update(values)
        return
    await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == order_id).values(**values))
