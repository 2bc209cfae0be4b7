"""Orders: list, read (with timeline and money trail), direct capture, cancel, release hold."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from hub.api._routing import HUB_KEY, Router, json_response, req_actor, req_body
from hub.errors import Backpressure, InputError
from hub.model import Address, Customer, Money, Order, OrderLine, PaymentStatus, ShippingLine, Totals, new_id
from hub.orders import service
from hub.store import orders as repo

router = Router("orders")

LIST = {"type": "object", "properties": {"items": {"type": "array"}, "next": {"type": ["string", "null"]}}}


def _limit(request: web.Request) -> int:
    try:
        n = int(request.query.get("limit", "50"))
    except ValueError:
        raise InputError("limit must be an integer between 1 and 500") from None
    if not 1 <= n <= 500:
        raise InputError("limit must be an integer between 1 and 500")
    return n


@router.get(
    "/api/v1/orders",
    scope="read",
    summary="List orders, newest first",
    response=LIST,
    query={
        "limit": "1-500",
        "cursor": "from the previous page",
        "status": "order status",
        "connection": "source connection",
        "external_id": "the source's id",
    },
)
async def list_orders(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.store.connect() as conn:
        items, nxt = await repo.list_orders(
            conn,
            limit=_limit(request),
            cursor=request.query.get("cursor"),
            status=request.query.get("status"),
            connection=request.query.get("connection"),
            external_id=request.query.get("external_id"),
        )
    return json_response({"items": [o.to_json() for o in items], "next": nxt})


async def order_view(hub: Any, order_id: str) -> dict[str, Any]:
    async with hub.store.connect() as conn:
        order = await repo.get_order(conn, order_id)
        doc = order.to_json()
        doc["timeline"] = await repo.timeline(conn, order_id)
        try:
            from hub.returns.service import money_trail_for

            doc["money_trail"] = await money_trail_for(conn, order)
        except ImportError:
            pass
    return doc


@router.get(
    "/api/v1/orders/{id}",
    scope="read",
    summary="One order with its timeline, allocation explanation and money trail",
    response=Order,
)
async def get_order(request: web.Request) -> web.Response:
    return json_response(await order_view(request.app[HUB_KEY], request.match_info["id"]))


class DirectLine(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Money
    discount: Money | None = None


class DirectOrder(BaseModel):
    """An order captured directly through the API (phone, B2B, tests)."""

    external_id: str = Field(min_length=1, max_length=128)
    currency: str
    customer: Customer | None = None
    shipping_address: Address
    billing_address: Address | None = None
    lines: list[DirectLine] = Field(min_length=1)
    shipping: Money | None = None
    payment_status: PaymentStatus = PaymentStatus.PAID
    delivery_method: str = "ship"
    pickup_location: str | None = None
    allow_substitution: bool = False


def _to_order(body: DirectOrder) -> Order:
    from hub.clock import now

    cur = body.currency
    lines = [
        OrderLine(line_no=i, sku=ln.sku, quantity=ln.quantity, unit_price=ln.unit_price, discount=ln.discount)
        for i, ln in enumerate(body.lines, start=1)
    ]
    shipping = [ShippingLine(title="shipping", price=body.shipping)] if body.shipping else []
    subtotal = Money.sum((ln.net for ln in lines), cur)
    ship = Money.sum((s.net for s in shipping), cur)
    discount = Money.sum((ln.discount for ln in lines if ln.discount), cur)
    ts = now()
    return Order.model_validate(
        {
            "id": new_id("ord"),
            "connection": "api",
            "external_id": body.external_id,
            "placed_at": ts,
            "source_updated_at": ts,
            "currency": cur,
            "customer": body.customer,
            "shipping_address": body.shipping_address,
            "billing_address": body.billing_address or body.shipping_address,
            "lines": lines,
            "shipping_lines": shipping,
            "totals": Totals(
                subtotal=subtotal, shipping=ship, tax=Money.zero(cur), discount=discount, total=subtotal + ship
            ),
            "payment_status": body.payment_status,
            "delivery_method": body.delivery_method,
            "pickup_location": body.pickup_location,
            "allow_substitution": body.allow_substitution,
        }
    )


@router.post(
    "/api/v1/orders",
    scope="ops",
    summary="Capture an order directly (answers 429 under back-pressure)",
    body=DirectOrder,
    response=Order,
    status=201,
)
async def create_order(request: web.Request) -> web.Response:
    from hub.sync.stats import cached_depth

    hub = request.app[HUB_KEY]
    depth = await cached_depth(hub)
    if depth.total > hub.config.queue.max_depth:
        raise Backpressure(
            f"the hub has {depth.total} items waiting (limit {hub.config.queue.max_depth}); retry later", retry_after=5
        )
    body: DirectOrder = req_body(request)
    order = _to_order(body)
    async with hub.store.begin() as conn:
        existing = await repo.get_by_external(conn, "api", body.external_id)
        if existing is not None:
            return json_response(existing.to_json(), status=200)
        order = await service.ingest_order(hub, conn, order)
    return json_response(order.to_json(), status=201)


class CancelBody(BaseModel):
    reason: str | None = None
    lines: dict[int, int] | None = Field(
        default=None, description="line_no -> quantity; omit to cancel the whole order"
    )


@router.post(
    "/api/v1/orders/{id}/cancel",
    scope="ops",
    summary="Cancel an order, whole or partial",
    body=CancelBody,
    response=Order,
)
async def cancel_order(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    body: CancelBody = req_body(request)
    async with hub.store.begin() as conn:
        order = await repo.get_order(conn, request.match_info["id"])
        order = await service.cancel(hub, conn, order, reason=body.reason, actor=req_actor(request), lines=body.lines)
    if order.allocations:
        await service.reallocate_backorders(hub, sorted({a.sku for a in order.allocations}))
    return json_response(order.to_json())


@router.post(
    "/api/v1/orders/{id}/release-hold", scope="ops", summary="Release an order's holds and allocate it", response=Order
)
async def release_hold(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    async with hub.store.begin() as conn:
        order = await repo.get_order(conn, request.match_info["id"])
        order = await service.release_hold(hub, conn, order, actor=req_actor(request))
    return json_response(order.to_json())
