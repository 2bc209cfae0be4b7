"""Shopify inbound: webhook signatures, identity, and mapping of real payloads to canonical objects.

Fixtures: tests/connectors/shopify/fixtures (Shopify's documented example order 450789469; see README there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.shopify import ShopifyConnector, ShopifySettings
from hub.errors import AuthError, MappingError
from hub.mapping import mappings_dir
from hub.model import Money, Order, PaymentStatus
from hub.plugins import Ignored, InboundEvent, OrderCancelled, OrderUpserted, RefundCreated

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "shpss_test_client_secret"
ORDER_YAML = str(mappings_dir() / "shopify" / "order.yaml")


def connector() -> ShopifyConnector:
    settings = ShopifySettings(
        shop_domain="test-shop.myshopify.com",
        access_token="shpat_test_token",
        client_secret=SECRET,
        location_map={"wh-east": "655441491"},
    )
    return ShopifyConnector("shop-us", settings)


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(body: bytes, topic: str, webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": sign(body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "test-shop.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2026-07-01T10:00:00.000Z",
    }


def receive(name: str, topic: str) -> list[Any]:
    c = connector()
    body = body_of(name)
    h = headers(body, topic)
    c.verify_webhook(h, body)
    return c.parse_webhook(c.webhook_event(h, body), h, body)


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


# -- signatures ------------------------------------------------------------------------------


def test_a_correctly_signed_webhook_is_accepted() -> None:
    body = body_of("orders_create")
    connector().verify_webhook(headers(body, "orders/create"), body)


def test_the_unprefixed_events_header_is_accepted_in_any_case() -> None:
    body = body_of("orders_create")
    connector().verify_webhook({"shopify-hmac-sha256": sign(body)}, body)
    connector().verify_webhook({"x-shopify-hmac-sha256": sign(body)}, body)


@pytest.mark.parametrize(
    ("hdrs", "body", "reason"),
    [
        ({"X-Shopify-Hmac-Sha256": sign(b'{"id":1}', "wrong-secret")}, b'{"id":1}', "invalid_hmac"),
        ({"X-Shopify-Hmac-Sha256": sign(b'{"id":1}')}, b'{"id":2}', "invalid_hmac"),
        ({"X-Shopify-Topic": "orders/create"}, b'{"id":1}', "missing_hmac"),
        ({"X-Shopify-Hmac-Sha256": sign(b"")}, b"", "missing_body"),
    ],
    ids=["wrong-secret", "tampered-body", "missing-header", "empty-body"],
)
def test_a_bad_or_missing_signature_is_refused_with_the_reason(hdrs: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(AuthError) as info:
        connector().verify_webhook(hdrs, body)
    assert info.value.context["reason"] == reason
    assert SECRET not in info.value.detail
    assert SECRET not in str(info.value.problem())


# -- identity ----------------------------------------------------------------------------------


def test_webhook_event_uses_the_webhook_id_topic_order_and_updated_at() -> None:
    body = body_of("orders_updated")
    event = connector().webhook_event(headers(body, "orders/updated", "wh-1"), body)
    assert event.event_id == "wh-1"
    assert event.topic == "orders/updated"
    assert event.object_key == "order:450789469"
    assert event.source_ts is not None and event.source_ts.isoformat() == "2008-01-10T12:30:00-05:00"


def test_a_refund_event_is_keyed_by_its_order_and_falls_back_to_triggered_at() -> None:
    body = body_of("refunds_create")
    event = connector().webhook_event(headers(body, "refunds/create"), body)
    assert event.object_key == "order:450789469"
    assert event.source_ts is not None and event.source_ts.isoformat() == "2026-07-01T10:00:00+00:00"


# -- mapping -------------------------------------------------------------------------------------


def only_order(messages: list[Any]) -> Order:
    assert len(messages) == 1 and isinstance(messages[0], OrderUpserted)
    return messages[0].order


def test_the_documented_example_order_maps_with_exact_amounts() -> None:
    order = only_order(receive("orders_create", "orders/create"))
    assert order.connection == "shop-us"
    assert order.external_id == "450789469"
    assert order.name == "#1001"
    assert order.currency == "USD"
    assert order.placed_at.isoformat() == "2008-01-10T11:00:00-05:00"
    assert order.payment_status is PaymentStatus.PARTIALLY_REFUNDED
    assert [(ln.line_no, ln.sku, ln.quantity, ln.unit_price, ln.discount) for ln in order.lines] == [
        (1, "IPOD2008GREEN", 1, usd("199.00"), usd("3.34")),
        (2, "IPOD2008RED", 1, usd("199.00"), usd("3.33")),
        (3, "IPOD2008BLACK", 1, usd("199.00"), usd("3.33")),
    ]
    assert order.lines[0].external_id == "466157049"
    assert [(t.title, t.rate, t.amount) for t in order.lines[0].tax_lines] == [
        ("State Tax", Decimal("0.06"), usd("3.98"))
    ]
    assert order.totals.model_dump() == {
        "subtotal": usd("587.00").model_dump(),
        "shipping": usd("0.00").model_dump(),
        "tax": usd("11.94").model_dump(),
        "discount": usd("10.00").model_dump(),
        "total": usd("598.94").model_dump(),
    }
    assert [(d.code, d.kind, d.amount) for d in order.discounts] == [("TENOFF", "discount_code", usd("10.00"))]
    assert order.shipping_address is not None
    assert (order.shipping_address.country, order.shipping_address.region) == ("US", "KY")
    assert order.customer is not None and order.customer.external_id == "207119551"
    assert order.customer.tags == ["Léon", "Noël"]
    assert order.tags == []


def test_an_order_in_another_presentment_currency_is_kept_in_shop_money() -> None:
    order = only_order(receive("orders_create_multicurrency", "orders/create"))
    assert order.currency == "USD"
    assert order.lines[0].unit_price == usd("50.00")
    assert order.lines[0].quantity == 2
    assert order.shipping_lines[0].price == usd("10.00")
    assert order.totals.total == usd("116.00")
    assert order.presentment_currency == "EUR"
    assert order.presentment_total == Money.of("106.72", "EUR")
    assert order.shipping_address is not None and order.shipping_address.country == "DE"
    assert order.tags == ["wholesale"]


def test_code_and_automatic_discounts_with_tax_added_on_top() -> None:
    order = only_order(receive("orders_create_discounts_tax_excluded", "orders/create"))
    assert [ln.discount for ln in order.lines] == [usd("6.00"), usd("4.00")]
    assert [ln.tax for ln in order.lines] == [usd("4.46"), usd("2.97")]
    ship = order.shipping_lines[0]
    assert (ship.price, ship.discount, ship.net) == (usd("8.00"), usd("8.00"), usd("0.00"))
    assert order.totals.subtotal == usd("90.00")
    assert order.totals.shipping == usd("0.00")  # total_shipping_price_set 8.00 minus the shipping discount
    assert order.totals.discount == usd("18.00")  # total_discounts includes the shipping discount
    assert order.totals.total == usd("97.43")
    assert [(d.code, d.kind, d.amount) for d in order.discounts] == [
        ("SUMMER10", "discount_code", usd("10.00")),
        ("Free shipping over $80", "automatic", usd("8.00")),
    ]


def test_taxes_included_in_prices_are_not_added_to_the_total() -> None:
    order = only_order(receive("orders_create_discounts_tax_included", "orders/create"))
    eur = lambda a: Money.of(a, "EUR")  # noqa: E731
    assert order.taxes_included is True
    assert order.currency == "EUR"
    assert order.totals.model_dump() == {
        "subtotal": eur("108.00").model_dump(),
        "shipping": eur("3.00").model_dump(),
        "tax": eur("18.50").model_dump(),
        "discount": eur("15.00").model_dump(),
        "total": eur("111.00").model_dump(),
    }
    assert order.shipping_lines[0].tax_lines[0].amount == eur("0.50")
    assert order.shipping_address is not None and order.shipping_address.country == "FR"


def test_an_update_of_a_known_order_keeps_its_identity() -> None:
    created = only_order(receive("orders_create", "orders/create"))
    updated = only_order(receive("orders_updated", "orders/updated"))
    assert (updated.connection, updated.external_id) == (created.connection, created.external_id)
    assert updated.source_updated_at is not None and created.source_updated_at is not None
    assert updated.source_updated_at > created.source_updated_at
    assert updated.tags == ["vip", "gift"]


def test_a_cancelled_order_gives_order_cancelled_with_the_order() -> None:
    messages = receive("orders_cancelled", "orders/cancelled")
    assert len(messages) == 1 and isinstance(messages[0], OrderCancelled)
    msg = messages[0]
    assert msg.external_id == "450789469"
    assert msg.reason == "customer"
    assert msg.cancelled_at is not None and msg.cancelled_at.isoformat() == "2008-01-11T09:15:00-05:00"
    assert msg.order is not None and msg.order.payment_status is PaymentStatus.VOIDED


def test_a_refund_gives_refund_created_with_exact_amounts() -> None:
    messages = receive("refunds_create", "refunds/create")
    assert len(messages) == 1 and isinstance(messages[0], RefundCreated)
    msg = messages[0]
    assert msg.external_order_id == "450789469"
    refund = msg.refund
    assert refund.external_id == "509562969"
    assert refund.amount == usd("209.00")
    assert refund.tax == usd("7.96")
    assert [(ln.sku, ln.quantity, ln.amount, ln.tax) for ln in refund.lines] == [
        ("IPOD2008BLACK", 1, usd("195.66"), usd("3.98")),
        ("IPOD2008GREEN", 1, usd("195.67"), usd("3.98")),
    ]
    assert refund.reason == "it broke during shipping"


def test_other_topics_are_ignored() -> None:
    body = b'{"inventory_item_id":808950810,"location_id":655441491,"available":42}'
    c = connector()
    h = headers(body, "inventory_levels/update")
    messages = c.parse_webhook(c.webhook_event(h, body), h, body)
    assert len(messages) == 1 and isinstance(messages[0], Ignored)
    assert "inventory_levels/update" in messages[0].reason


def test_the_documented_example_that_does_not_add_up_is_reported_at_its_mapping_line() -> None:
    with pytest.raises(MappingError) as info:
        receive("invalid/order_450789469_as_documented", "orders/create")
    line = next(
        i for i, text in enumerate(Path(ORDER_YAML).read_text().splitlines(), 1) if text.strip().startswith("subtotal:")
    )
    assert info.value.errors == [
        {
            "file": ORDER_YAML,
            "line": line,
            "field": "totals.subtotal",
            "value": "597.00",
            "message": "totals.subtotal is 597.00 but the lines add up to 587.00 USD",
        }
    ]


def test_a_line_without_sku_is_a_clear_error_naming_the_line() -> None:
    payload = orjson.loads(body_of("orders_create"))
    payload["line_items"][1]["sku"] = ""
    with pytest.raises(MappingError) as info:
        connector().map_order(payload)
    (err,) = info.value.errors
    assert err["field"] == "lines[1].sku"
    assert err["file"] == ORDER_YAML
    assert "give the variant a SKU in Shopify" in err["message"]


def test_parse_is_idempotent_except_for_generated_ids() -> None:
    def dump(messages: list[Any]) -> dict[str, Any]:
        doc: dict[str, Any] = messages[0].model_dump(mode="json")
        doc["order"].pop("id")
        return doc

    for name, topic in [("orders_create", "orders/create"), ("orders_create_discounts_tax_included", "orders/create")]:
        assert dump(receive(name, topic)) == dump(receive(name, topic))


def test_every_fixture_is_a_real_shopify_payload_with_its_source_noted() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for path in FIXTURES.rglob("*.json"):
        if not path.name.endswith(".headers.json"):
            assert str(path.relative_to(FIXTURES)) in readme
            headers = path.with_name(path.name.replace(".json", ".headers.json"))
            assert path.parent.name == "invalid" or headers.is_file()
    assert "450789469" in readme and "shopify-app-js" in readme


def test_webhook_event_needs_no_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity step runs before mapping and stays cheap: it never touches the mapping set."""
    c = connector()
    monkeypatch.setattr(c, "_mappings", lambda: (_ for _ in ()).throw(AssertionError("mapped")))
    body = body_of("orders_create")
    assert isinstance(c.webhook_event(headers(body, "orders/create"), body), InboundEvent)
