"""The Amazon connector against the sandbox Amazon simulator, over real HTTP (hub.http.client_for)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from connectors.amazon import AmazonConnector, AmazonSettings
from hub.http import client_for
from hub.model import PaymentStatus, Shipment, ShipmentLine, new_id
from hub.plugins import OrderCancelled, OrderUpserted
from sandbox.amazon.app import STATE, AmazonState, make_app
from sandbox.amazon.app import AmazonSettings as SimSettings
from sandbox.systems import Running, start


@pytest.fixture
async def sim() -> AsyncIterator[Running[AmazonState]]:
    app = make_app(SimSettings())
    running = await start(app, app[STATE], "amazon")
    yield running
    await running.stop()


@pytest.fixture
async def conn(sim: Running[AmazonState]) -> AsyncIterator[AmazonConnector]:
    s = sim.state.settings
    settings = AmazonSettings(
        client_id=s.client_id,
        client_secret=s.client_secret,
        refresh_token=s.refresh_token,
        marketplace_id=s.marketplace_id,
        seller_id=s.seller_id,
        base_url=sim.url,
        lwa_url=sim.url + "/auth/o2/token",
    )
    c = AmazonConnector("amazon-sandbox", settings)
    c.http = client_for(c)
    yield c
    await c.http.aclose()


async def test_poll_confirm_and_quantity_round_trip(sim: Running[AmazonState], conn: AmazonConnector) -> None:
    state = sim.state
    paid = state.new_order([("SB-0001", 3), ("SB-0002", 1)])
    pending = state.new_order([("SB-0003", 1)], status="Pending")

    first = await conn.poll_orders(None)
    by_id = {o.external_id: o for o in first.orders}
    assert set(by_id) == {paid["AmazonOrderId"], pending["AmazonOrderId"]}
    order = by_id[paid["AmazonOrderId"]]
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [("SB-0001", 3), ("SB-0002", 1)]
    assert str(order.totals.total.amount) == paid["OrderTotal"]["Amount"], "US: tax on top, equals OrderTotal"
    assert by_id[pending["AmazonOrderId"]].payment_status is PaymentStatus.PENDING
    assert first.cursor is not None and not first.more

    shipment = Shipment(
        id=new_id("shp"),
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        shipped_at=datetime.now(UTC),
        lines=[ShipmentLine(sku=ln.sku, quantity=ln.quantity, line_no=ln.line_no) for ln in order.lines],
    )
    await conn.push_fulfillment(order, shipment)
    assert state.orders[paid["AmazonOrderId"]]["OrderStatus"] == "Shipped"

    await conn.push_inventory("SB-0001", 42)
    assert state.quantity("SB-0001") == 42

    state.set_status(pending["AmazonOrderId"], "Canceled")
    messages, _, _ = await conn.poll_messages(first.cursor)
    kinds = {type(m).__name__: m for m in messages}
    cancelled = kinds["OrderCancelled"]
    assert isinstance(cancelled, OrderCancelled) and cancelled.external_id == pending["AmazonOrderId"]
    assert not any(isinstance(m, OrderUpserted) and m.order.external_id == paid["AmazonOrderId"] for m in messages), (
        "Shipped orders are not polled back"
    )
