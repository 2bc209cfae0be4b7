"""The Shopify connector against the simulated store (sandbox.shopify): every outbound operation
changes the store as the real API would, and the store's webhooks verify and map."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.shopify import ShopifyConnector
from hub.model import Money, Refund, RefundLine, Shipment, ShipmentLine, new_id
from hub.plugins import OrderUpserted
from sandbox.shopify.app import ShopifyStore, sign


def _receive(conn: ShopifyConnector, store: ShopifyStore, topic: str, payload: dict[str, Any]) -> Any:
    from sandbox._common import dumps

    body = dumps(payload)
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(new_id("evt")),
        "X-Shopify-Hmac-Sha256": sign(store.settings.client_secret, body),
    }
    conn.verify_webhook(headers, body)
    return conn.parse_webhook(conn.webhook_event(headers, body), headers, body)


async def test_a_sandbox_order_round_trips_through_every_operation(shop: tuple[ShopifyConnector, ShopifyStore]) -> None:
    conn, store = shop
    payload = store.place_order([("SB-0001", 2), ("SB-0002", 1)])
    (msg,) = _receive(conn, store, "orders/create", payload)
    assert isinstance(msg, OrderUpserted)
    order = msg.order
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [("SB-0001", 2), ("SB-0002", 1)]

    await conn.push_inventory("SB-0001", 7, "wh-1")
    assert store.available("SB-0001", 655441491) == 7

    shipment = Shipment(
        id=new_id("shp"),
        carrier="UPS",
        tracking_number="1Z001985YW99744790",
        lines=[ShipmentLine(sku="SB-0001", quantity=1, line_no=1)],
        shipped_at=datetime.now(UTC),
    )
    fulfilled = await conn.push_fulfillment(order, shipment)
    assert fulfilled.external_id is not None and fulfilled.external_id.startswith("gid://shopify/Fulfillment/")
    assert len(store.fulfillments) == 1

    refund = Refund(
        id=new_id("ref"),
        order_id=order.id,
        amount=Money.of("5.00", order.currency),
        lines=[RefundLine(line_no=2, sku="SB-0002", quantity=1, amount=Money.of("5.00", order.currency))],
        created_at=datetime.now(UTC),
    )
    refunded = await conn.push_refund(order, refund)
    assert refunded.external_id is not None and len(store.refunds) == 1
    assert (await conn.push_refund(order, refund)).external_id == refunded.external_id  # idempotent

    cancelled = await conn.push_cancellation(order, "customer")
    assert cancelled.external_id is not None
