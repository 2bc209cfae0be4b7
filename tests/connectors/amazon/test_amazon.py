"""Amazon SP-API connector: polling (NextToken), LWA tokens, status mapping, throttling, request shapes.

Fixtures are Amazon's own sandbox examples (see fixtures/README.md); HTTP is mocked with respx.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.amazon import AmazonConnector, AmazonSettings
from connectors.amazon._map_v0 import message_from_v0, order_from_v0, split_line_price
from hub.errors import AuthError, FatalError, InputError, MappingError, RetriableError
from hub.http import RetryPolicy, client_for
from hub.mapping import MappingSet
from hub.model import HoldKind, Money, Order, OrderStatus, PaymentStatus, Shipment, ShipmentLine, new_id
from hub.plugins import OrderCancelled, OrderUpserted
from hub.store import Store, orders

FIX = Path(__file__).parent / "fixtures"
BASE = "https://sp.test"
LWA = "https://lwa.test/auth/o2/token"


def fx(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIX / name).read_text())
    return data


def settings(**kw: Any) -> AmazonSettings:
    base: dict[str, Any] = {
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": "lwa-client-secret",
        "refresh_token": "Atzr|refresh-token",
        "marketplace_id": "ATVPDKIKX0DER",
        "seller_id": "A2SELLER",
        "base_url": BASE,
        "lwa_url": LWA,
    }
    base.update(kw)
    return AmazonSettings.model_validate(base)


#: hub.http retries without real waiting in tests.
FAST = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.005, budget=1.0)


def connector(s: AmazonSettings) -> AmazonConnector:
    """A connection with the hub's own outbound client (hub.http.client_for), over a transport respx mocks."""
    c = AmazonConnector("amazon-us", s)
    c.http = client_for(c, transport=httpx.MockTransport(respx.mock.async_handler), retry=FAST)
    return c


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


@pytest.fixture
async def conn() -> AsyncIterator[AmazonConnector]:
    c = connector(settings())
    clock = FakeClock()
    c.clock, c.sleep = clock, clock.sleep
    async with c.http:
        yield c


def lwa_ok(router: respx.MockRouter, token: str = "Atza|access-1", expires_in: int = 3600) -> respx.Route:
    return router.post(LWA).mock(
        return_value=httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": expires_in})
    )


def items_page(order_id: str, sku: str, item_id: str, next_token: str | None = None) -> dict[str, Any]:
    page = copy.deepcopy(fx("getOrderItems_200.json"))
    page["payload"]["AmazonOrderId"] = order_id
    page["payload"]["OrderItems"][0].update({"SellerSKU": sku, "OrderItemId": item_id})
    if next_token:
        page["payload"]["NextToken"] = next_token
    return page


def raw_order(status: str = "Unshipped", **kw: Any) -> dict[str, Any]:
    o: dict[str, Any] = copy.deepcopy(fx("getOrders_200.json")["payload"]["Orders"][0])
    o["OrderStatus"] = status
    o.update(kw)
    return o


# -- polling -------------------------------------------------------------------------------


@respx.mock
async def test_poll_follows_next_token_for_orders_and_items(conn: AmazonConnector) -> None:
    lwa = lwa_ok(respx.mock)
    page1 = fx("getOrders_200_next_token.json")  # one Pending order + NextToken
    page1["payload"]["Orders"][0]["LastUpdateDate"] = "2026-11-20T10:00:00Z"
    page2 = fx("getOrders_200.json")  # two Unshipped orders, no NextToken
    page2["payload"]["Orders"][1]["LastUpdateDate"] = "2026-11-21T08:30:00Z"
    orders = respx.get(f"{BASE}/orders/v0/orders").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )
    respx.get(f"{BASE}/orders/v0/orders/902-3159896-1390916/orderItems").mock(
        return_value=httpx.Response(200, json=items_page("902-3159896-1390916", "SKU-P", "1"))
    )
    first = respx.get(f"{BASE}/orders/v0/orders/902-1845936-5435065/orderItems")
    first.mock(
        side_effect=[
            httpx.Response(200, json=items_page("902-1845936-5435065", "SKU-A", "11", next_token="ITEMS-2")),
            httpx.Response(200, json=items_page("902-1845936-5435065", "SKU-B", "12")),
        ]
    )
    respx.get(f"{BASE}/orders/v0/orders/902-8745147-1934268/orderItems").mock(
        return_value=httpx.Response(200, json=items_page("902-8745147-1934268", "SKU-C", "21"))
    )

    result = await conn.poll_orders("2026-11-20T00:00:00Z")

    assert [o.external_id for o in result.orders] == [
        "902-3159896-1390916",
        "902-1845936-5435065",
        "902-8745147-1934268",
    ]
    assert [ln.sku for ln in result.orders[1].lines] == ["SKU-A", "SKU-B"]
    assert result.cursor == "2026-11-21T08:30:00Z" and result.more is False
    q1 = parse_qs(orders.calls[0].request.url.query.decode())
    assert q1 == {
        "MarketplaceIds": ["ATVPDKIKX0DER"],
        "LastUpdatedAfter": ["2026-11-20T00:00:00Z"],
        "FulfillmentChannels": ["MFN"],
        "OrderStatuses": ["Pending,Unshipped,PartiallyShipped,Canceled,PendingAvailability"],
    }
    q2 = parse_qs(orders.calls[1].request.url.query.decode())
    assert q2 == {"MarketplaceIds": ["ATVPDKIKX0DER"], "NextToken": ["2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"]}
    assert parse_qs(first.calls[1].request.url.query.decode()) == {"NextToken": ["ITEMS-2"]}
    assert lwa.call_count == 1, "one LWA token for the whole poll"


@respx.mock
async def test_poll_without_orders_keeps_the_cursor(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders").mock(return_value=httpx.Response(200, json={"payload": {"Orders": []}}))
    result = await conn.poll_orders("2026-11-20T00:00:00Z")
    assert result.orders == [] and result.cursor == "2026-11-20T00:00:00Z" and not result.more


@respx.mock
async def test_poll_stops_after_max_pages_and_resumes_from_the_next_token() -> None:
    conn = connector(settings(max_pages_per_poll=1))
    async with conn.http:
        lwa_ok(respx.mock)
        page1 = fx("getOrders_200_next_token.json")
        route = respx.get(f"{BASE}/orders/v0/orders").mock(
            side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=fx("getOrders_200.json"))]
        )
        respx.get(url__regex=rf"{BASE}/orders/v0/orders/[^/]+/orderItems").mock(
            return_value=httpx.Response(200, json=items_page("x", "SKU-A", "1"))
        )
        r1 = await conn.poll_orders("2017-01-01T00:00:00Z")
        assert r1.more is True
        assert r1.cursor == "2017-01-01T00:00:00Z|2017-01-20T19:49:35Z|2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"
        r2 = await conn.poll_orders(r1.cursor)
        assert parse_qs(route.calls[1].request.url.query.decode())["NextToken"] == ["2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"]
        assert r2.more is False and r2.cursor == "2017-01-20T19:49:35Z", "max over both pages"


@respx.mock
async def test_first_poll_looks_back_initial_lookback_hours(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    conn.utcnow = lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    route = respx.get(f"{BASE}/orders/v0/orders").mock(
        return_value=httpx.Response(200, json={"payload": {"Orders": []}})
    )
    result = await conn.poll_orders(None)
    assert parse_qs(route.calls[0].request.url.query.decode())["LastUpdatedAfter"] == ["2026-11-21T12:00:00Z"]
    assert result.cursor == "2026-11-21T12:00:00Z"


# -- LWA tokens ---------------------------------------------------------------------------


@respx.mock
async def test_lwa_token_is_cached_and_sent_as_x_amz_access_token(conn: AmazonConnector) -> None:
    lwa = lwa_ok(respx.mock)
    api = respx.get(f"{BASE}/orders/v0/orders/1/orderItems").mock(
        return_value=httpx.Response(200, json=items_page("1", "SKU", "1"))
    )
    for _ in range(5):
        await conn.order_items("1")
    assert lwa.call_count == 1
    form = parse_qs(lwa.calls[0].request.content.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["Atzr|refresh-token"],
        "client_id": ["amzn1.application-oa2-client.test"],
        "client_secret": ["lwa-client-secret"],
    }
    assert {c.request.headers["x-amz-access-token"] for c in api.calls} == {"Atza|access-1"}


@respx.mock
async def test_lwa_token_is_refreshed_before_it_expires(conn: AmazonConnector) -> None:
    lwa = respx.post(LWA).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "Atza|one", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "Atza|two", "expires_in": 3600}),
        ]
    )
    assert await conn.access_token() == "Atza|one"
    conn.clock.t += 3600 - 61  # type: ignore[attr-defined]
    assert await conn.access_token() == "Atza|one"
    conn.clock.t += 2  # type: ignore[attr-defined]  # inside the 60 s margin
    assert await conn.access_token() == "Atza|two"
    assert lwa.call_count == 2


@respx.mock
async def test_refused_refresh_token_is_an_auth_error_without_the_secret(conn: AmazonConnector) -> None:
    respx.post(LWA).mock(return_value=httpx.Response(400, json={"error": "invalid_grant"}))
    with pytest.raises(AuthError) as exc:
        await conn.access_token()
    assert "invalid_grant" in str(exc.value) and "re-authorise" in str(exc.value)
    assert "Atzr|refresh-token" not in str(exc.value) and "lwa-client-secret" not in str(exc.value)


# -- status and money mapping ---------------------------------------------------------------


def test_unshipped_order_is_received_and_paid() -> None:
    order = order_from_v0("amazon-us", raw_order("Unshipped"), fx("getOrderItems_200.json")["payload"]["OrderItems"])
    assert order.status is OrderStatus.RECEIVED and order.payment_status is PaymentStatus.PAID
    assert order.holds == [] and order.channel_status == "Unshipped"
    line = order.lines[0]
    assert (line.sku, line.external_id, line.quantity) == ("NABetaASINB00551Q3CS", "05015851154158", 1)
    assert line.unit_price == Money.of("10.00", "USD") and line.tax == Money.of("1.01", "USD")
    # US prices exclude tax: total = 10.00 + 1.01 = OrderTotal 11.01
    assert order.taxes_included is False and order.totals.total == Money.of("11.01", "USD")


def test_pending_order_waits_on_payment_not_on_a_channel_hold() -> None:
    """Amazon: do not ship Pending orders. The order says payment pending; the hub's payment screening holds
    it and releases the hold itself when the next poll sees it Unshipped (paid)."""
    order = order_from_v0("amazon-us", raw_order("Pending"), fx("getOrderItems_200.json")["payload"]["OrderItems"])
    assert order.status is OrderStatus.RECEIVED and order.payment_status is PaymentStatus.PENDING
    assert order.holds == [] and order.channel_status == "Pending"


async def test_repolled_order_is_unchanged_and_pending_to_unshipped_updates_payment(store: Store) -> None:
    items = fx("getOrderItems_200.json")["payload"]["OrderItems"]
    pending = order_from_v0("amazon-us", raw_order("Pending", LastUpdateDate="2026-11-20T10:00:00Z"), items)
    again = order_from_v0("amazon-us", raw_order("Pending", LastUpdateDate="2026-11-20T10:00:00Z"), items)
    paid = order_from_v0("amazon-us", raw_order("Unshipped", LastUpdateDate="2026-11-20T10:05:00Z"), items)
    async with store.begin() as c:
        assert (await orders.upsert_order(c, pending)).outcome == "created"
    async with store.begin() as c:
        assert (await orders.upsert_order(c, again)).outcome == "unchanged", "a repeat at the cursor is a no-op"
    async with store.begin() as c:
        res = await orders.upsert_order(c, paid)
    assert res.outcome == "updated" and res.order.payment_status is PaymentStatus.PAID and res.order.id == pending.id


def test_canceled_order_becomes_order_cancelled() -> None:
    items = fx("getOrderItems_200.json")["payload"]["OrderItems"]
    msg = message_from_v0("amazon-us", raw_order("Canceled"), items)
    assert isinstance(msg, OrderCancelled) and msg.external_id == "902-1845936-5435065"
    assert msg.order is not None and msg.order.status is OrderStatus.CANCELLED
    zeroed = copy.deepcopy(items)
    zeroed[0]["QuantityOrdered"] = 0  # Amazon zeroes the quantity of cancelled items
    msg2 = message_from_v0("amazon-us", raw_order("Canceled"), zeroed)
    assert isinstance(msg2, OrderCancelled) and msg2.order is None


def test_open_statuses_map_to_order_upserted() -> None:
    items = fx("getOrderItems_200.json")["payload"]["OrderItems"]
    expected = {
        "Unshipped": (OrderStatus.RECEIVED, PaymentStatus.PAID),
        "PartiallyShipped": (OrderStatus.RECEIVED, PaymentStatus.PAID),
        "PendingAvailability": (OrderStatus.RECEIVED, PaymentStatus.PENDING),
        "Shipped": (OrderStatus.SHIPPED, PaymentStatus.PAID),
        "InvoiceUnconfirmed": (OrderStatus.SHIPPED, PaymentStatus.PAID),
        "Unfulfillable": (OrderStatus.ON_HOLD, PaymentStatus.UNKNOWN),
    }
    for status, (canonical, payment) in expected.items():
        msg = message_from_v0("amazon-us", raw_order(status), items)
        assert isinstance(msg, OrderUpserted), status
        assert (msg.order.status, msg.order.payment_status) == (canonical, payment), status
    unfulfillable = message_from_v0("amazon-us", raw_order("Unfulfillable"), items)
    assert isinstance(unfulfillable, OrderUpserted) and unfulfillable.order.holds[0].kind is HoldKind.CHANNEL


@respx.mock
async def test_cancellations_travel_as_messages_and_the_cursor_passes_them(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    page = fx("getOrders_200.json")
    page["payload"]["Orders"][1]["OrderStatus"] = "Canceled"
    page["payload"]["Orders"][1]["LastUpdateDate"] = "2026-11-21T09:00:00Z"
    respx.get(f"{BASE}/orders/v0/orders").mock(return_value=httpx.Response(200, json=page))
    respx.get(url__regex=rf"{BASE}/orders/v0/orders/[^/]+/orderItems").mock(
        return_value=httpx.Response(200, json=fx("getOrderItems_200.json"))
    )
    messages, cursor, _ = await conn.poll_messages("2026-11-20T00:00:00Z")
    assert [type(m).__name__ for m in messages] == ["OrderUpserted", "OrderCancelled"]
    result = await conn.poll_orders("2026-11-20T00:00:00Z")
    assert [o.external_id for o in result.orders] == ["902-1845936-5435065"], "orders only: the hub keeps its status"
    assert cursor == result.cursor == "2026-11-21T09:00:00Z"


def test_item_price_is_the_line_total_and_no_cent_is_lost() -> None:
    """ItemPrice = unit price x QuantityOrdered (ordersV0.json OrderItem.ItemPrice)."""
    items = copy.deepcopy(fx("getOrderItems_200.json")["payload"]["OrderItems"])
    items[0].update(
        QuantityOrdered=3,
        ItemPrice={"CurrencyCode": "USD", "Amount": "10.00"},
        ItemTax={"CurrencyCode": "USD", "Amount": "0.80"},
        PromotionDiscount={"CurrencyCode": "USD", "Amount": "1.00"},
        ShippingPrice={"CurrencyCode": "USD", "Amount": "4.99"},
        ShippingTax={"CurrencyCode": "USD", "Amount": "0.40"},
    )
    order = order_from_v0("amazon-us", raw_order(OrderTotal={"CurrencyCode": "USD", "Amount": "15.19"}), items)
    line = order.lines[0]
    assert line.unit_price == Money.of("3.34", "USD")
    assert line.discount == Money.of("1.02", "USD")  # 0.02 rounding + 1.00 promotion
    assert line.net == Money.of("9.00", "USD")
    assert order.shipping_lines[0].price == Money.of("4.99", "USD")
    assert order.totals.total == Money.of("15.19", "USD") and order.totals.tax == Money.of("1.20", "USD")
    assert isinstance(order.totals.total.amount, Decimal)


def test_split_line_price_is_exact_for_jpy_and_kwd() -> None:
    for amount, qty, cur in (("1000", 3, "JPY"), ("10.000", 7, "KWD"), ("0.01", 2, "EUR")):
        total = Money.of(amount, cur)
        unit, rounding = split_line_price(total, qty)
        assert unit * qty - rounding == total and not rounding.amount < 0


def test_eu_prices_include_vat_when_order_total_says_so() -> None:
    items = copy.deepcopy(fx("getOrderItems_200.json")["payload"]["OrderItems"])
    for it in items:
        for k in ("ItemPrice", "ItemTax", "PromotionDiscount"):
            it[k]["CurrencyCode"] = "EUR"
    items[0]["ItemPrice"]["Amount"] = "11.90"
    items[0]["ItemTax"]["Amount"] = "1.90"
    order = order_from_v0(
        "amazon-de",
        raw_order(MarketplaceId="A1PA6795UKMFR9", OrderTotal={"CurrencyCode": "EUR", "Amount": "11.90"}),
        items,
    )
    assert order.taxes_included is True and order.totals.total == Money.of("11.90", "EUR")


def test_item_without_seller_sku_is_a_mapping_error_naming_the_order() -> None:
    items = copy.deepcopy(fx("getOrderItems_200.json")["payload"]["OrderItems"])
    del items[0]["SellerSKU"]
    with pytest.raises(MappingError) as exc:
        order_from_v0("amazon-us", raw_order(), items)
    assert "902-1845936-5435065" in str(exc.value) and "seller SKU" in str(exc.value)
    err = exc.value.errors[0]
    assert err["file"].endswith("order_v0.yaml") and err["line"] and err["field"] == "lines[0].sku"


# -- throttling ---------------------------------------------------------------------------


@respx.mock
async def test_429_is_retriable_with_retry_after_from_the_rate_limit_header(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders").mock(
        return_value=httpx.Response(
            429,
            headers={"x-amzn-RateLimit-Limit": "0.0167", "x-amzn-RequestId": "req-1"},
            json={
                "errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}]
            },
        )
    )
    with pytest.raises(RetriableError) as exc:
        await conn.poll_orders("2026-11-20T00:00:00Z")
    assert exc.value.retry_after is not None and 59 <= exc.value.retry_after <= 61
    assert exc.value.response is not None and exc.value.response["headers"]["x-amzn-requestid"] == "req-1"


@respx.mock
async def test_reported_rate_limit_spaces_out_calls_beyond_the_burst(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders/1/orderItems").mock(
        return_value=httpx.Response(200, headers={"x-amzn-RateLimit-Limit": "2.0"}, json=items_page("1", "S", "1"))
    )
    for _ in range(31):  # burst 30, then the reported 2 req/s
        await conn.order_items("1")
    clock: FakeClock = conn.clock  # type: ignore[assignment]
    assert len(clock.slept) == 1 and clock.slept[0] == pytest.approx(0.5)


@respx.mock
async def test_long_rate_limit_wait_gives_the_job_back(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders").mock(return_value=httpx.Response(200, json={"payload": {"Orders": []}}))
    for _ in range(20):  # getOrders burst 20 at 0.0167/s
        await conn.poll_orders("2026-11-20T00:00:00Z")
    with pytest.raises(RetriableError) as exc:
        await conn.poll_orders("2026-11-20T00:00:00Z")
    assert exc.value.retry_after is not None and exc.value.retry_after > 50


@respx.mock
async def test_bad_request_is_fatal_with_amazons_message(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders").mock(return_value=httpx.Response(400, json=fx("getOrders_400.json")))
    with pytest.raises(FatalError, match="InvalidInput: Invalid Input"):
        await conn.poll_orders("2026-11-20T00:00:00Z")


# -- outbound ------------------------------------------------------------------------------


@respx.mock
async def test_confirm_shipment_request_shape(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    route = respx.post(f"{BASE}/orders/v0/orders/902-1845936-5435065/shipmentConfirmation").mock(
        return_value=httpx.Response(204)
    )
    order = order_from_v0("amazon-us", raw_order(), fx("getOrderItems_200.json")["payload"]["OrderItems"])
    shipment = Shipment(
        id=new_id("shp"),
        carrier="FedEx",
        service="FedEx Ground",
        tracking_number="112345678",
        shipped_at=datetime(2022, 2, 11, 1, 0, tzinfo=UTC),
        lines=[ShipmentLine(sku="NABetaASINB00551Q3CS", quantity=1, line_no=1)],
    )
    result = await conn.push_fulfillment(order, shipment)
    body = json.loads(route.calls[0].request.content)
    sandbox = fx("confirmShipment_request.json")
    assert set(body) == {"marketplaceId", "packageDetail"} and body["marketplaceId"] == sandbox["marketplaceId"]
    pkg = body["packageDetail"]
    assert pkg["carrierCode"] == "FedEx" and pkg["trackingNumber"] == "112345678"
    assert pkg["shipDate"] == sandbox["packageDetail"]["shipDate"] and pkg["shippingMethod"] == "FedEx Ground"
    assert pkg["orderItems"] == [{"orderItemId": "05015851154158", "quantity": 1}]
    assert pkg["packageReferenceId"].isdigit() and int(pkg["packageReferenceId"]) > 0
    assert result.external_id == "902-1845936-5435065"
    # a retry names the same package
    await conn.push_fulfillment(order, shipment)
    assert (
        json.loads(route.calls[1].request.content)["packageDetail"]["packageReferenceId"] == pkg["packageReferenceId"]
    )


@respx.mock
async def test_unknown_carrier_is_sent_as_other_with_its_name(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    route = respx.post(url__regex=r".*/shipmentConfirmation").mock(return_value=httpx.Response(204))
    order = order_from_v0("amazon-us", raw_order(), fx("getOrderItems_200.json")["payload"]["OrderItems"])
    shipment = Shipment(
        id=new_id("shp"), carrier="Speedy Couriers", tracking_number="SC1", shipped_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    await conn.push_fulfillment(order, shipment)
    pkg = json.loads(route.calls[0].request.content)["packageDetail"]
    assert (pkg["carrierCode"], pkg["carrierName"]) == ("Other", "Speedy Couriers")
    assert pkg["orderItems"] == [{"orderItemId": "05015851154158", "quantity": 1}], "no lines: the whole order"


async def test_shipment_without_tracking_number_is_refused_before_calling_amazon(conn: AmazonConnector) -> None:
    order = order_from_v0("amazon-us", raw_order(), fx("getOrderItems_200.json")["payload"]["OrderItems"])
    shipment = Shipment(id=new_id("shp"), carrier="UPS", shipped_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="tracking number"):
        await conn.push_fulfillment(order, shipment)


@respx.mock
async def test_push_inventory_patches_fulfillment_availability(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    route = respx.patch(f"{BASE}/listings/2021-08-01/items/A2SELLER/GM-ZDPI-9B4E").mock(
        return_value=httpx.Response(200, json=fx("patchListingsItem_200.json"))
    )
    result = await conn.push_inventory("GM-ZDPI-9B4E", 7)
    req = route.calls[0].request
    assert parse_qs(req.url.query.decode()) == {"marketplaceIds": ["ATVPDKIKX0DER"]}
    assert json.loads(req.content) == {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
            }
        ],
    }
    assert result.external_id == "f1dc2914-75dd-11ea-bc55-0242ac130003"


@respx.mock
async def test_invalid_listing_submission_is_fatal_with_the_issues(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    body = {
        "sku": "S1",
        "status": "INVALID",
        "submissionId": "x",
        "issues": [{"code": "90220", "message": "'fulfillment_availability' is required", "severity": "ERROR"}],
    }
    respx.patch(url__regex=r".*/listings/.*").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(FatalError, match="SKU S1: 90220"):
        await conn.push_inventory("S1", 1)


def test_region_picks_the_endpoint_and_secrets_stay_hidden() -> None:
    s = settings(base_url=None, region="eu")
    c = AmazonConnector("amazon-de", s)
    assert c.base_url() == "https://sellingpartnerapi-eu.amazon.com"
    assert "lwa-client-secret" not in repr(s) and "Atzr|refresh-token" not in repr(s)


@respx.mock
async def test_rejected_access_token_is_refreshed_once(conn: AmazonConnector) -> None:
    lwa = respx.post(LWA).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "Atza|revoked", "expires_in": 3600}),
            httpx.Response(200, json={"access_token": "Atza|fresh", "expires_in": 3600}),
        ]
    )
    unauthorized = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]}
    api = respx.get(f"{BASE}/orders/v0/orders/1/orderItems").mock(
        side_effect=[httpx.Response(403, json=unauthorized), httpx.Response(200, json=items_page("1", "S", "1"))]
    )
    await conn.order_items("1")
    assert lwa.call_count == 2
    assert [c.request.headers["x-amz-access-token"] for c in api.calls] == ["Atza|revoked", "Atza|fresh"]


@respx.mock
async def test_errors_carry_no_token_or_secret(conn: AmazonConnector) -> None:
    lwa_ok(respx.mock)
    respx.get(f"{BASE}/orders/v0/orders").mock(return_value=httpx.Response(400, json=fx("getOrders_400.json")))
    with pytest.raises(FatalError) as exc:
        await conn.poll_orders("2026-11-20T00:00:00Z")
    shown = json.dumps([str(exc.value), exc.value.request, exc.value.response])
    for secret in ("Atza|access-1", "Atzr|refresh-token", "lwa-client-secret"):
        assert secret not in shown


def test_prepare_mapping_gives_a_dry_run_what_the_connector_computes() -> None:
    payload = {**raw_order(), "OrderItems": fx("getOrderItems_200.json")["payload"]["OrderItems"]}
    data, context = AmazonConnector.prepare_mapping("order_v0", payload)
    order = MappingSet.for_connector("amazon").build(
        "order_v0", data, Order, extra={"id": new_id("ord"), "connection": "dry-run"}, context=context
    )
    assert order.totals.total == Money.of("11.01", "USD") and order.lines[0].sku == "NABetaASINB00551Q3CS"
