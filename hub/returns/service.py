"""The returns and refunds service: the store, stock, events and sync jobs around the pure decisions of
:mod:`hub.returns` (see docs/returns.md).

Functions that take ``conn`` write in the caller's transaction: the return or refund, its partner
events, its KPI times and its sync jobs commit together or not at all. :func:`receive` runs its own
transaction, because after a restock commits it re-allocates waiting backorders of those SKUs.

- :func:`create_return` (API or channel): returnable quantities, the policy, fraud flags
- :func:`approve` / :func:`reject`: the ops decision (a flagged return needs :func:`approve` before its refund)
- :func:`receive`: receipt flags, disposition per line (``orderhub_return_disposition``), restock
- :func:`refund`: the exact refund (:func:`hub.returns.calculate_refund`), pushed to the channel and
  posted as a credit note to every ERP; once per return, whatever the number of calls
- :func:`channel_refund` / :func:`channel_return`: what a channel did on its side, stored once
- :func:`money_trail_for`: paid, refunded, disputed and outstanding for the order view
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import InputError, NotFound
from hub.kpis_store import mark_refund_issued, mark_refund_requested
from hub.logging import get_logger
from hub.model import (
    AllocationStatus,
    Condition,
    Disposition,
    Money,
    Order,
    Refund,
    Return,
    ReturnLine,
    ReturnStatus,
    new_id,
)
from hub.orders._locks import lock_order
from hub.orders.stock import stock_changed
from hub.plugins import Capability, RefundCreated, ReturnRequested
from hub.returns import lifecycle
from hub.returns.disposition import restock_quantity
from hub.returns.errors import ReturnNeedsApproval
from hub.returns.fraud import CustomerHistory, receipt_flags
from hub.returns.lifecycle import Receipt
from hub.returns.policy import Outcome, decide
from hub.returns.refunds import Dispute, LineToRefund, calculate_refund, money_trail
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from hub.store._upsert import insert_ignore
from hub.sync import jobs

if TYPE_CHECKING:
    from hub.runtime import Hub

__all__ = [
    "RefundResult",
    "approve",
    "channel_refund",
    "channel_return",
    "create_return",
    "get_return",
    "money_trail_for",
    "receive",
    "refund",
    "refund_return",
    "refunds_of",
    "reject",
    "return_view",
]

log = get_logger("hub.returns")
RT = t.returns
RF = t.refunds
#: ``audit_log.action`` of an ops approval; its ``detail.flags`` are the flags the approval covers.
APPROVAL = "return.approve"


# ----------------------------------------------------------------------------- loading and saving
async def get_return(conn: AsyncConnection, return_id: str, *, for_update: bool = False) -> Return:
    """The stored return; :class:`~hub.errors.NotFound` when there is none."""
    q = select(RT.c.data).where(RT.c.id == return_id)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    if row is None:
        raise NotFound(f"return {return_id} does not exist; check the id (ret_...)", return_id=return_id)
    return Return.model_validate(row.data)


async def _lock_return(conn: AsyncConnection, return_id: str) -> Return:
    """Take the return's order lock (every change of a return holds it), then read the return."""
    order_id = (await conn.execute(select(RT.c.order_id).where(RT.c.id == return_id))).scalar_one_or_none()
    if order_id is None:
        raise NotFound(f"return {return_id} does not exist; check the id (ret_...)", return_id=return_id)
    await lock_order(conn, order_id)
    return await get_return(conn, return_id, for_update=True)


async def _returns_of(conn: AsyncConnection, order_id: str) -> list[Return]:
    rows = (await conn.execute(select(RT.c.data).where(RT.c.order_id == order_id).order_by(RT.c.id))).all()
    return [Return.model_validate(r.data) for r in rows]


async def refunds_of(conn: AsyncConnection, order_id: str) -> list[Refund]:
    """Every refund of the order (the hub's and the channel's), oldest first."""
    rows = (
        await conn.execute(select(RF.c.data).where(RF.c.order_id == order_id).order_by(RF.c.created_at, RF.c.id))
    ).all()
    return [Refund.model_validate(r.data) for r in rows]


async def _insert_return(conn: AsyncConnection, ret: Return, connection: str | None) -> None:
    await conn.execute(
        insert(RT).values(
            id=ret.id,
            order_id=ret.order_id,
            connection=connection,
            external_id=ret.external_id,
            status=str(ret.status),
            data=ret.to_json(),
            created_at=ret.requested_at,
            updated_at=ret.updated_at or ret.requested_at,
        )
    )


async def _save_return(conn: AsyncConnection, ret: Return) -> None:
    await conn.execute(
        update(RT)
        .where(RT.c.id == ret.id)
        .values(status=str(ret.status), data=ret.to_json(), updated_at=ret.updated_at or now())
    )


async def _audit(conn: AsyncConnection, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    await conn.execute(insert(t.audit_log).values(at=now(), actor=actor, action=action, target=target, detail=detail))


async def _approval(conn: AsyncConnection, ret: Return) -> str | None:
    """The ops user whose approval covers every current flag of ``ret`` (None when no approval does)."""
    a = t.audit_log
    rows = (
        await conn.execute(
            select(a.c.actor, a.c.detail).where(and_(a.c.action == APPROVAL, a.c.target == ret.id)).order_by(a.c.id)
        )
    ).all()
    for r in reversed(rows):
        covered = set((r.detail or {}).get("flags", []))
        if set(ret.flags) <= covered:
            return str(r.actor)
    return None


# ----------------------------------------------------------------------------- what the policy needs
async def _shipped(conn: AsyncConnection, order_id: str) -> dict[int, int]:
    a = t.allocations
    rows = (
        await conn.execute(
            select(a.c.line_no, func.sum(a.c.quantity))
            .where(and_(a.c.order_id == order_id, a.c.status == str(AllocationStatus.SHIPPED)))
            .group_by(a.c.line_no)
        )
    ).all()
    return {int(r[0]): int(r[1]) for r in rows}


async def _delivered_at(conn: AsyncConnection, order_id: str) -> datetime | None:
    fact = (
        await conn.execute(select(t.kpi_facts.c.delivered_at).where(t.kpi_facts.c.order_id == order_id))
    ).scalar_one_or_none()
    if fact is not None:
        return fact  # type: ignore[no-any-return]
    s = t.shipments
    latest = (await conn.execute(select(func.max(s.c.delivered_at)).where(s.c.order_id == order_id))).scalar_one()
    return latest  # type: ignore[no-any-return]


async def _history(conn: AsyncConnection, order: Order) -> CustomerHistory:
    """The customer's orders (this one included) and their returns on other orders, matched by the email
    hash; a second partial return of the same order does not count against the customer."""
    email_hash = repo.email_hash(order)
    if not email_hash:
        return CustomerHistory()
    o = t.orders
    orders = (await conn.execute(select(func.count()).select_from(o).where(o.c.email_hash == email_hash))).scalar_one()
    returns = (
        await conn.execute(
            select(func.count())
            .select_from(RT.join(o, o.c.id == RT.c.order_id))
            .where(and_(o.c.email_hash == email_hash, RT.c.order_id != order.id))
        )
    ).scalar_one()
    return CustomerHistory(orders=int(orders), returns=int(returns))


async def _timeline(conn: AsyncConnection, order: Order, kind: str, detail: str) -> None:
    await repo.add_timeline(conn, order.id, kind, detail, str(order.status))


# ----------------------------------------------------------------------------- requests and decisions
async def create_return(
    hub: Hub,
    conn: AsyncConnection,
    order_id: str,
    lines: Sequence[ReturnLine],
    *,
    actor: str,
    connection: str | None = None,
    external_id: str | None = None,
    requested_at: datetime | None = None,
) -> Return:
    """Record a return request for ``order_id`` and decide it with the policy.

    Refuses (422) a line for more units than were shipped and not yet returned. The policy answers
    approve (status ``approved``), reject (status ``rejected`` with the reason, e.g. the window) or
    review (status ``requested``, with any fraud flags; an ops user approves or rejects it).
    Emits ``return.requested`` (and ``return.approved`` when approved).
    """
    if not lines:
        raise InputError(f"a return of order {order_id} needs at least one line (sku, quantity, reason)")
    await lock_order(conn, order_id)
    order = await repo.get_order(conn, order_id)
    ts = requested_at or now()
    previous = await _returns_of(conn, order.id)
    tied = lifecycle.check_returnable(order, lines, await _shipped(conn, order.id), previous)
    ret = Return(
        id=new_id("ret"),
        order_id=order.id,
        external_id=external_id,
        status=ReturnStatus.REQUESTED,
        lines=tied,
        requested_at=ts,
        updated_at=ts,
    )
    decision = decide(
        order, ret, await _delivered_at(conn, order.id), ts, hub.config.returns, await _history(conn, order)
    )
    if decision.outcome is Outcome.APPROVE:
        ret = lifecycle.approve(ret, ts, decision.reason)
    elif decision.outcome is Outcome.REJECT:
        ret = lifecycle.reject(ret, ts, decision.reason)
    else:
        ret = lifecycle.add_flags(ret, decision.flags, ts).model_copy(update={"decision_reason": decision.reason})
    await _insert_return(conn, ret, connection)
    await outbox.emit(conn, "return.requested", ret, object_id=order.id, connection=order.connection)
    if ret.status is ReturnStatus.APPROVED:
        await outbox.emit(conn, "return.approved", ret, object_id=order.id, connection=order.connection)
    if ret.status is not ReturnStatus.REJECTED:
        await mark_refund_requested(conn, order.id, ts)
    await _timeline(conn, order, f"return_{ret.status}", f"{ret.id} by {actor}: {decision.reason}")
    log.info(
        "return requested",
        extra={"fields": {"return_id": ret.id, "order_id": order.id, "status": str(ret.status), "actor": actor}},
    )
    return ret


async def approve(hub: Hub, conn: AsyncConnection, return_id: str, actor: str, reason: str | None = None) -> Return:
    """An ops approval: ``requested -> approved``, and it clears the current fraud flags for the refund.

    On a return that is already approved, received or dispositioned (flagged at receipt), it approves the
    refund despite the flags; on anything else it is refused (409) naming the status.
    """
    ret = await _lock_return(conn, return_id)
    order = await repo.get_order(conn, ret.order_id)
    ts = now()
    note = reason or f"approved by {actor}"
    if ret.status is ReturnStatus.REQUESTED:
        ret = lifecycle.approve(ret, ts, f"{ret.decision_reason}; {note}" if ret.flags else note)
        await _save_return(conn, ret)
        await outbox.emit(conn, "return.approved", ret, object_id=order.id, connection=order.connection)
    elif ret.status in (ReturnStatus.APPROVED, ReturnStatus.RECEIVED, ReturnStatus.DISPOSITIONED) and ret.flags:
        ret = ret.model_copy(update={"decision_reason": f"{ret.decision_reason}; {note}", "updated_at": ts})
        await _save_return(conn, ret)
    else:
        lifecycle.transition(ret, ReturnStatus.APPROVED, ts)  # raises IllegalReturnTransition naming both states
    await _audit(conn, actor, APPROVAL, ret.id, {"flags": list(ret.flags), "reason": reason})
    await _timeline(conn, order, "return_approved", f"{ret.id} by {actor}")
    return ret


async def reject(hub: Hub, conn: AsyncConnection, return_id: str, actor: str, reason: str) -> Return:
    """An ops rejection of a requested return (``requested -> rejected``) with the reason the customer reads."""
    ret = await _lock_return(conn, return_id)
    order = await repo.get_order(conn, ret.order_id)
    ret = lifecycle.reject(ret, now(), reason)
    await _save_return(conn, ret)
    await _audit(conn, actor, "return.reject", ret.id, {"reason": reason})
    await _timeline(conn, order, "return_rejected", f"{ret.id} by {actor}: {reason}")
    return ret


# ----------------------------------------------------------------------------- receipt and restock
def _shipped_from(order: Order, line_no: int | None, sku: str) -> str | None:
    for a in order.allocations:
        if a.status is AllocationStatus.SHIPPED and (a.line_no == line_no if line_no is not None else a.sku == sku):
            return a.location
    return None


async def receive(
    hub: Hub,
    return_id: str,
    receipts: Sequence[Receipt],
    *,
    actor: str,
    weight_grams: int | None = None,
    expected_weight_grams: int | None = None,
) -> Return:
    """The parcel arrived: ``approved -> received -> dispositioned`` in one transaction.

    Receipt flags (item or weight mismatch) are added (a flagged return waits for ops approval before
    its refund); a SKU that was not requested is only flagged. Each line's disposition comes from the
    ``orderhub_return_disposition`` hook (default: by condition); restocked units go back to on_hand
    through the ledger (cause ``return``) at the receipt's location, else the location the line shipped
    from. After the commit, waiting backorders of the restocked SKUs are re-allocated.
    """
    restocked: set[str] = set()
    async with hub.store.begin() as conn:
        ret = await _lock_return(conn, return_id)
        order = await repo.get_order(conn, ret.order_id)
        ts = now()
        if ret.status is not ReturnStatus.APPROVED:
            lifecycle.transition(ret, ReturnStatus.RECEIVED, ts)  # raises, naming both states
        flags = receipt_flags(
            ret, receipts, expected_weight_grams=expected_weight_grams, measured_weight_grams=weight_grams
        )
        requested = {ln.sku for ln in ret.lines}
        known = [r for r in receipts if r.sku in requested]
        ret = lifecycle.add_flags(ret, flags, ts)
        ret = lifecycle.receive(ret, known, ts)
        dispositions: list[Disposition | None] = []
        for ln in ret.lines:
            if ln.condition is Condition.MISSING or not ln.received_quantity:
                dispositions.append(None)
                continue
            d = hub.pm.hook.orderhub_return_disposition(line=ln, order=order, config=hub.config.returns)
            dispositions.append(Disposition(d) if d is not None else None)
        ret = lifecycle.set_dispositions(ret, dispositions, ts)
        lines: list[ReturnLine] = []
        locations: set[str] = set()
        for ln in ret.lines:
            qty = restock_quantity(ln)
            if qty:
                loc = ln.location or _shipped_from(order, ln.line_no, ln.sku)
                if loc is None:
                    raise InputError(
                        f"return {ret.id}: no location to restock {ln.sku}; receive the line with a 'location'",
                        return_id=ret.id,
                        sku=ln.sku,
                    )
                try:
                    hub.config.location(loc)
                except KeyError:
                    known_locs = ", ".join(sorted(x.id for x in hub.config.locations)) or "none"
                    raise InputError(
                        f"return {ret.id}: unknown location {loc!r} for {ln.sku}; configured: {known_locs}",
                        return_id=ret.id,
                        location=loc,
                    ) from None
                await inv.adjust(conn, ln.sku, loc, qty, cause="return", ref=ret.id, reason=f"return {ret.id}")
                restocked.add(ln.sku)
                locations.add(loc)
                ln = ln.model_copy(update={"location": loc})
            lines.append(ln)
        ret = ret.model_copy(update={"lines": lines})
        if restocked:
            await stock_changed(hub, conn, restocked, cause="return", locations=locations)
        await _save_return(conn, ret)
        await outbox.emit(conn, "return.received", ret, object_id=order.id, connection=order.connection)
        summary = ", ".join(f"{ln.sku} {ln.condition} -> {ln.disposition or 'nothing'}" for ln in ret.lines)
        await _timeline(conn, order, "return_received", f"{ret.id} by {actor}: {summary}")
    if restocked:
        from hub.orders.service import reallocate_backorders

        await reallocate_backorders(hub, sorted(restocked))
    return ret


# ----------------------------------------------------------------------------- refunds
@dataclass(frozen=True)
class RefundResult:
    """A refund and whether this call created it (False: it existed already, nothing was done twice)."""

    refund: Refund
    created: bool


async def _refund_of_return(conn: AsyncConnection, return_id: str) -> Refund | None:
    row = (await conn.execute(select(RF.c.data).where(RF.c.return_id == return_id).order_by(RF.c.created_at))).first()
    return Refund.model_validate(row.data) if row else None


async def _store_refund(
    hub: Hub,
    conn: AsyncConnection,
    order: Order,
    ref: Refund,
    *,
    connection: str | None,
    push_to_channel: bool,
    actor: str,
) -> bool:
    """Insert the refund row (once per (connection, external_id)), emit, record KPI times and sync jobs."""
    res = await conn.execute(
        insert_ignore(conn, RF, ["connection", "external_id"]).values(
            id=ref.id,
            order_id=order.id,
            return_id=ref.return_id,
            connection=connection,
            external_id=ref.external_id,
            amount=ref.amount.amount,
            currency=ref.amount.currency,
            status="issued",
            data=ref.to_json(),
            created_at=ref.created_at,
        )
    )
    if res.rowcount != 1:
        return False
    await mark_refund_issued(conn, order.id, ref.created_at)
    await outbox.emit(conn, "refund.issued", ref, object_id=order.id, connection=order.connection)
    await _timeline(conn, order, "refunded", f"{ref.id} of {ref.amount} by {actor}")
    channel = hub.connections.get(order.connection)
    if push_to_channel and channel is not None and Capability.PUSH_REFUND in channel.capabilities:
        await jobs.enqueue(
            conn, order.connection, "push_refund", order.id, {"refund_id": ref.id}, key=f"push_refund:{ref.id}"
        )
    for cid, c in hub.connections.items():
        if Capability.POST_CREDIT_NOTE in c.capabilities:
            await jobs.enqueue(
                conn,
                cid,
                "post_credit_note",
                order.id,
                {"refund_id": ref.id},
                key=f"post_credit_note:{cid}:{ref.id}",
            )
    log.info(
        "refund issued",
        extra={"fields": {"refund_id": ref.id, "order_id": order.id, "amount": str(ref.amount), "actor": actor}},
    )
    return True


async def refund_return(
    hub: Hub,
    conn: AsyncConnection,
    return_id: str,
    *,
    actor: str,
    include_shipping: bool | None = None,
    return_shipping_cost: Money | None = None,
) -> RefundResult:
    """Refund a dispositioned return exactly (:func:`hub.returns.calculate_refund` with the order's earlier
    refunds), once: a second call answers the same refund and enqueues nothing.

    A flagged return is refused (409, :class:`ReturnNeedsApproval`) until an ops user approves it.
    """
    ret = await _lock_return(conn, return_id)
    existing = await _refund_of_return(conn, ret.id)
    if existing is not None:
        return RefundResult(existing, created=False)
    approved_by = await _approval(conn, ret) if ret.flags else None
    if ret.flags and approved_by is None:
        raise ReturnNeedsApproval(
            f"return {ret.id} is flagged ({'; '.join(ret.flags)}); it waits for an ops user to approve it "
            f"(POST /api/v1/returns/{ret.id}/approve) before it is refunded",
            return_id=ret.id,
            flags=list(ret.flags),
        )
    order = await repo.get_order(conn, ret.order_id)
    ts = now()
    refunded = lifecycle.mark_refunded(ret, ts, approved_by=approved_by)  # raises unless dispositioned
    if not any(ln.received_quantity for ln in ret.lines):
        raise InputError(
            f"return {ret.id}: nothing arrived (every line is missing), so there is nothing to refund",
            return_id=ret.id,
        )
    calc = calculate_refund(
        order,
        ret.lines,
        previous_refunds=await refunds_of(conn, order.id),
        config=hub.config.returns,
        include_shipping=include_shipping,
        return_shipping_cost=return_shipping_cost,
    )
    reasons = sorted({ln.reason for ln in ret.lines if ln.reason})
    ref = calc.to_refund(order_id=order.id, created_at=ts, return_id=ret.id, reason=", ".join(reasons) or None)
    await _store_refund(hub, conn, order, ref, connection=None, push_to_channel=True, actor=actor)
    await _save_return(conn, refunded)
    return RefundResult(ref, created=True)


async def refund(
    hub: Hub,
    conn: AsyncConnection,
    return_id: str | None = None,
    *,
    actor: str,
    order_id: str | None = None,
    lines: Sequence[LineToRefund] = (),
    include_shipping: bool | None = None,
    reason: str | None = None,
) -> Refund:
    """Refund a return (``return_id``, see :func:`refund_return`) or, without a return, ``lines`` of
    ``order_id`` (an appeasement or an unshipped line); either way pushed to the channel and posted
    to every ERP."""
    if return_id is not None:
        return (await refund_return(hub, conn, return_id, actor=actor, include_shipping=include_shipping)).refund
    if order_id is None or not (lines or include_shipping):
        raise InputError("a refund needs a return_id, or an order_id with lines (line_no, quantity) to refund")
    await lock_order(conn, order_id)
    order = await repo.get_order(conn, order_id)
    calc = calculate_refund(
        order,
        lines,
        previous_refunds=await refunds_of(conn, order.id),
        config=hub.config.returns,
        include_shipping=include_shipping,
    )
    ts = now()
    ref = calc.to_refund(order_id=order.id, created_at=ts, reason=reason)
    await mark_refund_requested(conn, order.id, ts)
    await _store_refund(hub, conn, order, ref, connection=None, push_to_channel=True, actor=actor)
    return ref


# ----------------------------------------------------------------------------- from the channel
async def _order_for(conn: AsyncConnection, connection_id: str, external_order_id: str, what: str) -> Order:
    order = await repo.get_by_external(conn, connection_id, external_order_id)
    if order is None:
        raise NotFound(
            f"{what} from {connection_id} for unknown order {external_order_id}; it will be retried "
            "once the order has arrived",
            connection=connection_id,
        )
    return order


async def channel_refund(hub: Hub, conn: AsyncConnection, connection_id: str, msg: RefundCreated) -> None:
    """A refund made in the channel (e.g. Shopify ``refunds/create``): stored once per (connection,
    external id), ``refund.issued`` emitted and a credit note posted to every ERP; nothing is pushed back
    to the channel, which made it."""
    if not msg.refund.external_id:
        raise InputError(
            f"refund from {connection_id} for order {msg.external_order_id} has no external id; "
            "the connector must map the channel's refund id so a replay is not stored twice",
            connection=connection_id,
        )
    order = await _order_for(conn, connection_id, msg.external_order_id, "refund")
    await lock_order(conn, order.id)
    ref = msg.refund.model_copy(update={"order_id": order.id})
    if await _link_echo(conn, order, connection_id, ref):
        return
    await _store_refund(hub, conn, order, ref, connection=connection_id, push_to_channel=False, actor=connection_id)


async def _link_echo(conn: AsyncConnection, order: Order, connection_id: str, ref: Refund) -> bool:
    """A channel refund that is the echo of a refund the hub pushed to that channel (same order and
    amount, not yet tied to a channel refund) is tied to the hub's refund instead of being stored twice."""
    if order.connection != connection_id:
        return False
    known = (
        await conn.execute(
            select(RF.c.id).where(and_(RF.c.connection == connection_id, RF.c.external_id == ref.external_id))
        )
    ).first()
    if known is not None:
        return True  # stored already (a replay)
    row = (
        await conn.execute(
            select(RF.c.id)
            .where(
                and_(
                    RF.c.order_id == order.id,
                    RF.c.connection.is_(None),
                    RF.c.external_id.is_(None),
                    RF.c.currency == ref.amount.currency,
                    RF.c.amount == ref.amount.amount,
                )
            )
            .order_by(RF.c.created_at)
        )
    ).first()
    if row is None:
        return False
    await conn.execute(
        update(RF).where(RF.c.id == row.id).values(connection=connection_id, external_id=ref.external_id)
    )
    await _timeline(conn, order, "refund_confirmed", f"{row.id} confirmed by {connection_id} as {ref.external_id}")
    return True


async def channel_return(hub: Hub, conn: AsyncConnection, connection_id: str, msg: ReturnRequested) -> None:
    """A return requested in the channel: created once per (connection, external id) through
    :func:`create_return` (same checks and policy). A return the channel already approved is approved
    when the policy only wanted a review without fraud flags."""
    ext = msg.ret.external_id
    if not ext:
        raise InputError(
            f"return from {connection_id} for order {msg.external_order_id} has no external id; "
            "the connector must map the channel's return id so a replay is not stored twice",
            connection=connection_id,
        )
    if (
        await conn.execute(select(RT.c.id).where(and_(RT.c.connection == connection_id, RT.c.external_id == ext)))
    ).first():
        return
    order = await _order_for(conn, connection_id, msg.external_order_id, "return")
    by_external = {ln.external_id: ln for ln in order.lines if ln.external_id}
    lines = []
    for ln in msg.ret.lines:
        if ln.external_line_id and (not ln.sku or ln.line_no is None):
            match = by_external.get(ln.external_line_id)
            if match is None:
                raise InputError(
                    f"return {ext} from {connection_id} names line {ln.external_line_id}, which order "
                    f"{order.id} ({msg.external_order_id}) does not have",
                    connection=connection_id,
                    order_id=order.id,
                )
            ln = ln.model_copy(update={"sku": match.sku, "line_no": match.line_no})
        if not ln.sku:
            raise InputError(
                f"return {ext} from {connection_id} has a line with neither SKU nor line id", connection=connection_id
            )
        lines.append(ln.model_copy(update={"condition": None, "received_quantity": None, "disposition": None}))
    ret = await create_return(
        hub,
        conn,
        order.id,
        lines,
        actor=connection_id,
        connection=connection_id,
        external_id=ext,
        requested_at=msg.ret.requested_at,
    )
    if msg.ret.status is ReturnStatus.APPROVED and ret.status is ReturnStatus.REQUESTED and not ret.flags:
        await approve(hub, conn, ret.id, connection_id, reason=f"approved in {connection_id}")


# ----------------------------------------------------------------------------- views
def _money(m: Money) -> dict[str, str]:
    return m.to_json()


async def money_trail_for(conn: AsyncConnection, order: Order) -> dict[str, Any]:
    """The order's money trail as JSON: ``paid``, ``refunded``, ``disputed``, ``outstanding`` (Money),
    ``over_refunded``, and the refunds it counts. Refunds in another currency than the order's
    (a channel's presentment currency) are listed under ``other_currency_refunds`` and not added up."""
    refunds = await refunds_of(conn, order.id)
    same = [r for r in refunds if r.amount.currency == order.currency]
    other = [r for r in refunds if r.amount.currency != order.currency]
    pd = t.payment_disputes
    rows = (await conn.execute(select(pd).where(pd.c.order_id == order.id).order_by(pd.c.id))).all()
    disputes = [
        Dispute(amount=Money.of(Decimal(r.amount), r.currency), kind=r.kind, status=r.status)
        for r in rows
        if r.currency == order.currency
    ]
    trail = money_trail(order, same, disputes)
    return {
        "paid": _money(trail.paid),
        "refunded": _money(trail.refunded),
        "disputed": _money(trail.disputed),
        "outstanding": _money(trail.outstanding),
        "over_refunded": trail.over_refunded,
        "refunds": [
            {"id": r.id, "return_id": r.return_id, "amount": _money(r.amount), "created_at": r.created_at.isoformat()}
            for r in same
        ],
        "other_currency_refunds": [{"id": r.id, "amount": _money(r.amount)} for r in other],
    }


async def return_view(conn: AsyncConnection, return_id: str) -> dict[str, Any]:
    """A return as the API shows it: the canonical return plus its refund (or null)."""
    ret = await get_return(conn, return_id)
    doc = ret.to_json()
    ref = await _refund_of_return(conn, ret.id)
    doc["refund"] = ref.to_json() if ref else None
    open_ = ret.status not in (ReturnStatus.REJECTED, ReturnStatus.REFUNDED, ReturnStatus.CLOSED)
    doc["needs_ops_approval"] = bool(ret.flags) and open_ and await _approval(conn, ret) is None
    return doc
