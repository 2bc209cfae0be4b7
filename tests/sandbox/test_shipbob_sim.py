"""The ShipBob simulator: orders by reference_id, cancel, inventory, Standard-Webhooks-signed shipping events."""

from __future__ import annotations

import json
from typing import Any

from standardwebhooks.webhooks import Webhook

from sandbox._common import Faults
from sandbox.shipbob.app import STATE, ShipBobSettings, make_app

from .conftest import Receiver, Serve

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks example secret ShipBob's docs reuse
SETTINGS = ShipBobSettings(
    access_token="pat_test", webhook_secret=SECRET, pick_pack_seconds=0.02, delivery_seconds=0.02
)
AUTH = {"Authorization": "Bearer pat_test", "shipbob_channel_id": "100100"}


def order_body(ref: str = "ORD-1001") -> dict[str, Any]:
    """A create-order body as in developer.shipbob.com/2026-07/api/orders/create-order."""
    return {
        "reference_id": ref,
        "order_number": "#1001",
        "shipping_method": "Standard",
        "type": "DTC",
        "recipient": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "address": {
                "address1": "100 Main St",
                "city": "Chicago",
                "state": "IL",
                "country": "US",
                "zip_code": "60601",
            },
        },
        "products": [{"reference_id": "SB-0001", "name": "Sandbox item 1", "quantity": 2}],
    }


async def test_requests_without_the_bearer_token_are_refused(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    resp = await client.get("/2026-07/inventory", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    assert resp.status == 401 and "denied" in (await resp.json())["message"]


async def test_order_is_created_then_a_duplicate_reference_gets_422_and_is_counted(serve: Serve) -> None:
    app = make_app(ShipBobSettings(access_token="pat_test", auto_ship=False))
    state = app[STATE]
    client = await serve(app)
    resp = await client.post("/2026-07/order", json=order_body(), headers=AUTH)
    order = await resp.json()
    assert resp.status == 201
    assert order["reference_id"] == "ORD-1001" and order["status"] == "Processing"
    shipment = order["shipments"][0]
    assert {"id", "order_id", "reference_id", "status", "location", "tracking", "products"} <= set(shipment)
    assert state.duplicate_side_effects == 0
    resp = await client.post("/order", json=order_body(), headers=AUTH)
    assert resp.status == 422 and "reference_id" in (await resp.json())["errors"]
    assert state.refused_duplicates == 1 and state.duplicate_side_effects == 0 and len(state.orders) == 1
    calls = state.recorder.find("POST")
    assert [c.idempotency_key for c in calls] == ["ORD-1001", "ORD-1001"]
    assert calls[0].fields["channel_id"] == "100100"


async def test_without_unique_references_a_second_order_is_created_and_counted(serve: Serve) -> None:
    app = make_app(ShipBobSettings(access_token="pat_test", auto_ship=False, enforce_unique_reference=False))
    state = app[STATE]
    client = await serve(app)
    for _ in range(2):
        assert (await client.post("/order", json=order_body("D-1"), headers=AUTH)).status == 201
    assert len(state.orders) == 2 and state.duplicate_side_effects == 1


async def test_a_lost_reply_still_creates_the_order_and_the_retry_is_refused_not_duplicated(serve: Serve) -> None:
    app = make_app(ShipBobSettings(access_token="pat_test", auto_ship=False, faults=Faults(rate_lost_reply=1.0)))
    state = app[STATE]
    client = await serve(app)
    resp = await client.post("/order", json=order_body("L-1"), headers=AUTH)
    assert resp.status == 504 and len(state.orders) == 1
    state.faults.update({"rate_lost_reply": 0})
    resp = await client.post("/order", json=order_body("L-1"), headers=AUTH)
    assert resp.status == 422
    found = await (await client.get("/order", params={"ReferenceIds": "L-1"}, headers=AUTH)).json()
    assert [o["reference_id"] for o in found] == ["L-1"]
    assert state.duplicate_side_effects == 0 and state.refused_duplicates == 1
    assert [c.fault for c in state.recorder.find("POST")] == ["lost_reply", None]


async def test_invalid_order_is_a_400_naming_the_field(serve: Serve) -> None:
    client = await serve(make_app(SETTINGS))
    body = order_body()
    del body["recipient"]["address"]["city"]
    resp = await client.post("/order", json=body, headers=AUTH)
    assert resp.status == 400 and "recipient.address.city" in (await resp.json())["errors"]


async def test_cancel_before_shipping_and_inventory_reflects_commitments(serve: Serve) -> None:
    app = make_app(ShipBobSettings(access_token="pat_test", auto_ship=False))
    client = await serve(app)
    order = await (await client.post("/order", json=order_body("C-1"), headers=AUTH)).json()
    inventory = await (await client.get("/inventory", headers=AUTH)).json()
    item = next(i for i in inventory if i["name"] == "Sandbox item 1")
    assert (
        item["total_committed_quantity"] == 2
        and item["total_fulfillable_quantity"] == item["total_onhand_quantity"] - 2
    )
    assert {"fulfillable_quantity", "onhand_quantity", "committed_quantity"} <= set(
        item["fulfillable_quantity_by_fulfillment_center"][0]
    )
    resp = await client.post(f"/order/{order['id']}/cancel", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200 and body["canceled_shipment_results"][0]["is_success"] is True
    inventory = await (await client.get("/inventory", headers=AUTH)).json()
    assert next(i for i in inventory if i["name"] == "Sandbox item 1")["total_committed_quantity"] == 0
    levels = await (await client.get("/2026-07/inventory-level/locations", params={"PageSize": 5}, headers=AUTH)).json()
    assert len(levels["items"]) == 5 and levels["next"] and levels["items"][0]["locations"][0]["location_id"] == 8
    page2 = await (await client.get(levels["next"], headers=AUTH)).json()
    assert page2["items"][0]["sku"] == "SB-0006"
    products = await (await client.get("/product", params={"ReferenceIds": "SB-0001"}, headers=AUTH)).json()
    assert [p["reference_id"] for p in products] == ["SB-0001"] and products[0]["fulfillable_inventory_items"][0][
        "id"
    ] == item["id"]


async def test_shipped_and_delivered_webhooks_verify_with_the_standardwebhooks_library(
    serve: Serve, receiver: Receiver
) -> None:
    app = make_app(SETTINGS)
    state = app[STATE]
    client = await serve(app)
    state.sender.set_target(receiver.url)
    order = await (await client.post("/order", json=order_body("W-1"), headers=AUTH)).json()
    assert await state.settle(5)
    assert [h.headers["x-webhook-topic"] for h in receiver.hits] == ["order.shipped", "order.shipment.delivered"]
    wh = Webhook(SECRET)
    for hit in receiver.hits:
        payload = wh.verify(hit.body, {k.lower(): v for k, v in hit.headers.items()})
        assert payload["order_id"] == order["id"] and payload["reference_id"] == "W-1"
    shipped = json.loads(receiver.hits[0].body)
    assert shipped["status"] == "Completed" and shipped["tracking"]["tracking_number"]
    assert state.orders[order["id"]]["status"] == "Fulfilled"


async def test_throttled_reply_has_shipbobs_retry_headers(serve: Serve) -> None:
    app = make_app(SETTINGS)
    app[STATE].faults.update({"rate_429": 1.0})
    client = await serve(app)
    resp = await client.get("/inventory", headers=AUTH)
    body = await resp.json()
    assert resp.status == 429 and body["statusCode"] == 429 and "Try again in" in body["message"]
    assert int(resp.headers["x-retry-after"]) >= 1 and resp.headers["x-remaining-calls"] == "0"


async def test_cancel_after_shipping_is_refused_with_the_reason(serve: Serve) -> None:
    app = make_app(ShipBobSettings(access_token="pat_test", auto_ship=False))
    state = app[STATE]
    client = await serve(app)
    order = await (await client.post("/order", json=order_body("S-1"), headers=AUTH)).json()
    state.ship(order["id"])
    resp = await client.post(f"/order/{order['id']}/cancel", headers=AUTH)
    body = await resp.json()
    assert resp.status == 422 and "Completed and cannot be cancelled" in body["errors"]["order"][0]
    assert state.orders[order["id"]]["status"] == "Fulfilled"
