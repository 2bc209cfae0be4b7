"""The ShipBob connector against the sandbox ShipBob simulator, over real HTTP (hub.http.client_for)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from connectors.shipbob import ShipBobConnector, ShipBobSettings
from hub.errors import FatalError
from hub.http import client_for
from hub.model import Address, FulfillmentLine, FulfillmentRequest, Order, TrackingStatus, new_id
from hub.plugins import ShipmentConfirmed, TrackingUpdated
from hub.testing import sample_order
from sandbox.shipbob.app import STATE, ShipBobState, make_app
from sandbox.shipbob.app import ShipBobSettings as SimSettings
from sandbox.systems import Running, start


@pytest.fixture
async def sim() -> AsyncIterator[Running[ShipBobState]]:
    app = make_app(SimSettings(auto_ship=False))
    running = await start(app, app[STATE], "shipbob")
    yield running
    await running.stop()


@pytest.fixture
async def conn(sim: Running[ShipBobState]) -> AsyncIterator[ShipBobConnector]:
    s = sim.state.settings
    settings = ShipBobSettings(
        access_token=s.access_token,
        webhook_secret=s.webhook_secret,
        channel_id=s.channel_id,
        fulfillment_center_map={"shipbob-il": s.fulfillment_center[0]},
        base_url=sim.url + "/2026-07",
    )
    c = ShipBobConnector("shipbob", settings)
    c.http = client_for(c)
    yield c
    await c.http.aclose()


def _order() -> Order:
    address = Address(
        name="Ann Buyer", line1="1 Main St", city="Chicago", region="IL", postal_code="60607", country="US"
    )
    return sample_order("shop", lines=[("SB-0001", 2, "10.00")]).model_copy(update={"shipping_address": address})


def _request_for(order_id: str) -> FulfillmentRequest:
    return FulfillmentRequest(
        id=new_id("ful"),
        order_id=order_id,
        location="shipbob-il",
        lines=[FulfillmentLine(line_no=1, sku="SB-0001", quantity=2)],
        created_at=datetime.now(UTC),
    )


async def test_submit_ship_deliver_and_retry(sim: Running[ShipBobState], conn: ShipBobConnector) -> None:
    state = sim.state
    order = _order()
    request = _request_for(order.id)
    first = await conn.submit_fulfillment(request, order)
    again = await conn.submit_fulfillment(request, order)  # a retry after a lost reply
    assert again.external_id == first.external_id and again.detail.get("duplicate") is True
    assert state.duplicate_side_effects == 0 and len(state.orders) == 1

    assert first.external_id is not None
    state.ship(int(first.external_id))
    state.deliver(int(first.external_id))
    shipped, delivered = state.sender.held[-2:]
    messages = []
    for held in (shipped, delivered):
        headers = held.sign(held.body)
        conn.verify_webhook(headers, held.body)
        messages += conn.parse_webhook(conn.webhook_event(headers, held.body), headers, held.body)
    confirmed, tracking = messages
    assert isinstance(confirmed, ShipmentConfirmed) and confirmed.fulfillment_id == request.id
    assert [(ln.sku, ln.quantity) for ln in confirmed.shipment.lines] == [("SB-0001", 2)]
    assert confirmed.shipment.location == "shipbob-il" and confirmed.shipment.tracking_number
    assert isinstance(tracking, TrackingUpdated) and tracking.event.status is TrackingStatus.DELIVERED

    shipments = await conn.shipments(first.external_id)
    assert [s.tracking_number for s in shipments] == [confirmed.shipment.tracking_number]
    with pytest.raises(FatalError, match="too late"):
        await conn.cancel_fulfillment(request.model_copy(update={"external_id": first.external_id}))


async def test_cancel_before_shipping_and_inventory(sim: Running[ShipBobState], conn: ShipBobConnector) -> None:
    order = _order()
    request = _request_for(order.id)
    created = await conn.submit_fulfillment(request, order)
    result = await conn.cancel_fulfillment(request.model_copy(update={"external_id": created.external_id}))
    assert result.detail["cancelled"] is True
    counts = await conn.inventory_snapshot()
    skus = {sku for sku, loc, _ in counts if loc == "shipbob-il"}
    assert {"SB-0001", "SB-0012"} <= skus, "every page of the catalog"
    assert dict(((s, q) for s, loc, q in counts))["SB-0001"] == sim.state.products["SB-0001"]["on_hand"]
