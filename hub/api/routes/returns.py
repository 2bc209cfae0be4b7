"""Returns: request, read, approve, reject, receive (condition per line) and refund. See docs/api.md."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.model import Condition, Money, Refund, Return, ReturnLine
from hub.returns import service
from hub.returns.lifecycle import Receipt

router = Router("returns")


class RequestedLine(BaseModel):
    """One line of a return request: the SKU, the units and the customer's reason."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    reason: str | None = Field(default=None, description="e.g. defective, wrong_item, damaged, changed_mind")
    line_no: int | None = Field(default=None, description="the order line, when the SKU is on several")


class ReturnRequestBody(BaseModel):
    order_id: str = Field(min_length=1)
    lines: list[RequestedLine] = Field(min_length=1)


class DecisionBody(BaseModel):
    reason: str | None = Field(default=None, description="why (kept on the return and in the audit log)")


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, description="the reason the customer is told")


class ReceivedLine(BaseModel):
    """What arrived for one line: its condition, and optionally the units and where it was put."""

    sku: str = Field(min_length=1)
    condition: Condition
    quantity: int | None = Field(default=None, ge=0, description="default: the units requested (0 when missing)")
    line_no: int | None = None
    location: str | None = Field(default=None, description="restock location; default: where the line shipped from")


class ReceiveBody(BaseModel):
    lines: list[ReceivedLine] = Field(min_length=1)
    weight_grams: int | None = Field(default=None, ge=0, description="the parcel's measured weight")
    expected_weight_grams: int | None = Field(default=None, gt=0, description="what the parcel should weigh")


class RefundBody(BaseModel):
    include_shipping: bool | None = Field(default=None, description="default: [returns] refund_shipping")
    return_shipping_cost: Money | None = Field(
        default=None, description="the return label; deducted when [returns] return_shipping_paid_by = customer"
    )


@router.post(
    "/api/v1/returns",
    scope="ops",
    summary="Request a return; the policy approves, rejects (with the reason) or leaves it for ops review",
    body=ReturnRequestBody,
    response=Return,
    status=201,
)
async def create_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: ReturnRequestBody = req_body(request)
    lines = [ReturnLine(sku=ln.sku, quantity=ln.quantity, reason=ln.reason, line_no=ln.line_no) for ln in body.lines]
    async with hub.store.begin() as conn:
        ret = await service.create_return(hub, conn, body.order_id, lines, actor=req_actor(request))
    async with hub.store.connect() as conn:
        doc = await service.return_view(conn, ret.id)
    return json_response(doc, status=201)


@router.get("/api/v1/returns/{id}", scope="read", summary="One return with its refund", response=Return)
async def get_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.store.connect() as conn:
        doc = await service.return_view(conn, request.match_info["id"])
    return json_response(doc)


@router.post(
    "/api/v1/returns/{id}/approve",
    scope="ops",
    summary="Approve a requested return, or the refund of a flagged one",
    body=DecisionBody,
    response=Return,
)
async def approve_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: DecisionBody = req_body(request)
    rid = request.match_info["id"]
    async with hub.store.begin() as conn:
        await service.approve(hub, conn, rid, req_actor(request), reason=body.reason)
    async with hub.store.connect() as conn:
        return json_response(await service.return_view(conn, rid))


@router.post(
    "/api/v1/returns/{id}/reject",
    scope="ops",
    summary="Reject a requested return with the reason the customer is told",
    body=RejectBody,
    response=Return,
)
async def reject_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: RejectBody = req_body(request)
    rid = request.match_info["id"]
    async with hub.store.begin() as conn:
        await service.reject(hub, conn, rid, req_actor(request), body.reason)
    async with hub.store.connect() as conn:
        return json_response(await service.return_view(conn, rid))


@router.post(
    "/api/v1/returns/{id}/receive",
    scope="ops",
    summary="Record what arrived (condition per line); restocks and re-allocates backorders",
    body=ReceiveBody,
    response=Return,
)
async def receive_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: ReceiveBody = req_body(request)
    rid = request.match_info["id"]
    receipts = [
        Receipt(sku=ln.sku, condition=ln.condition, quantity=ln.quantity, line_no=ln.line_no, location=ln.location)
        for ln in body.lines
    ]
    await service.receive(
        hub,
        rid,
        receipts,
        actor=req_actor(request),
        weight_grams=body.weight_grams,
        expected_weight_grams=body.expected_weight_grams,
    )
    async with hub.store.connect() as conn:
        return json_response(await service.return_view(conn, rid))


@router.post(
    "/api/v1/returns/{id}/refund",
    scope="ops",
    summary="Refund a received return exactly, once (201; 200 with the same refund when already refunded)",
    body=RefundBody,
    response=Refund,
    status=201,
)
async def refund_return(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: RefundBody = req_body(request)
    async with hub.store.begin() as conn:
        result = await service.refund_return(
            hub,
            conn,
            request.match_info["id"],
            actor=req_actor(request),
            include_shipping=body.include_shipping,
            return_shipping_cost=body.return_shipping_cost,
        )
    return json_response(result.refund.to_json(), status=201 if result.created else 200)
