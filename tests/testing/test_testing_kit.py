"""The connector test kit, run on a small Shopify-like connector and on broken variants of it.

The fixtures are trimmed from Shopify's documented example order 450789469 (see each
``*.headers.json`` ``_source``); the signature is Shopify's (base64 HMAC-SHA256 of the raw body,
FORMATS.md 1.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from hub.errors import AuthError
from hub.http import call
from hub.model import (
    Address,
    Money,
    Order,
    OrderLine,
    Refund,
    RefundLine,
    Shipment,
    ShipmentLine,
    Totals,
    new_id,
)
from hub.plugins import (
    Capability,
    ChannelConnector,
    ConnectorSettings,
    InboundEvent,
    Message,
    OrderCancelled,
    OrderUpserted,
    RefundCreated,
    RemoteResult,
    ShipmentConfirmed,
)
from hub.testing import ConnectorKit, Outbound, load_webhooks, normalize_ids, sample_order, shape_problems

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
SECRET = "hush-test-client-secret"


class DemoShopSettings(ConnectorSettings):
    shop_domain: str
    access_token: SecretStr
    client_secret: SecretStr


def _money(v: str, cur: str) -> Money:
    return Money(amount=Decimal(v), currency=cur)


class DemoShop(ChannelConnector):
    name = "demoshop"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.PUSH_INVENTORY})
    Settings = DemoShopSettings
    default_base_url = "https://johns-apparel.myshopify.com/admin/api/2026-07"

    @property
    def s(self) -> DemoShopSettings:
        assert isinstance(self.settings, DemoShopSettings)
        return self.settings

    def auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.s.access_token.get_secret_value()}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        h = {k.lower(): v for k, v in headers.items()}
        given = h.get("x-shopify-hmac-sha256")
        if not given or not body:
            raise AuthError(f"connection {self.connection_id}: missing X-Shopify-Hmac-Sha256 or body")
        mac = hmac.new(self.s.client_secret.get_secret_value().encode(), body, hashlib.sha256).digest()
        if not hmac.compare_digest(base64.b64encode(mac).decode(), given):
            raise AuthError(f"connection {self.connection_id}: X-Shopify-Hmac-Sha256 does not match the body")

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        h = {k.lower(): v for k, v in headers.items()}
        return InboundEvent(event_id=h["x-shopify-webhook-id"], topic=h.get("x-shopify-topic"))

    def _order(self, p: dict[str, Any]) -> Order:
        cur = p["currency"]
        lines = [
            OrderLine(
                line_no=i,
                external_id=str(li["id"]),
                sku=li["sku"],
                quantity=li["quantity"],
                unit_price=_money(li["price"], cur),
            )
            for i, li in enumerate(p["line_items"], start=1)
        ]
        sub = Money.sum((ln.net for ln in lines), cur)
        zero = Money.zero(cur)
        addr = p.get("shipping_address")
        return Order(
            id=new_id("ord"),
            connection=self.connection_id,
            external_id=str(p["id"]),
            name=p.get("name"),
            placed_at=datetime.fromisoformat(p["processed_at"]),
            source_updated_at=datetime.fromisoformat(p["updated_at"]),
            currency=cur,
            shipping_address=Address(city=addr["city"], postal_code=addr["zip"], country=addr["country_code"])
            if addr
            else None,
            lines=lines,
            totals=Totals(subtotal=sub, shipping=zero, tax=zero, discount=zero, total=sub),
        )

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        p = orjson.loads(body)
        if event.topic in ("orders/create", "orders/updated"):
            return [OrderUpserted(order=self._order(p))]
        if event.topic == "orders/cancelled":
            return [OrderCancelled(external_id=str(p["id"]), reason=p.get("cancel_reason"), order=self._order(p))]
        if event.topic == "fulfillments/create":
            shipment = Shipment(
                id=new_id("shp"),
                external_order_id=str(p["order_id"]),
                carrier=p.get("tracking_company"),
                tracking_number=p.get("tracking_number"),
                lines=[ShipmentLine(sku=li["sku"], quantity=li["quantity"]) for li in p["line_items"]],
                shipped_at=datetime.fromisoformat(p["created_at"]),
            )
            return [ShipmentConfirmed(shipment=shipment, external_order_id=str(p["order_id"]))]
        if event.topic == "refunds/create":
            cur = p["transactions"][0]["currency"]
            refund = Refund(
                id=new_id("ref"),
                order_id=str(p["order_id"]),
                external_id=str(p["id"]),
                amount=Money.sum((_money(t["amount"], cur) for t in p["transactions"]), cur),
                lines=[
                    RefundLine(sku=r["line_item"]["sku"], quantity=r["quantity"], amount=_money(r["subtotal"], cur))
                    for r in p["refund_line_items"]
                ],
                reason=p.get("note"),
                created_at=datetime.fromisoformat(p["created_at"]),
            )
            return [RefundCreated(external_order_id=str(p["order_id"]), refund=refund)]
        raise NotImplementedError(event.topic)

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        assert self.http is not None
        resp = await call(
            self.http,
            "POST",
            "/inventory_levels/set.json",
            json={"location_id": 655441491, "inventory_item_id": 808950810, "available": quantity},
        )
        return RemoteResult(detail=resp.json())


def shopify_sign(body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode()}


# Shopify's documented inventory_levels/set request and response (FORMATS.md 1.4).
SET_EXAMPLE = {"location_id": 655441491, "inventory_item_id": 808950810, "available": 42}
SET_RESPONSE = {
    "inventory_level": {
        "inventory_item_id": 808950810,
        "location_id": 655441491,
        "available": 42,
        "updated_at": "2026-07-02T19:25:04-04:00",
    }
}


class TestDemoShopKit(ConnectorKit):
    """The whole kit passes on a correct connector."""

    connector = DemoShop
    settings = {
        "shop_domain": "johns-apparel.myshopify.com",
        "access_token": "shpat_test_token",
        "client_secret": SECRET,
    }
    webhooks_dir = FIXTURES
    outbound = [
        Outbound(
            "push_inventory",
            lambda c: c.push_inventory("IPOD2008GREEN", 42),
            "POST",
            "/inventory_levels/set.json",
            response=(200, SET_RESPONSE),
            example=SET_EXAMPLE,
            source="Shopify/shopify-app-js rest/admin/__tests__/2026-07/inventory_level.test.ts",
        )
    ]
    order_created = "orders_create"
    order_updated = "orders_updated"
    order_cancelled = "orders_cancelled"
    refund_created = "refunds_create"
    shipment_partial = "fulfillments_create"

    def sign(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        return shopify_sign(body, headers)


# -- the kit catches broken connectors -----------------------------------------------------


def _kit(connector: type[DemoShop], **attrs: Any) -> ConnectorKit:
    cls = type("K", (TestDemoShopKit,), {"connector": connector, **attrs})
    return cls()  # type: ignore[no-any-return]


def test_kit_fails_a_connector_that_accepts_any_signature() -> None:
    class Lax(DemoShop):
        def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
            return None

    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        _kit(Lax).test_kit_webhook_with_a_bad_signature_is_refused()


def test_kit_fails_a_connector_that_does_not_retry() -> None:
    class NoRetry(DemoShop):
        async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
            assert self.http is not None
            resp = await self.http.post("/inventory_levels/set.json", json=SET_EXAMPLE)
            return RemoteResult(detail={"status": resp.status_code})

    with pytest.raises(AssertionError, match=r"hub\.http\.call"):
        _kit(NoRetry).test_kit_outbound_retries_429_and_5xx_then_succeeds()


def test_kit_fails_a_request_body_that_differs_from_the_api_example() -> None:
    class Wrong(DemoShop):
        async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
            assert self.http is not None
            await call(self.http, "POST", "/inventory_levels/set.json", json={"sku": sku, "available": str(quantity)})
            return RemoteResult()

    with pytest.raises(AssertionError, match="differs from the API's example"):
        _kit(Wrong).test_kit_outbound_requests_match_the_api_shape()


def test_kit_fails_a_parse_that_is_not_idempotent() -> None:
    class Flaky(DemoShop):
        n = 0

        def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
            Flaky.n += 1
            out = super().parse_webhook(event, headers, body)
            for m in out:
                if isinstance(m, OrderUpserted):
                    m.order.tags.append(str(Flaky.n))
            return out

    with pytest.raises(AssertionError, match="twice gave different results"):
        _kit(Flaky).test_kit_parse_is_idempotent()


def test_kit_fails_a_secret_setting_that_is_a_plain_string() -> None:
    class PlainSettings(ConnectorSettings):
        shop_domain: str
        access_token: str
        client_secret: SecretStr

    class Leaky(DemoShop):
        Settings = PlainSettings

        def auth_headers(self) -> dict[str, str]:
            return {}

    with pytest.raises(AssertionError, match="access_token"):
        _kit(Leaky).test_kit_secrets_are_secretstr_and_never_shown()


def test_kit_fails_an_event_id_that_changes_between_retries() -> None:
    class Unstable(DemoShop):
        def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
            return InboundEvent(event_id=new_id("evt"), topic=headers.get("X-Shopify-Topic"))

    with pytest.raises(AssertionError, match="event id changed"):
        _kit(Unstable).test_kit_webhook_event_id_is_stable_for_one_delivery()


def test_kit_fails_a_shipment_of_an_unknown_sku(orderhub_kit_db: str) -> None:
    class Swapped(DemoShop):
        def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
            return super().parse_webhook(
                event, headers, body.replace(b'IPOD2008GREEN","quantity":1}]', b'NOPE","quantity":1}]')
            )

    with pytest.raises(AssertionError, match="ships NOPE"):
        _kit(Swapped).test_kit_partial_shipment(orderhub_kit_db)


# -- helpers -------------------------------------------------------------------------------


def test_load_webhooks_reads_bodies_verbatim_and_headers_without_source() -> None:
    fixtures = {f.name: f for f in load_webhooks(FIXTURES)}
    assert set(fixtures) == {
        "orders_create",
        "orders_updated",
        "orders_cancelled",
        "fulfillments_create",
        "refunds_create",
    }
    fx = fixtures["orders_create"]
    assert fx.body == (FIXTURES / "orders_create.json").read_bytes().rstrip(b"\n")
    assert fx.headers["X-Shopify-Topic"] == "orders/create" and "_source" not in fx.headers
    assert fx.source and "450789469" in fx.source


def test_shape_problems_names_missing_unknown_and_mistyped_fields() -> None:
    assert shape_problems({"a": 1, "b": [{"c": "x"}]}, {"a": 2, "b": [{"c": "y"}]}) == []
    assert shape_problems({"a": "1", "z": 0}, {"a": 2, "b": None}) == [
        "body.b is missing",
        "body.a is string ('1'), the API expects number",
        "body.z is not in the API's example",
    ]


def test_normalize_ids_hides_generated_ids_only() -> None:
    o = sample_order("c1")
    assert normalize_ids({"id": o.id, "external_id": "1001"}) == {"id": "ord_*", "external_id": "1001"}


def test_sample_order_adds_up() -> None:
    o = sample_order(lines=[("A", 2, "10.00"), ("B", 1, "5.50")], currency="EUR")
    assert o.totals.total == Money(amount=Decimal("25.50"), currency="EUR")


def test_signed_fixture_verifies_and_tampering_is_refused() -> None:
    fx = load_webhooks(FIXTURES)[0]
    shop = DemoShop("c", DemoShopSettings.model_validate(TestDemoShopKit.settings))
    shop.verify_webhook(shopify_sign(fx.body, fx.headers), fx.body)
    with pytest.raises(AuthError):
        shop.verify_webhook(shopify_sign(fx.body, fx.headers), fx.body + b" ")
    assert httpx.URL(shop.base_url()).host == "johns-apparel.myshopify.com"
