"""ShipBob connector: order create (idempotent by reference_id), cancel (too late after pick), inventory,
Standard Webhooks signatures and webhook mapping. Fixtures: see fixtures/README.md; HTTP mocked with respx."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from standardwebhooks.webhooks import Webhook

from connectors.shipbob import ShipBobConnector, ShipBobSettings
from hub.errors import AuthError, FatalError, InputError, MappingError, RetriableError
from hub.http import RetryPolicy, client_for
from hub.model import (
    Address,
    FulfillmentLine,
    FulfillmentRequest,
    Money,
    Order,
    OrderLine,
    Totals,
    TrackingStatus,
    new_id,
)
from hub.plugins import FulfillmentException, Ignored, ShipmentConfirmed, TrackingUpdated

FIX = Path(__file__).parent / "fixtures"
BASE = "https://shipbob.test/2026-07"
#: The example secret of the Standard Webhooks spec, reused by ShipBob's webhook docs.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FUL_ID = "ful_01JDXR5V6M3Y2Q9W8K7T6S5R4P"
#: hub.http retries without real waiting in tests.
FAST = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)


def fx(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def raw(name: str) -> bytes:
    return (FIX / name).read_bytes()


@pytest.fixture
async def conn() -> AsyncIterator[ShipBobConnector]:
    settings = ShipBobSettings(
        access_token="pat-secret-token",
        webhook_secret=SECRET,
        channel_id=100102,
        fulfillment_center_map={"chicago": 10},
        base_url=BASE,
    )
    conn = ShipBobConnector("shipbob-1", settings)
    conn.http = client_for(conn, transport=httpx.MockTransport(respx.mock.async_handler), retry=FAST)
    async with conn.http:
        yield conn


def order_and_request(location: str = "chicago") -> tuple[Order, FulfillmentRequest]:
    usd = Money.of
    order = Order(
        id=new_id("ord"),
        connection="shop",
        external_id="450789469",
        name="#1001",
        placed_at=datetime(2025, 10, 22, 9, 10, tzinfo=UTC),
        currency="USD",
        shipping_address=Address(
            name="John Doe",
            line1="100 N Racine Ave",
            line2="Suite 100",
            city="Chicago",
            region="IL",
            postal_code="60607",
            country="US",
            phone="555-555-5555",
        ),
        lines=[
            OrderLine(
                line_no=1, sku="LIGHT-ROAST", title="Light Roast Coffee", quantity=2, unit_price=usd("12.00", "USD")
            ),
            OrderLine(line_no=2, sku="MUG-01", title="Mug", quantity=1, unit_price=usd("8.00", "USD")),
        ],
        totals=Totals(
            subtotal=usd("32.00", "USD"),
            shipping=usd("0", "USD"),
            tax=usd("0", "USD"),
            discount=usd("0", "USD"),
            total=usd("32.00", "USD"),
        ),
    )
    request = FulfillmentRequest(
        id=FUL_ID,
        order_id=order.id,
        location=location,
        lines=[
            FulfillmentLine(line_no=1, sku="LIGHT-ROAST", quantity=2),
            FulfillmentLine(line_no=2, sku="MUG-01", quantity=1),
        ],
        created_at=datetime(2025, 10, 22, 9, 11, tzinfo=UTC),
    )
    return order, request


def signed(
    body: bytes, msg_id: str = "msg_31eW7bWRi16lL0Ajjik68kfyeUh", topic: str = "order.shipped"
) -> dict[str, str]:
    """Headers as ShipBob sends them, signed by the reference standardwebhooks library (not hub.signing)."""
    now = datetime.fromtimestamp(int(time.time()), UTC)
    sig = Webhook(SECRET).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sig,
        "x-webhook-topic": topic,
        "content-type": "application/json",
    }


# -- submit -----------------------------------------------------------------------------------


@respx.mock
async def test_submit_creates_order_by_reference_id_with_products_by_sku(conn: ShipBobConnector) -> None:
    route = respx.post(f"{BASE}/order").mock(return_value=httpx.Response(201, json=fx("create_order_201.json")))
    order, request = order_and_request()
    result = await conn.submit_fulfillment(request, order)
    assert result.external_id == "100000001"
    req = route.calls[0].request
    assert req.headers["Authorization"] == "Bearer pat-secret-token"
    assert req.headers["shipbob_channel_id"] == "100102"
    body = json.loads(req.content)
    assert body["reference_id"] == FUL_ID and body["order_number"] == "#1001" and body["type"] == "DTC"
    assert body["location_id"] == 10 and body["shipping_method"] == "Standard"
    assert body["products"] == [
        {"reference_id": "LIGHT-ROAST", "name": "Light Roast Coffee", "quantity": 2, "external_line_id": 1},
        {"reference_id": "MUG-01", "name": "Mug", "quantity": 1, "external_line_id": 2},
    ]
    assert body["recipient"]["name"] == "John Doe"
    assert body["recipient"]["address"] == {
        "address1": "100 N Racine Ave",
        "address2": "Suite 100",
        "city": "Chicago",
        "state": "IL",
        "country": "US",
        "zip_code": "60607",
    }, "no null fields"
    assert {"name": "orderhub_order", "value": order.id} in body["tags"]


@respx.mock
async def test_retried_submit_finds_the_existing_order_instead_of_a_second(conn: ShipBobConnector) -> None:
    create = respx.post(f"{BASE}/order").mock(return_value=httpx.Response(422, json=fx("duplicate_reference_422.json")))
    lookup = respx.get(f"{BASE}/order").mock(return_value=httpx.Response(200, json=[fx("create_order_201.json")]))
    order, request = order_and_request()
    result = await conn.submit_fulfillment(request, order)
    assert result.external_id == "100000001" and result.detail["duplicate"] is True
    assert create.call_count == 1
    assert lookup.calls[0].request.url.params["ReferenceIds"] == FUL_ID


@respx.mock
async def test_submit_refused_for_bad_data_is_fatal_with_shipbobs_reason(conn: ShipBobConnector) -> None:
    problem = {
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": {"Recipient.Address.Country": ["Invalid country"]},
    }
    respx.post(f"{BASE}/order").mock(return_value=httpx.Response(400, json=problem))
    order, request = order_and_request()
    with pytest.raises(FatalError, match="Invalid country") as exc:
        await conn.submit_fulfillment(request, order)
    assert "pat-secret-token" not in json.dumps(exc.value.request)


async def test_unmapped_location_is_an_input_error_naming_it(conn: ShipBobConnector) -> None:
    order, request = order_and_request(location="berlin")
    with pytest.raises(InputError, match="'berlin'"):
        await conn.submit_fulfillment(request, order)


@respx.mock
async def test_5xx_is_retried_then_succeeds(conn: ShipBobConnector) -> None:
    route = respx.post(f"{BASE}/order").mock(
        side_effect=[httpx.Response(503), httpx.Response(201, json=fx("create_order_201.json"))]
    )
    order, request = order_and_request()
    assert (await conn.submit_fulfillment(request, order)).external_id == "100000001"
    assert route.call_count == 2


@respx.mock
async def test_429_honours_x_retry_after(conn: ShipBobConnector) -> None:
    respx.post(f"{BASE}/order").mock(
        return_value=httpx.Response(
            429, headers={"x-retry-after": "25", "x-remaining-calls": "0"}, json=fx("rate_limited_429.json")
        )
    )
    order, request = order_and_request()
    with pytest.raises(RetriableError) as exc:
        await conn.submit_fulfillment(request, order)
    assert exc.value.retry_after == 25


def test_rate_limit_is_150_per_minute() -> None:
    assert ShipBobConnector.rate_per_second * 60 == 150


# -- cancel ---------------------------------------------------------------------------------


@respx.mock
async def test_cancel_before_pick_succeeds(conn: ShipBobConnector) -> None:
    route = respx.post(f"{BASE}/order/100000001/cancel").mock(
        return_value=httpx.Response(200, json=fx("cancel_order_200.json"))
    )
    _, request = order_and_request()
    result = await conn.cancel_fulfillment(request.model_copy(update={"external_id": "100000001"}))
    assert result.detail["cancelled"] is True and route.call_count == 1


@respx.mock
async def test_cancel_after_pick_is_a_fatal_too_late_exception(conn: ShipBobConnector) -> None:
    respx.post(f"{BASE}/order/100000001/cancel").mock(
        return_value=httpx.Response(200, json=fx("cancel_order_too_late.json"))
    )
    _, request = order_and_request()
    with pytest.raises(FatalError) as exc:
        await conn.cancel_fulfillment(request.model_copy(update={"external_id": "100000001"}))
    msg = str(exc.value)
    assert "too late" in msg and "100000001" in msg and FUL_ID in msg and "already picked" in msg


@respx.mock
async def test_cancel_refused_with_an_error_status_after_shipping_is_too_late_too(conn: ShipBobConnector) -> None:
    respx.post(f"{BASE}/order/100000001/cancel").mock(
        return_value=httpx.Response(422, json={"title": "Order cannot be cancelled because it has already shipped"})
    )
    _, request = order_and_request()
    with pytest.raises(FatalError, match="too late"):
        await conn.cancel_fulfillment(request.model_copy(update={"external_id": "100000001"}))


@respx.mock
async def test_cancel_without_external_id_looks_the_order_up(conn: ShipBobConnector) -> None:
    respx.get(f"{BASE}/order").mock(return_value=httpx.Response(200, json=[fx("create_order_201.json")]))
    cancel = respx.post(f"{BASE}/order/100000001/cancel").mock(
        return_value=httpx.Response(200, json=fx("cancel_order_200.json"))
    )
    _, request = order_and_request()
    await conn.cancel_fulfillment(request)
    assert cancel.call_count == 1


# -- shipments and inventory -------------------------------------------------------------------


@respx.mock
async def test_shipments_read_tracking(conn: ShipBobConnector) -> None:
    respx.get(f"{BASE}/order/100000001/shipment").mock(
        return_value=httpx.Response(
            200, json=[fx("webhooks/order_shipped.json"), fx("webhooks/shipment_exception.json")]
        )
    )
    shipments = await conn.shipments("100000001")
    assert [s.tracking_number for s in shipments] == ["9261290306529427911297"], "no tracking yet: not a shipment"
    assert shipments[0].location == "chicago"


@pytest.mark.parametrize(
    "link",
    ["/inventory-level/locations?Cursor=abc123", "/2026-07/inventory-level/locations?Cursor=abc123",
     f"{BASE}/inventory-level/locations?Cursor=abc123"],
)  # fmt: skip
@respx.mock
async def test_next_link_forms_all_reach_the_next_page(conn: ShipBobConnector, link: str) -> None:
    page1 = fx("inventory_levels_page1.json")
    page1["next"] = link
    route = respx.get(url__regex=rf"{BASE}/inventory-level/locations.*").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=fx("inventory_levels_page2.json"))]
    )
    assert len(await conn.inventory_snapshot()) == 2
    assert str(route.calls[1].request.url) == f"{BASE}/inventory-level/locations?Cursor=abc123"


@respx.mock
async def test_inventory_snapshot_follows_next_and_keeps_mapped_centers(conn: ShipBobConnector) -> None:
    route = respx.get(url__regex=rf"{BASE}/inventory-level/locations.*").mock(
        side_effect=[
            httpx.Response(200, json=fx("inventory_levels_page1.json")),
            httpx.Response(200, json=fx("inventory_levels_page2.json")),
        ]
    )
    counts = await conn.inventory_snapshot()
    assert counts == [("LIGHT-ROAST", "chicago", 120), ("MUG-01", "chicago", 7)], "FC 34 is not mapped"
    assert route.calls[1].request.url.params["Cursor"] == "abc123"


# -- webhooks ----------------------------------------------------------------------------------


def test_signature_from_the_reference_library_is_accepted(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    conn.verify_webhook(signed(body), body)


def test_tampered_body_or_wrong_secret_is_refused(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    headers = signed(body)
    with pytest.raises(AuthError):
        conn.verify_webhook(headers, body.replace(b"LIGHT-ROAST", b"DARK-ROAST"))
    other = Webhook("whsec_" + "A" * 43).sign(headers["webhook-id"], datetime.now(UTC), body.decode())
    with pytest.raises(AuthError):
        conn.verify_webhook({**headers, "webhook-signature": other}, body)
    with pytest.raises(AuthError):
        conn.verify_webhook({k: v for k, v in headers.items() if k != "webhook-signature"}, body)


def test_replayed_old_delivery_is_refused(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    old = datetime.fromtimestamp(int(time.time()) - 3600, UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_1", old, body.decode()),
    }
    with pytest.raises(AuthError, match="tolerance"):
        conn.verify_webhook(headers, body)


def test_webhook_id_is_the_dedup_key(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    event = conn.webhook_event(signed(body), body)
    assert event.event_id == "msg_31eW7bWRi16lL0Ajjik68kfyeUh" and event.topic == "order.shipped"
    assert event.object_key == "shipment:100810005" and event.source_ts is not None


def test_order_shipped_becomes_shipment_confirmed(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    headers = signed(body)
    [msg] = conn.parse_webhook(conn.webhook_event(headers, body), headers, body)
    assert isinstance(msg, ShipmentConfirmed)
    s = msg.shipment
    assert (s.carrier, s.service, s.tracking_number) == ("USPS", "ParcelSelect", "9261290306529427911297")
    assert [(ln.sku, ln.quantity) for ln in s.lines] == [("LIGHT-ROAST", 2), ("MUG-01", 1)]
    assert s.location == "chicago" and s.shipped_at == datetime(2025, 10, 23, 15, 50, tzinfo=UTC)
    assert msg.fulfillment_id == FUL_ID and msg.external_order_id == "100000001"


def test_delivered_becomes_tracking_updated(conn: ShipBobConnector) -> None:
    body = raw("webhooks/shipment_delivered.json")
    headers = signed(body, topic="order.shipment.delivered")
    [msg] = conn.parse_webhook(conn.webhook_event(headers, body), headers, body)
    assert isinstance(msg, TrackingUpdated)
    assert msg.event.status is TrackingStatus.DELIVERED and msg.event.tracking_number == "9261290306529427911297"
    assert msg.event.occurred_at == datetime(2025, 10, 26, 18, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("order.shipment.exception", "exception"),
        ("order.shipment.on_hold", "on hold"),
        ("order.shipment.cancelled", "cancelled"),
    ],
)
def test_problem_topics_become_fulfillment_exceptions(conn: ShipBobConnector, topic: str, expected: str) -> None:
    body = raw("webhooks/shipment_exception.json")
    headers = signed(body, topic=topic)
    [msg] = conn.parse_webhook(conn.webhook_event(headers, body), headers, body)
    assert isinstance(msg, FulfillmentException) and expected in msg.reason
    assert "No Stock On Hand For Sku" in msg.reason and msg.fulfillment_id == FUL_ID


def test_legacy_topic_header_and_unused_topics(conn: ShipBobConnector) -> None:
    body = raw("webhooks/order_shipped.json")
    legacy = {"webhook-id": "1", "shipbob-topic": "order_shipped"}
    assert conn.webhook_event(legacy, body).topic == "order.shipped"
    headers = signed(body, topic="return.created")
    [msg] = conn.parse_webhook(conn.webhook_event(headers, body), headers, body)
    assert isinstance(msg, Ignored)


def test_shipped_product_without_sku_is_a_mapping_error_with_file_and_line(conn: ShipBobConnector) -> None:
    payload = fx("webhooks/order_shipped.json")
    for p in payload["products"]:
        p.pop("reference_id"), p.pop("sku")
    body = json.dumps(payload).encode()
    headers = signed(body)
    with pytest.raises(MappingError) as exc:
        conn.parse_webhook(conn.webhook_event(headers, body), headers, body)
    err = exc.value.errors[0]
    assert err["file"].endswith("shipment.yaml") and err["line"] and err["field"] == "lines[0].sku"
