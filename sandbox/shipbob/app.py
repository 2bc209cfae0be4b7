"""Simulated ShipBob 3PL.

- ``POST [/{version}]/order`` (``Authorization: Bearer``, ``shipbob_channel_id``) creates an order with one
  shipment; a second order with the same ``reference_id`` gets the documented ``422`` (developer.shipbob.com
  errors page: "You have already created a product or order with the same reference_id").
- ``POST [/{version}]/order/{id}/cancel``, ``GET [/{version}]/order/{id}``, ``GET [/{version}]/inventory``,
  ``GET [/{version}]/product``.
- After ``pick_pack_seconds`` the shipment ships and ``order.shipped`` is sent; after ``delivery_seconds``
  more, ``order.shipment.delivered``. Webhooks are signed per Standard Webhooks (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``) plus ``x-webhook-topic``; the body is the Shipment.
- Throttling is ``429`` ``{"statusCode":429,"message":...}`` with ``x-retry-after`` and ``x-remaining-calls``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hub import signing
from sandbox._common import (
    DEFAULT_CATALOG,
    Faults,
    Product,
    SimState,
    add_control_routes,
    dumps,
    fault_middleware,
    iso,
    json_response,
    new_id,
    note,
    read_json,
)

__all__ = ["STATE", "ShipBobSettings", "ShipBobState", "make_app"]

CARRIERS = (
    ("USPS", "Ground Advantage", "https://tools.usps.com/go/TrackConfirmAction?tLabels="),
    ("UPS", "Ground", "https://www.ups.com/track?tracknum="),
)


@dataclass
class ShipBobSettings:
    """Credentials, stock and timing of the simulated 3PL."""

    access_token: str = "shipbob_sandbox_pat"
    webhook_secret: str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    channel_id: int = 100100
    catalog: tuple[Product, ...] = DEFAULT_CATALOG
    fulfillment_center: tuple[int, str] = (8, "Cicero (IL)")
    pick_pack_seconds: float = 0.2
    delivery_seconds: float = 0.3
    auto_ship: bool = True
    enforce_unique_reference: bool = True  # False: a repeated reference_id creates a second order (counted)
    webhook_target: str | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int | None = 3


class ShipBobState(SimState):
    """Orders, shipments and inventory of the simulated 3PL."""

    name = "shipbob"

    def __init__(self, settings: ShipBobSettings) -> None:
        super().__init__(settings.faults, settings.seed, settings.webhook_target)
        self.settings = settings
        self.orders: dict[int, dict[str, Any]] = {}
        self.by_reference: dict[str, int] = {}
        self.products: dict[str, dict[str, Any]] = {}
        for p in settings.catalog:
            self.products[p.sku] = {
                "id": new_id(self.rng, 7),
                "inventory_id": new_id(self.rng, 7),
                "product": p,
                "on_hand": p.stock,
                "committed": 0,
            }
        self._tasks: set[asyncio.Task[None]] = set()

    def inventory_item(self, sku: str) -> dict[str, Any]:
        """The ``GET /inventory`` object of one SKU."""
        p = self.products[sku]
        fc_id, fc_name = self.settings.fulfillment_center
        fulfillable = p["on_hand"] - p["committed"]
        return {
            "id": p["inventory_id"],
            "name": p["product"].title,
            "is_digital": False,
            "is_case_pick": False,
            "is_lot": False,
            "dimensions": {"weight": p["product"].grams / 28.35, "length": 6, "width": 4, "depth": 2},
            "total_fulfillable_quantity": fulfillable,
            "total_onhand_quantity": p["on_hand"],
            "total_committed_quantity": p["committed"],
            "total_sellable_quantity": fulfillable,
            "total_awaiting_quantity": 0,
            "total_exception_quantity": 0,
            "total_internal_transfer_quantity": 0,
            "total_backordered_quantity": 0,
            "is_active": True,
            "fulfillable_quantity_by_fulfillment_center": [
                {
                    "id": fc_id,
                    "name": fc_name,
                    "fulfillable_quantity": fulfillable,
                    "onhand_quantity": p["on_hand"],
                    "committed_quantity": p["committed"],
                    "awaiting_quantity": 0,
                    "internal_transfer_quantity": 0,
                }
            ],
        }

    def set_stock(self, sku: str, on_hand: int) -> None:
        """Set the on-hand quantity of a SKU (e.g. after a receiving)."""
        self.products[sku]["on_hand"] = on_hand

    def ship(self, order_id: int) -> dict[str, Any]:
        """Ship an order's shipment now and send ``order.shipped``."""
        order = self.orders[order_id]
        shipment: dict[str, Any] = order["shipments"][0]
        if shipment["status"] != "Processing":
            return shipment
        carrier, service, url = self.rng.choice(CARRIERS)
        number = (
            f"9400{self.rng.randrange(10**17, 10**18)}"
            if carrier == "USPS"
            else f"1Z{self.rng.randrange(10**15, 10**16)}"
        )
        now = iso()
        shipment.update(
            {
                "status": "Completed",
                "status_details": [{"name": "Shipped", "description": "Label printed and scanned by the carrier"}],
                "last_update_at": now,
                "actual_fulfillment_date": now,
                "tracking": {
                    "carrier": carrier,
                    "tracking_number": number,
                    "carrier_service": service,
                    "tracking_url": url + number,
                    "bol": None,
                    "shipping_date": now,
                },
            }
        )
        order["status"] = "Fulfilled"
        for line in order["products"]:
            p = self.products.get(line["reference_id"])
            if p:
                p["on_hand"] -= line["quantity"]
                p["committed"] -= line["quantity"]
        self.send_webhook("order.shipped", shipment)
        return shipment

    def deliver(self, order_id: int) -> dict[str, Any]:
        """Mark an order's shipment delivered and send ``order.shipment.delivered``."""
        shipment: dict[str, Any] = self.orders[order_id]["shipments"][0]
        shipment["status_details"] = [{"name": "Delivered", "description": "Delivered to the recipient"}]
        shipment["delivery_date"] = shipment["last_update_at"] = iso()
        self.send_webhook("order.shipment.delivered", shipment)
        return shipment

    def send_webhook(self, topic: str, payload: dict[str, Any]) -> str:
        """Send one Standard Webhooks delivery with ``x-webhook-topic``; returns its ``webhook-id``."""
        body = dumps(payload)
        msg_id = f"msg_{self.rng.getrandbits(96):024x}"
        secret = self.settings.webhook_secret
        self.sender.send(
            topic, body, lambda b: {**signing.headers([secret], msg_id, b), "x-webhook-topic": topic}, msg_id
        )
        return msg_id

    def _schedule(self, order_id: int) -> None:
        async def run() -> None:
            await asyncio.sleep(self.settings.pick_pack_seconds)
            if self.orders[order_id]["shipments"][0]["status"] != "Processing":
                return
            self.ship(order_id)
            await asyncio.sleep(self.settings.delivery_seconds)
            self.deliver(order_id)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, max_wait: float = 10.0) -> bool:
        """Wait for the pick/pack/delivery timers running now, then for their webhooks."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=max_wait)
            if pending:
                return False
        return await self.drain(max_wait)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().close()


STATE: web.AppKey[ShipBobState] = web.AppKey("shipbob_state", ShipBobState)


def make_app(settings: ShipBobSettings | None = None) -> web.Application:
    """The simulated 3PL as an aiohttp application; its state is ``app[STATE]``."""
    settings = settings or ShipBobSettings()
    state = ShipBobState(settings)

    def throttled(request: web.Request) -> web.Response:
        wait = state.rng.randint(1, 30)
        return json_response(
            {"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."},
            429,
            {"x-retry-after": str(wait), "x-remaining-calls": "0"},
        )

    def server_error(request: web.Request, status: int) -> web.Response:
        return json_response(
            {
                "title": "Service Unavailable" if status == 503 else "An error occurred while processing your request.",
                "status": status,
            },
            status,
        )

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_sandbox/"):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token, settings.access_token):
                return json_response({"message": "Authorization has been denied for this request."}, 401)
        resp: web.StreamResponse = await handler(request)
        return resp

    app = web.Application(middlewares=[fault_middleware(state, throttled, server_error), auth])
    app[STATE] = state
    add_control_routes(app, state)
    for prefix in ("", "/{version}"):
        app.router.add_post(prefix + "/order", _create_order)
        app.router.add_get(prefix + "/order", _list_orders)
        app.router.add_get(prefix + "/order/{order_id:\\d+}/shipment", _order_shipments)
        app.router.add_get(prefix + "/inventory-level/locations", _inventory_levels)
        app.router.add_get(prefix + "/order/{order_id:\\d+}", _get_order)
        app.router.add_post(prefix + "/order/{order_id:\\d+}/cancel", _cancel_order)
        app.router.add_get(prefix + "/inventory", _inventory)
        app.router.add_get(prefix + "/product", _products)
    return app


def _problem(status: int, title: str, errors: dict[str, list[str]]) -> web.Response:
    return json_response(
        {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5",
            "title": title,
            "status": status,
            "errors": errors,
        },
        status,
    )


async def _create_order(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    if not isinstance(body, dict):
        return _problem(400, "One or more validation errors occurred.", {"": ["The body must be a JSON object."]})
    ref = body.get("reference_id")
    note(request, reference_id=ref, channel_id=request.headers.get("shipbob_channel_id"), idempotency_key=str(ref))
    missing = {
        k: [f"The {k} field is required."]
        for k in ("reference_id", "shipping_method", "recipient", "products")
        if not body.get(k)
    }
    recipient = body.get("recipient") or {}
    address = recipient.get("address") or {}
    for k in ("address1", "city", "country"):
        if recipient and not address.get(k):
            missing[f"recipient.address.{k}"] = [f"The {k} field is required."]
    if recipient and not recipient.get("name"):
        missing["recipient.name"] = ["The name field is required."]
    if missing:
        return _problem(400, "One or more validation errors occurred.", missing)
    if str(ref) in state.by_reference and state.settings.enforce_unique_reference:
        state.recorder.duplicate("shipbob.order", f"reference_id {ref}", refused=True)
        return _problem(
            422,
            "Duplicate reference ID",
            {
                "reference_id": [
                    f"An order with reference_id {ref} already exists (order {state.by_reference[str(ref)]})."
                ]
            },
        )
    for i, item in enumerate(body["products"]):
        if int(item.get("quantity", 0)) < 1:
            return _problem(
                400,
                "One or more validation errors occurred.",
                {f"products[{i}].quantity": ["Quantity must be at least 1."]},
            )
        if str(item.get("reference_id")) not in state.products and not item.get("name"):
            return _problem(
                400,
                "One or more validation errors occurred.",
                {
                    f"products[{i}].name": [
                        f"Product {item.get('reference_id')} does not exist; a name is required to create it."
                    ]
                },
            )
    state.recorder.side_effect("shipbob.order", str(ref))
    lines = []
    for item in body["products"]:
        sku = str(item.get("reference_id"))
        qty = int(item["quantity"])
        p = state.products.get(sku)
        if p is None:
            p = {
                "id": new_id(state.rng, 7),
                "inventory_id": new_id(state.rng, 7),
                "product": Product(sku, str(item["name"]), "0.00", stock=0),
                "on_hand": 0,
                "committed": 0,
            }
            state.products[sku] = p
        p["committed"] += qty
        lines.append(
            {
                "id": p["id"],
                "reference_id": sku,
                "quantity": qty,
                "quantity_unit_of_measure_code": None,
                "sku": sku,
                "gtin": None,
                "upc": None,
                "unit_price": item.get("unit_price"),
                "external_line_id": item.get("external_line_id"),
            }
        )
    oid = new_id(state.rng, 9)
    sid = new_id(state.rng, 9)
    now = iso()
    fc_id, fc_name = state.settings.fulfillment_center
    shipment = {
        "id": sid,
        "order_id": oid,
        "reference_id": ref,
        "recipient": recipient,
        "created_date": now,
        "last_update_at": now,
        "last_tracking_update_at": None,
        "status": "Processing",
        "status_details": [],
        "location": {"id": fc_id, "name": fc_name},
        "invoice_amount": None,
        "invoice_currency_code": "USD",
        "insurance_value": None,
        "ship_option": body.get("shipping_method"),
        "tracking": None,
        "products": [
            {
                "id": x["id"],
                "reference_id": x["reference_id"],
                "name": state.products[str(x["reference_id"])]["product"].title,
                "sku": x["sku"],
                "inventory_items": [
                    {
                        "id": state.products[str(x["reference_id"])]["inventory_id"],
                        "name": state.products[str(x["reference_id"])]["product"].title,
                        "quantity": x["quantity"],
                        "quantity_committed": x["quantity"],
                    }
                ],
            }
            for x in lines
        ],
        "package_material_type": "Unknown",
        "require_signature": False,
        "estimated_fulfillment_date": None,
        "estimated_fulfillment_date_status": "AwaitingInventoryAllocation",
        "actual_fulfillment_date": None,
        "delivery_date": None,
        "gift_message": body.get("gift_message"),
    }
    order = {
        "id": oid,
        "created_date": now,
        "purchase_date": body.get("purchase_date"),
        "reference_id": ref,
        "order_number": body.get("order_number"),
        "status": "Processing",
        "type": body.get("type", "DTC"),
        "channel": {"id": state.settings.channel_id, "name": "Orderhub"},
        "shipping_method": body.get("shipping_method"),
        "recipient": recipient,
        "products": lines,
        "tags": body.get("tags") or [],
        "shipments": [shipment],
        "gift_message": body.get("gift_message"),
        "shipping_terms": body.get("shipping_terms"),
        "financials": body.get("financials"),
    }
    state.orders[oid] = order
    state.by_reference[str(ref)] = oid
    if state.settings.auto_ship:
        state._schedule(oid)
    return json_response(order, 201)


async def _get_order(request: web.Request) -> web.Response:
    state = request.app[STATE]
    order = state.orders.get(int(request.match_info["order_id"]))
    if order is None:
        return json_response({"message": "Order not found"}, 404)
    return json_response(order)


async def _cancel_order(request: web.Request) -> web.Response:
    state = request.app[STATE]
    oid = int(request.match_info["order_id"])
    note(request, order_id=oid)
    order = state.orders.get(oid)
    if order is None:
        return json_response({"message": "Order not found"}, 404)
    results = []
    for shipment in order["shipments"]:
        ok = shipment["status"] in ("Processing", "On Hold", "Exception")
        if ok:
            shipment["status"] = "Cancelled"
            shipment["last_update_at"] = iso()
            for line in order["products"]:
                p = state.products.get(str(line["reference_id"]))
                if p:
                    p["committed"] -= line["quantity"]
        results.append(
            {
                "action": "Cancel",
                "shipment_id": shipment["id"],
                "is_success": ok,
                "reason": "" if ok else f"Shipment is {shipment['status']} and cannot be cancelled",
            }
        )
    if not all(r["is_success"] for r in results):
        reasons = [str(r["reason"]) for r in results if not r["is_success"]]
        return json_response(
            {
                "title": f"Order {oid} cannot be cancelled",
                "status": 422,
                "errors": {"order": reasons},
                "canceled_shipment_results": results,
            },
            422,
        )
    order["status"] = "Cancelled"
    return json_response({"order_id": oid, "order": order, "status": "Success", "canceled_shipment_results": results})


async def _list_orders(request: web.Request) -> web.Response:
    """``GET /order?ReferenceIds=a,b``: a JSON array (newest first), as ShipBob answers it."""
    state = request.app[STATE]
    refs = request.query.get("ReferenceIds")
    note(request, reference_ids=refs)
    orders = list(state.orders.values())
    if refs:
        wanted = set(refs.split(","))
        orders = [o for o in orders if str(o["reference_id"]) in wanted]
    limit = int(request.query.get("Limit", 50))
    return json_response(list(reversed(orders))[:limit], headers={"total-count": str(len(orders))})


async def _order_shipments(request: web.Request) -> web.Response:
    state = request.app[STATE]
    order = state.orders.get(int(request.match_info["order_id"]))
    if order is None:
        return json_response({"message": "Order not found"}, 404)
    return json_response(order["shipments"])


async def _inventory_levels(request: web.Request) -> web.Response:
    """``GET /inventory-level/locations``: levels per SKU and fulfillment center, paged with ``next`` links."""
    state = request.app[STATE]
    try:
        size = max(1, min(250, int(request.query.get("PageSize", 50))))
        start = int(request.query.get("Cursor", 0))
    except ValueError:
        return _problem(
            400, "One or more validation errors occurred.", {"PageSize": ["PageSize and Cursor must be integers."]}
        )
    skus = list(state.products)
    fc_id, fc_name = state.settings.fulfillment_center
    items = []
    for sku in skus[start : start + size]:
        p = state.products[sku]
        fulfillable = p["on_hand"] - p["committed"]
        levels = {
            "on_hand_quantity": p["on_hand"],
            "fulfillable_quantity": fulfillable,
            "committed_quantity": p["committed"],
            "awaiting_quantity": 0,
            "backordered_quantity": 0,
        }
        items.append(
            {
                "inventory_id": p["inventory_id"],
                "sku": sku,
                "name": p["product"].title,
                **levels,
                "locations": [{"location_id": fc_id, "location_name": fc_name, **levels}],
            }
        )
    nxt = f"/inventory-level/locations?PageSize={size}&Cursor={start + size}" if start + size < len(skus) else None
    return json_response({"items": items, "next": nxt, "prev": None})


async def _inventory(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response([state.inventory_item(sku) for sku in state.products])


async def _products(request: web.Request) -> web.Response:
    state = request.app[STATE]
    wanted = request.query.get("ReferenceIds")
    skus = [s for s in wanted.split(",") if s in state.products] if wanted else list(state.products)
    out = []
    for sku in skus:
        p = state.products[sku]
        inv = state.inventory_item(sku)
        out.append(
            {
                "id": p["id"],
                "reference_id": sku,
                "bundle_root_information": None,
                "name": p["product"].title,
                "sku": sku,
                "barcode": None,
                "unit_price": float(p["product"].price),
                "channel": {"id": state.settings.channel_id, "name": "Orderhub"},
                "total_fulfillable_quantity": inv["total_fulfillable_quantity"],
                "total_onhand_quantity": inv["total_onhand_quantity"],
                "total_committed_quantity": inv["total_committed_quantity"],
                "fulfillable_inventory_items": [{"id": p["inventory_id"], "name": p["product"].title, "quantity": 1}],
                "fulfillable_quantity_by_fulfillment_center": inv["fulfillable_quantity_by_fulfillment_center"],
            }
        )
    return json_response(out)
