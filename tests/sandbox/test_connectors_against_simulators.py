"""The built-in connectors talk to the simulators end to end: the simulators speak what the connectors send,
and the connectors accept what the simulators answer and sign. No duplicate side effects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from connectors.amazon import AmazonConnector, AmazonSettings
from connectors.easypost import EasyPostConnector, EasyPostSettings
from connectors.odoo import OdooConnector, OdooSettings
from connectors.shipbob import ShipBobConnector, ShipBobSettings
from connectors.shopify import ShopifyConnector, ShopifySettings
from hub.http import RetryPolicy, client_for
from hub.model import FulfillmentRequest, Order, Shipment, ShipmentLine, new_id
from hub.plugins import Connector, Parcel
from sandbox.shopify.app import sign
from sandbox.systems import Systems, start_all

FAST = RetryPolicy(attempts=2, initial=0.01, max_backoff=0.05)


@pytest.fixture
async def systems() -> AsyncIterator[Systems]:
    s = await start_all()
    yield s
    await s.stop()


def attach(conn: Connector) -> Any:
    """Give the connection its outbound client (hub.http) and return it, to use as ``async with``."""
    conn.http = client_for(conn, retry=FAST)
    return conn.http


class Hook:
    """A receiver that hands every delivery to a connector, as POST /webhooks/{connection_id} does."""

    def __init__(self, conn: Connector) -> None:
        self.conn, self.url = conn, ""
        self.messages: list[str] = []
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> Hook:
        async def handle(request: web.Request) -> web.Response:
            body, headers = await request.read(), dict(request.headers)
            self.conn.verify_webhook(headers, body)
            event = self.conn.webhook_event(headers, body)
            self.messages.extend(type(m).__name__ for m in self.conn.parse_webhook(event, headers, body))
            return web.json_response({"id": event.event_id, "duplicate": False}, status=202)

        app = web.Application()
        app.router.add_post("/webhooks/x", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/webhooks/x"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def shopify_connector(systems: Systems, *, with_http: bool = True) -> ShopifyConnector:
    s = systems.shopify.state.settings
    conn = ShopifyConnector(
        "shop",
        ShopifySettings(
            base_url=systems.shopify.url,
            shop_domain=s.shop_domain,
            access_token=s.access_token,
            client_secret=s.client_secret,
            location_map={"wh": "655441491"},
        ),
    )
    if with_http:
        conn.http = client_for(conn, retry=FAST)
    return conn


async def canonical_order(systems: Systems, conn: ShopifyConnector) -> Order:
    """A Shopify order as the hub holds it after the orders/create webhook."""
    async with Hook(conn) as hook:
        systems.set_webhook_target("shopify", hook.url)
        order = systems.shopify.state.place_order([("SB-0001", 2), ("SB-0002", 1)], discount="3.00")
        assert await systems.shopify.state.drain(5)
    assert hook.messages == ["OrderUpserted"]
    body = json.dumps(order).encode()
    headers = {
        "X-Shopify-Hmac-Sha256": sign(systems.shopify.state.settings.client_secret, body),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "w1",
        "X-Shopify-Triggered-At": order["created_at"],
    }
    msg: Any = conn.parse_webhook(conn.webhook_event(headers, body), headers, body)[0]
    canonical: Order = msg.order
    return canonical


async def test_shopify_connector_against_the_shopify_simulator(systems: Systems) -> None:
    conn = shopify_connector(systems)
    store = systems.shopify.state
    http: Any = conn.http
    async with http:
        order = await canonical_order(systems, conn)
        await conn.push_inventory("SB-0003", 7, "wh")
        assert store.available("SB-0003") == 7
        shipment = Shipment(
            id=new_id("shp"),
            carrier="UPS",
            tracking_number="1Z0001",
            shipped_at=datetime.now(UTC),
            lines=[ShipmentLine(sku=ln.sku, quantity=ln.quantity, line_no=ln.line_no) for ln in order.lines],
        )
        await conn.push_fulfillment(order, shipment)
        assert store.orders[int(order.external_id)]["fulfillment_status"] == "fulfilled"
    assert store.duplicate_side_effects == 0 and store.refused_duplicates == 0


async def test_shipbob_connector_submits_once_and_reads_signed_shipping_webhooks(systems: Systems) -> None:
    order = await canonical_order(systems, shopify_connector(systems, with_http=False))
    sb = systems.shipbob.state
    conn = ShipBobConnector(
        "3pl",
        ShipBobSettings(
            base_url=systems.shipbob.url + "/2026-07",
            access_token=sb.settings.access_token,
            webhook_secret=sb.settings.webhook_secret,
            channel_id=sb.settings.channel_id,
            fulfillment_center_map={"wh-sb": sb.settings.fulfillment_center[0]},
        ),
    )
    http = attach(conn)
    request = FulfillmentRequest(
        id=new_id("ful"),
        order_id=order.id,
        location="wh-sb",
        lines=[{"sku": ln.sku, "quantity": ln.quantity, "line_no": ln.line_no} for ln in order.lines],
        created_at=datetime.now(UTC),
    )
    async with http, Hook(conn) as hook:
        systems.set_webhook_target("shipbob", hook.url)
        first = await conn.submit_fulfillment(request, order)
        again = await conn.submit_fulfillment(request, order)  # a replayed job: found by reference_id
        assert again.external_id == first.external_id
        assert ("SB-0001", "wh-sb", 100) in await conn.inventory_snapshot()
        assert await sb.settle(5)
    assert hook.messages == ["ShipmentConfirmed", "TrackingUpdated"]
    assert sb.duplicate_side_effects == 0 and sb.refused_duplicates == 1


async def test_odoo_connector_posts_a_sales_order_whose_total_matches_the_order(systems: Systems) -> None:
    order = await canonical_order(systems, shopify_connector(systems, with_http=False))
    odoo = systems.odoo.state
    s = odoo.settings
    for api in ("json2", "jsonrpc"):
        conn = OdooConnector(
            f"erp-{api}",
            OdooSettings(
                url=systems.odoo.url,
                database=s.database,
                username=s.username,
                api_key=s.api_key,
                api=api,
                company_currency="USD",
            ),
        )
        http = attach(conn)
        async with http:
            await conn.post_sales_order(order)
            await conn.post_invoice(order)
    [so] = odoo.find("sale.order", client_order_ref=order.id)
    assert so["state"] == "sale" and str(so["amount_total"]) == str(order.totals.total.amount)
    [inv] = odoo.find("account.move", ref=order.id)
    assert inv["state"] == "posted"
    assert odoo.duplicate_side_effects == 0


async def test_easypost_connector_buys_a_label_and_reads_tracker_events(systems: Systems) -> None:
    ep = systems.easypost.state
    conn = EasyPostConnector(
        "carrier",
        EasyPostSettings(
            base_url=systems.easypost.url + "/v2",
            api_key=ep.settings.api_key,
            webhook_secret=ep.settings.webhook_secret,
        ),
    )
    http = attach(conn)
    address = {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Louisville",
        "region": "KY",
        "postal_code": "40202",
        "country": "US",
    }
    async with http, Hook(conn) as hook:
        systems.set_webhook_target("easypost", hook.url)
        label = await conn.buy_label(address, address, Parcel(weight_grams=500), reference="ful_1")
        assert label.tracking_number and label.cost.amount > 0
        assert await ep.settle(5)
    assert hook.messages == ["TrackingUpdated"] * 3
    assert ep.duplicate_side_effects == 0


async def test_amazon_connector_polls_orders_pushes_quantity_and_confirms_shipment(systems: Systems) -> None:
    am = systems.amazon.state
    for _ in range(3):
        am.new_order()
    s = am.settings
    conn = AmazonConnector(
        "amz",
        AmazonSettings(
            base_url=systems.amazon.url,
            lwa_url=systems.amazon.url + "/auth/o2/token",
            client_id=s.client_id,
            client_secret=s.client_secret,
            refresh_token=s.refresh_token,
            marketplace_id=s.marketplace_id,
            seller_id=s.seller_id,
        ),
    )
    http = attach(conn)
    async with http:
        polled = await conn.poll_orders(None)
        assert len(polled.orders) == 3
        await conn.push_inventory("SB-0004", 9)
        order = polled.orders[0]
        shipment = Shipment(
            id=new_id("shp"),
            carrier="UPS",
            tracking_number="1Z0002",
            shipped_at=datetime.now(UTC),
            lines=[ShipmentLine(sku=ln.sku, quantity=ln.quantity, line_no=ln.line_no) for ln in order.lines],
        )
        await conn.push_fulfillment(order, shipment)
    assert am.quantity("SB-0004") == 9 and am.orders[str(order.external_id)]["OrderStatus"] == "Shipped"
    assert am.duplicate_side_effects == 0
