"""Payment disputes and chargebacks recorded against an order (they count in its money trail).
See docs/api.md."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.clock import now
from hub.errors import CurrencyMismatch, InputError
from hub.logging import get_logger
from hub.model import Money
from hub.orders._locks import lock_order
from hub.store import orders as repo
from hub.store import tables as t

router = Router("disputes")
log = get_logger("hub.disputes")
PD = t.payment_disputes


class DisputeBody(BaseModel):
    """A dispute or chargeback the payment provider reported for the order."""

    kind: Literal["chargeback", "dispute"]
    amount: Money = Field(description="the disputed amount, in the order's currency")
    status: Literal["open", "won", "lost"]
    reason: str | None = Field(default=None, max_length=500, description="e.g. fraudulent, product_not_received")
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the provider's dispute id; a second POST with the same id answers the first record",
    )


class DisputeView(BaseModel):
    """One recorded dispute."""

    id: int
    order_id: str
    kind: str
    amount: Money
    status: str
    reason: str | None = None
    external_id: str | None = None
    recorded_by: str | None = None
    created_at: str


def _view(row: Any) -> dict[str, Any]:
    data = row.data or {}
    return {
        "id": row.id,
        "order_id": row.order_id,
        "kind": row.kind,
        "amount": Money.of(Decimal(row.amount), row.currency).to_json(),
        "status": row.status,
        "reason": data.get("reason"),
        "external_id": data.get("external_id"),
        "recorded_by": data.get("recorded_by"),
        "created_at": row.created_at.isoformat(),
    }


async def _disputes(conn: AsyncConnection, order_id: str) -> list[Any]:
    return list((await conn.execute(select(PD).where(PD.c.order_id == order_id).order_by(PD.c.id))).all())


async def record_dispute(conn: AsyncConnection, order_id: str, body: DisputeBody, actor: str) -> tuple[Any, bool]:
    """Store the dispute with its audit row, timeline entry and KPI exception (the caller's transaction).
    Answers ``(row, created)``; with an ``external_id`` already recorded for the order, the existing row
    and ``False``. Refuses (422) an amount in another currency than the order's, or not above zero."""
    await lock_order(conn, order_id)
    order = await repo.get_order(conn, order_id)
    if body.amount.currency != order.currency:
        raise CurrencyMismatch(
            f"dispute amount is in {body.amount.currency} but order {order_id} is in {order.currency}; "
            f"send the amount in {order.currency}",
            order_id=order_id,
            field="amount.currency",
            value=body.amount.currency,
        )
    if body.amount.amount <= 0:
        raise InputError(
            f"dispute amount for order {order_id} must be above zero (got {body.amount.amount})",
            order_id=order_id,
            field="amount.amount",
        )
    if body.external_id:
        for row in await _disputes(conn, order_id):
            if (row.data or {}).get("external_id") == body.external_id:
                return row, False
    ts = now()
    data = {"reason": body.reason, "external_id": body.external_id, "recorded_by": actor}
    new_id = (
        await conn.execute(
            insert(PD)
            .values(
                order_id=order_id,
                kind=body.kind,
                amount=body.amount.amount,
                currency=body.amount.currency,
                status=body.status,
                data=data,
                created_at=ts,
            )
            .returning(PD.c.id)
        )
    ).scalar_one()
    detail = {"dispute_id": new_id, "kind": body.kind, "status": body.status, "amount": body.amount.to_json()}
    if body.external_id:
        detail["external_id"] = body.external_id
    await conn.execute(
        insert(t.audit_log).values(at=ts, actor=actor, action="dispute.recorded", target=order_id, detail=detail)
    )
    await repo.add_timeline(
        conn,
        order_id,
        f"{body.kind}_{body.status}",
        f"{body.kind} of {body.amount} ({body.status}) recorded by {actor}"
        + (f": {body.reason}" if body.reason else ""),
        str(order.status),
    )
    await conn.execute(update(t.kpi_facts).where(t.kpi_facts.c.order_id == order_id).values(had_exception=True))
    log.info(
        "dispute recorded",
        extra={"fields": {"order_id": order_id, "dispute_id": new_id, "kind": body.kind, "status": body.status}},
    )
    row = (await conn.execute(select(PD).where(PD.c.id == new_id))).one()
    return row, True


@router.post(
    "/api/v1/orders/{id}/disputes",
    scope="ops",
    summary="Record a payment dispute or chargeback; idempotent by external_id",
    body=DisputeBody,
    response=DisputeView,
    status=201,
)
async def create_dispute(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: DisputeBody = req_body(request)
    async with hub.store.begin() as conn:
        row, created = await record_dispute(conn, request.match_info["id"], body, req_actor(request))
    return json_response(_view(row), status=201 if created else 200)


@router.get(
    "/api/v1/orders/{id}/disputes",
    scope="read",
    summary="The disputes and chargebacks recorded against the order",
    response={"type": "object", "properties": {"items": {"type": "array"}, "next": {"type": ["string", "null"]}}},
)
async def list_disputes(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    order_id = request.match_info["id"]
    async with hub.store.connect() as conn:
        await repo.get_order(conn, order_id)
        rows = await _disputes(conn, order_id)
    return json_response({"items": [_view(r) for r in rows], "next": None})
