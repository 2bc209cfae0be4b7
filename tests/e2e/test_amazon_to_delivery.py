"""End to end: an Amazon order is polled, allocated to a ShipBob location, shipped with an EasyPost tracking
number, confirmed back to Amazon and delivered by an EasyPost tracker event.

Real PostgreSQL and Redis; Amazon (LWA + SP-API) and ShipBob are respx routes reached through the hub's own
HTTP clients. Inbound webhooks go through ``hub.sync.inbox.accept`` (what ``POST /webhooks/{connection_id}``
does) with real signatures: Standard Webhooks for ShipBob (``hub.signing.headers``), ``X-Hmac-Signature`` for
EasyPost (``connectors.easypost._connector.signature``).

Payload sources (values changed in copies, field names never):
- Amazon: tests/connectors/amazon/fixtures/getOrders_200.json + getOrderItems_200.json (the ``x-amzn-api-sandbox``
  examples of ordersV0.json); ``ShippingAddress``/``BuyerInfo`` from the getOrders example of the same model (they
  come with a Restricted Data Token); ``x-amzn-RateLimit-Limit`` on every answer with the operation's documented
  rate (FORMATS.md 2.1); LWA token answer as documented (access_token, token_type, expires_in).
- ShipBob: tests/connectors/shipbob/fixtures/create_order_201.json and webhooks/order_shipped.json (+ headers).
- EasyPost: tests/connectors/easypost/fixtures/tracking-webhook.json (a delivered ``tracker.updated`` Event).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx
from sqlalchemy import func, select

from connectors.amazon._connector import package_reference_id
from connectors.easypost._connector import signature as easypost_signature
from hub import signing
from hub.model import AllocationStatus, Order, OrderStatus, Shipment
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from hub.sync import inbox
from hub.sync.polling import get_cursor, poll_once
from tests.e2e.conftest import (
    AMAZON_ACCESS_TOKEN,
    EASYPOST_API,
    EASYPOST_SECRET,
    FC_ID,
    LWA_URL,
    MARKETPLACE,
    SELLER_ID,
    SHIPBOB_API,
    SHIPBOB_SECRET,
    SHIPBOB_TOKEN,
    SP_API,
    drain,
    fixture,
    settle,
)

AMAZON_ORDER_ID = "902-1845936-5435065"
ORDER_ITEM_ID = "05015851154158"
SKU = "NABetaASINB00551Q3CS"
SHIPBOB_ORDER_ID = 100000001
SHIPBOB_SHIPMENT_ID = 100810005
TRACKING = "EZ1000000001"  # an EasyPost test tracking code (EZ1000000001: pre_transit ... delivered)
SEEDED = 5


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- Amazon
def amazon_order(now: datetime) -> dict[str, Any]:
    """The first order of getOrders_200.json, placed an hour ago, with the RDT fields the hub needs."""
    order: dict[str, Any] = copy.deepcopy(fixture("amazon", "getOrders_200.json")["payload"]["Orders"][0])
    assert order["AmazonOrderId"] == AMAZON_ORDER_ID and order["OrderStatus"] == "Unshipped"
    order.update(
        PurchaseDate=_iso(now - timedelta(hours=1)),
        LastUpdateDate=_iso(now - timedelta(minutes=10)),
        EarliestShipDate=_iso(now),
        LatestShipDate=_iso(now + timedelta(days=2)),
        EarliestDeliveryDate=_iso(now + timedelta(days=3)),
        LatestDeliveryDate=_iso(now + timedelta(days=7)),
        # ordersV0.json, getOrders example: ShippingAddress and BuyerInfo (restricted data, returned with an RDT)
        ShippingAddress={
            "Name": "Michigan address",
            "AddressLine1": "1 Cross St.",
            "City": "Canton",
            "StateOrRegion": "MI",
            "PostalCode": "48817",
            "CountryCode": "US",
        },
        BuyerInfo={"BuyerEmail": "user@example.com", "BuyerName": "John Doe"},
    )
    return order


def amazon_routes(router: respx.Router, now: datetime, *, rate_headers: bool = False) -> dict[str, respx.Route]:
    """LWA and the SP-API operations the hub uses. With ``rate_headers`` every answer carries
    ``x-amzn-RateLimit-Limit`` with the operation's documented rate, as Amazon's do (FORMATS.md 2.1)."""
    order = amazon_order(now)
    items = fixture("amazon", "getOrderItems_200.json")
    assert items["payload"]["OrderItems"][0]["SellerSKU"] == SKU
    listing = {**fixture("amazon", "patchListingsItem_200.json"), "sku": SKU}

    def rate(value: str) -> dict[str, str]:
        return {"x-amzn-RateLimit-Limit": value, "x-amzn-RequestId": "e2e-request"} if rate_headers else {}

    return {
        "lwa": router.post(LWA_URL, name="lwa").respond(
            200, json={"access_token": AMAZON_ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600}
        ),
        "get_orders": router.get(f"{SP_API}/orders/v0/orders", name="get_orders").respond(
            200, headers=rate("0.0167"), json={"payload": {"Orders": [order]}}
        ),
        "get_items": router.get(f"{SP_API}/orders/v0/orders/{AMAZON_ORDER_ID}/orderItems", name="get_items").respond(
            200, headers=rate("0.5"), json=items
        ),
        "confirm": router.post(
            f"{SP_API}/orders/v0/orders/{AMAZON_ORDER_ID}/shipmentConfirmation", name="confirm"
        ).respond(204, headers=rate("2.0")),
        "listings": router.patch(f"{SP_API}/listings/2021-08-01/items/{SELLER_ID}/{SKU}", name="listings").respond(
            200, headers=rate("5.0"), json=listing
        ),
    }


# ----------------------------------------------------------------------------- ShipBob
def shipbob_routes(router: respx.Router) -> dict[str, respx.Route]:
    def created(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        body = {**fixture("shipbob", "create_order_201.json"), "reference_id": sent["reference_id"]}
        body["order_number"] = sent["order_number"]
        return httpx.Response(201, json=body)

    return {
        "create_order": router.post(f"{SHIPBOB_API}/order", name="create_order").mock(side_effect=created),
    }


def shipbob_shipped(fulfillment_id: str, now: datetime) -> tuple[dict[str, str], bytes]:
    """order.shipped for our order: webhooks/order_shipped.json with our ids, FC, SKU and EasyPost tracking."""
    body = fixture("shipbob", "webhooks/order_shipped.json")
    hdrs = fixture("shipbob", "webhooks/order_shipped.headers.json")
    shipped = now - timedelta(minutes=1)
    body.update(
        id=SHIPBOB_SHIPMENT_ID,
        order_id=SHIPBOB_ORDER_ID,
        reference_id=fulfillment_id,
        location={"id": FC_ID, "name": "Moreno Valley (CA)"},
        last_update_at=shipped.isoformat(),
        actual_fulfillment_date=shipped.isoformat(),
    )
    body["tracking"].update(
        carrier="USPS",
        tracking_number=TRACKING,
        carrier_service="GroundAdvantage",
        tracking_url=f"https://track.easypost.com/{TRACKING}",
        shipping_date=shipped.isoformat(),
    )
    product = copy.deepcopy(body["products"][0])
    product.update(reference_id=SKU, sku=SKU, name="B00551Q3CS [Card Book]")
    product["inventory_items"][0].update(name="B00551Q3CS [Card Book]", quantity=1)
    body["products"] = [product]
    raw = json.dumps(body).encode()
    headers = {
        "x-webhook-topic": hdrs["x-webhook-topic"],
        "content-type": hdrs["content-type"],
        **signing.headers([SHIPBOB_SECRET], hdrs["webhook-id"], raw),
    }
    return headers, raw


def resigned(headers: dict[str, str], body: bytes, msg_id: str) -> dict[str, str]:
    """The same ShipBob body as a new message (a manual re-send from ShipBob's dashboard gets a new id)."""
    return {**headers, **signing.headers([SHIPBOB_SECRET], msg_id, body)}


# ----------------------------------------------------------------------------- EasyPost
def easypost_delivered(now: datetime) -> tuple[dict[str, str], bytes]:
    """tracking-webhook.json (a delivered tracker.updated Event) for our tracking code."""
    event = fixture("easypost", "tracking-webhook.json")
    delivered = now - timedelta(seconds=5)
    event.update(id="evt_e2e0000000000000000000000000001", created_at=_iso(delivered), updated_at=_iso(delivered))
    result = event["result"]
    result.update(
        id="trk_e2e0000000000000000000000000001",
        tracking_code=TRACKING,
        carrier="USPS",
        status="delivered",
        created_at=_iso(now - timedelta(minutes=1)),
        updated_at=_iso(delivered),
    )
    result["tracking_details"][-1].update(datetime=_iso(delivered))
    raw = json.dumps(event).encode()
    return {"content-type": "application/json", "x-hmac-signature": easypost_signature(EASYPOST_SECRET, raw)}, raw


# ----------------------------------------------------------------------------- reading the hub
async def load_order(hub: Hub) -> Order:
    async with hub.store.connect() as conn:
        found = await repo.get_by_external(conn, "amazon", AMAZON_ORDER_ID)
        assert found is not None, "the polled Amazon order is not in the hub"
        return await repo.get_order(conn, found.id)


async def level(hub: Hub) -> tuple[int, int]:
    async with hub.store.connect() as conn:
        lv = await inv.get_level(conn, SKU, "shipbob-ca")
    return lv.on_hand, lv.reserved


async def event_types(hub: Hub, order_id: str) -> list[str]:
    async with hub.store.connect() as conn:
        return [e.type for e in await outbox.events_for(conn, order_id)]


async def count(hub: Hub, table: Any, *where: Any) -> int:
    async with hub.store.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def snapshot(hub: Hub, order_id: str) -> dict[str, Any]:
    """Everything a repeated delivery must leave alone."""
    order = await load_order(hub)
    async with hub.store.connect() as conn:
        version = await repo.get_version(conn, order_id)
    return {
        "status": order.status,
        "version": version,
        "level": await level(hub),
        "events": await event_types(hub, order_id),
        "shipments": await count(hub, t.shipments, t.shipments.c.order_id == order_id),
        "jobs": await count(hub, t.sync_jobs),
    }


# ----------------------------------------------------------------------------- the test
async def test_amazon_order_is_polled_allocated_shipped_confirmed_and_delivered_exactly_once(
    hub: Hub, router: respx.Router
) -> None:
    now = datetime.now(UTC)
    # Amazon's real per-operation x-amzn-RateLimit-Limit headers are sent (they must not throttle the connection).
    amazon = amazon_routes(router, now, rate_headers=True)
    shipbob = shipbob_routes(router)
    # the hub registers the 3PL's tracking number with the carrier so that its tracker webhooks reach the hub
    trackers = router.post(f"{EASYPOST_API}/trackers", name="trackers").respond(
        200, json={"id": "trk_e2e", "object": "Tracker", "tracking_code": "EZ1000000001", "status": "pre_transit"}
    )
    async with hub.store.begin() as conn:
        await inv.adjust(conn, SKU, "shipbob-ca", SEEDED, cause="receipt")

    # 1. Poll Amazon: the order arrives, paid (Unshipped), is reserved at shipbob-ca and released to ShipBob.
    assert await poll_once(hub, "amazon") == 1
    order = await load_order(hub)
    assert order.status == OrderStatus.RELEASED
    assert order.channel_status == "Unshipped"
    assert [(a.sku, a.location, a.quantity, a.status) for a in order.allocations] == [
        (SKU, "shipbob-ca", 1, AllocationStatus.RELEASED)
    ]
    fulfillment_id = order.allocations[0].fulfillment_id
    assert fulfillment_id and fulfillment_id.startswith("ful_")
    assert await level(hub) == (SEEDED, 1)
    assert await get_cursor(hub, "amazon") == amazon_order(now)["LastUpdateDate"]
    params = parse_qs(amazon["get_orders"].calls[0].request.url.query.decode())
    assert params["MarketplaceIds"] == [MARKETPLACE] and params["FulfillmentChannels"] == ["MFN"]
    assert "Unshipped" in params["OrderStatuses"][0].split(",")
    assert amazon["get_orders"].calls[0].request.headers["x-amz-access-token"] == AMAZON_ACCESS_TOKEN

    # 2. The worker submits the fulfilment: one ShipBob order, reference_id = the hub's fulfilment id.
    await settle(hub)
    assert shipbob["create_order"].call_count == 1
    sent = shipbob["create_order"].calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {SHIPBOB_TOKEN}"
    assert sent.headers["shipbob_channel_id"] == "100102"
    body = json.loads(sent.content)
    assert body["reference_id"] == fulfillment_id
    assert body["order_number"] == AMAZON_ORDER_ID
    assert body["location_id"] == FC_ID
    assert body["products"] == [
        {"reference_id": SKU, "name": "B00551Q3CS [Card Book]", "quantity": 1, "external_line_id": 1}
    ]
    assert body["recipient"]["name"] == "Michigan address"
    assert body["recipient"]["address"] == {
        "address1": "1 Cross St.",
        "city": "Canton",
        "state": "MI",
        "country": "US",
        "zip_code": "48817",
    }
    assert {"name": "orderhub_order", "value": order.id} in body["tags"]
    async with hub.store.connect() as conn:
        ful = (await conn.execute(select(t.fulfillments).where(t.fulfillments.c.id == fulfillment_id))).one()
    assert (ful.status, ful.external_id) == ("submitted", str(SHIPBOB_ORDER_ID))

    # Polling the same order again (same LastUpdateDate) changes nothing and makes no second ShipBob order.
    before = await snapshot(hub, order.id)
    assert await poll_once(hub, "amazon") == 1
    await settle(hub)
    assert await snapshot(hub, order.id) == before
    assert shipbob["create_order"].call_count == 1

    # 3. ShipBob ships with an EasyPost label: on_hand and reserved go down together, the order is shipped,
    #    and Amazon gets one confirmShipment with that tracking number and carrier.
    headers, raw = shipbob_shipped(fulfillment_id, now)
    accepted = await inbox.accept(hub, "shipbob", headers, raw)
    assert not accepted.duplicate
    await settle(hub)
    order = await load_order(hub)
    assert order.status == OrderStatus.SHIPPED
    assert await level(hub) == (SEEDED - 1, 0)
    async with hub.store.connect() as conn:
        ship_row = (await conn.execute(select(t.shipments).where(t.shipments.c.order_id == order.id))).one()
    shipment = Shipment.model_validate(ship_row.data)
    assert (shipment.tracking_number, shipment.carrier, shipment.fulfillment_id) == (TRACKING, "USPS", fulfillment_id)
    assert shipment.location == "shipbob-ca"

    assert amazon["confirm"].call_count == 1
    assert trackers.call_count == 1
    assert json.loads(trackers.calls.last.request.content)["tracker"]["tracking_code"] == "EZ1000000001"
    confirm = amazon["confirm"].calls[0].request
    assert confirm.headers["x-amz-access-token"] == AMAZON_ACCESS_TOKEN
    assert json.loads(confirm.content) == {
        "marketplaceId": MARKETPLACE,
        "packageDetail": {
            "packageReferenceId": package_reference_id(shipment.id),
            "carrierCode": "USPS",
            "trackingNumber": TRACKING,
            "shipDate": shipment.shipped_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "orderItems": [{"orderItemId": ORDER_ITEM_ID, "quantity": 1}],
            "shippingMethod": "GroundAdvantage",
        },
    }

    # The same delivery again (ShipBob retries with the same webhook-id) is a duplicate and changes nothing;
    # the same shipment re-sent as a new message is recognised by the hub and changes nothing either.
    before = await snapshot(hub, order.id)
    again = await inbox.accept(hub, "shipbob", headers, raw)
    assert (again.id, again.duplicate) == (accepted.id, True)
    resent = await inbox.accept(hub, "shipbob", resigned(headers, raw, "msg_e2e_resent_order_shipped"), raw)
    assert not resent.duplicate
    await settle(hub)
    assert await snapshot(hub, order.id) == before
    assert amazon["confirm"].call_count == 1
    assert shipbob["create_order"].call_count == 1

    # 4. EasyPost reports the parcel delivered: the order is delivered, shipment.delivered goes to partners.
    ep_headers, ep_raw = easypost_delivered(now)
    delivered = await inbox.accept(hub, "easypost", ep_headers, ep_raw)
    assert not delivered.duplicate
    await settle(hub)
    order = await load_order(hub)
    assert order.status == OrderStatus.DELIVERED
    types = await event_types(hub, order.id)
    assert types.count("shipment.delivered") == 1
    assert types.count("shipment.shipped") == 1
    assert types.count("fulfillment.requested") == 1
    milestones = [x for x in types if x in ("order.created", "order.allocated", "fulfillment.requested",
                                            "shipment.shipped", "shipment.delivered")]  # fmt: skip
    assert milestones == [
        "order.created",
        "order.allocated",
        "fulfillment.requested",
        "shipment.shipped",
        "shipment.delivered",
    ]
    async with hub.store.connect() as conn:
        ship_row = (await conn.execute(select(t.shipments).where(t.shipments.c.order_id == order.id))).one()
    assert ship_row.status == "delivered" and ship_row.delivered_at is not None

    # The tracker event again: a duplicate, nothing changes.
    before = await snapshot(hub, order.id)
    again = await inbox.accept(hub, "easypost", ep_headers, ep_raw)
    assert (again.id, again.duplicate) == (delivered.id, True)
    await settle(hub)
    assert await snapshot(hub, order.id) == before

    # Nothing failed on the way, every request went to a mocked system, and each side effect happened once.
    async with hub.store.connect() as conn:
        failed = [(r.operation, r.last_error) for r in (await conn.execute(select(t.sync_failures))).all()]
    assert failed == []
    assert await count(hub, t.sync_jobs, t.sync_jobs.c.status != "done") == 0
    assert await count(hub, t.inbox, t.inbox.c.status != "done") == 0
    assert shipbob["create_order"].call_count == 1
    assert amazon["confirm"].call_count == 1
    assert amazon["lwa"].call_count == 1, "one LWA token serves the whole hour"
    # Amazon's merchant-fulfilled quantity follows the stock: 5 on hand, 1 reserved, then shipped -> 4.
    quantities = [json.loads(c.request.content)["patches"][0]["value"][0]["quantity"] for c in amazon["listings"].calls]
    assert quantities and set(quantities) == {SEEDED - 1}


async def test_amazons_per_operation_rate_header_does_not_hold_back_the_shipment_confirmation(
    hub: Hub, router: respx.Router
) -> None:
    """Amazon answers every call with ``x-amzn-RateLimit-Limit``: the rate *of that operation* (getOrders 0.0167/s,
    confirmShipment 2/s). A poll must not make the next confirmShipment wait for getOrders' rate."""
    now = datetime.now(UTC)
    amazon = amazon_routes(router, now, rate_headers=True)
    shipbob = shipbob_routes(router)
    async with hub.store.begin() as conn:
        await inv.adjust(conn, SKU, "shipbob-ca", SEEDED, cause="receipt")
    assert await poll_once(hub, "amazon") == 1
    await drain(hub)
    assert shipbob["create_order"].call_count == 1
    order = await load_order(hub)
    fulfillment_id = order.allocations[0].fulfillment_id
    assert fulfillment_id
    headers, raw = shipbob_shipped(fulfillment_id, now)
    await inbox.accept(hub, "shipbob", headers, raw)
    await drain(hub)
    assert (await load_order(hub)).status == OrderStatus.SHIPPED

    # BUG (hub/http/_client.py ConnectionTransport._send -> RateLimiter.learn): the connection-wide Redis limiter
    # adopts each answer's x-amzn-RateLimit-Limit, but Amazon states it per operation. After getOrders (0.0167/s)
    # the next slot of the whole amazon connection is about a minute away, so confirmShipment is refused locally
    # ("outbound rate limit ... is saturated") and re-queued instead of being sent. Fails until that is fixed.
    async with hub.store.connect() as conn:
        rows = (await conn.execute(select(t.sync_jobs).where(t.sync_jobs.c.connection == "amazon"))).all()
    errors = [f"{r.operation}: {r.errors[-1]['error']}" for r in rows if r.errors]
    assert amazon["confirm"].call_count == 1, f"confirmShipment not sent; amazon job errors: {errors}"
