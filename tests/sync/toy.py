"""A small channel and a small 3PL used by the sync engine tests (loaded through ORDERHUB_PLUGINS).

Channel webhooks are JSON ``{"id": event id, "order": {...}}`` signed with hex HMAC-SHA256 in
``X-Toy-Signature``; the 3PL is an HTTP API (mocked with respx or served by a local app).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import SecretStr

from hub import http
from hub.errors import AuthError, FatalError, MappingError
from hub.model import FulfillmentRequest, Order, Shipment, ShipmentLine, new_id
from hub.plugins import (
    Capability,
    ChannelConnector,
    ConnectorSettings,
    InboundEvent,
    Message,
    OrderCancelled,
    OrderUpserted,
    PollResult,
    RemoteResult,
    ShipmentConfirmed,
    WmsConnector,
    hookimpl,
)

#: Flip to False to "fix the mapping" (the garbage-then-replay test).
STRICT = {"on": True}


class ToySettings(ConnectorSettings):
    secret: SecretStr


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def order_doc(
    ext: str, qty: int = 1, sku: str = "SKU-1", updated: str = "2026-01-01T00:00:00+00:00", price: str = "10.00"
) -> dict[str, Any]:
    total = str(int(price.split(".")[0]) * qty) + ".00"
    m = lambda a: {"amount": a, "currency": "EUR"}  # noqa: E731
    return {
        "external_id": ext,
        "placed_at": "2026-01-01T00:00:00+00:00",
        "source_updated_at": updated,
        "currency": "EUR",
        "customer": {"email": f"{ext}@example.com"},
        "shipping_address": {
            "line1": "Main St 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "latitude": 52.5,
            "longitude": 13.4,
        },
        "lines": [{"line_no": 1, "sku": sku, "quantity": qty, "unit_price": m(price)}],
        "totals": {"subtotal": m(total), "shipping": m("0"), "tax": m("0"), "discount": m("0"), "total": m(total)},
    }


class ToyChannel(ChannelConnector):
    name = "toy-channel"
    capabilities = frozenset(
        {Capability.WEBHOOKS, Capability.PUSH_INVENTORY, Capability.PUSH_FULFILLMENT, Capability.PUSH_CANCELLATION}
    )
    Settings: ClassVar[type[ConnectorSettings]] = ToySettings
    default_base_url = "https://toy-channel.test"

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        given = {k.lower(): v for k, v in headers.items()}.get("x-toy-signature", "")
        secret = self.settings.secret.get_secret_value()  # type: ignore[attr-defined]
        if not hmac.compare_digest(given, sign(secret, body)):
            raise AuthError("invalid X-Toy-Signature")

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        doc = json.loads(body)
        ext = (doc.get("order") or {}).get("external_id")
        return InboundEvent(
            event_id=str(doc["id"]), topic=doc.get("topic", "order"), object_key=f"order:{ext}" if ext else None
        )

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        doc = json.loads(body)
        if "order" not in doc:
            if STRICT["on"]:
                raise MappingError(
                    "no order in payload",
                    errors=[{"file": "toy.yaml", "line": 1, "field": "order", "value": None, "message": "required"}],
                )
            doc["order"] = order_doc(str(doc["id"]))
        order = Order.model_validate({**doc["order"], "id": new_id("ord"), "connection": self.connection_id})
        if doc.get("topic") == "cancel":
            return [OrderCancelled(external_id=order.external_id, reason="customer", order=order)]
        return [OrderUpserted(order=order)]

    async def push_inventory(self, sku: str, quantity: int, location: str | None = None) -> RemoteResult:
        await http.call(self.http, "POST", "/inventory", json={"sku": sku, "quantity": quantity})
        return RemoteResult(detail={"quantity": quantity})

    async def push_fulfillment(self, order: Order, shipment: Shipment) -> RemoteResult:
        await http.call(
            self.http, "POST", f"/orders/{order.external_id}/fulfillments", json={"tracking": shipment.tracking_number}
        )
        return RemoteResult()

    async def push_cancellation(self, order: Order, reason: str | None = None) -> RemoteResult:
        await http.call(self.http, "POST", f"/orders/{order.external_id}/cancel", json={})
        return RemoteResult()


class ToyWms(WmsConnector):
    name = "toy-wms"
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.SUBMIT_FULFILLMENT,
            Capability.CANCEL_FULFILLMENT,
            Capability.INVENTORY_SNAPSHOT,
        }
    )
    Settings: ClassVar[type[ConnectorSettings]] = ToySettings
    default_base_url = "https://toy-wms.test"
    COUNTS: ClassVar[list[tuple[str, str, int]]] = []

    async def inventory_snapshot(self) -> list[tuple[str, str, int]]:
        return list(self.COUNTS)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> None:
        ToyChannel.verify_webhook(self, headers, body)  # type: ignore[arg-type]

    def webhook_event(self, headers: Mapping[str, str], body: bytes) -> InboundEvent:
        doc = json.loads(body)
        return InboundEvent(event_id=str(doc["id"]), topic="shipped", object_key=f"ful:{doc['reference']}")

    def parse_webhook(self, event: InboundEvent, headers: Mapping[str, str], body: bytes) -> list[Message]:
        doc = json.loads(body)
        lines = [ShipmentLine(sku=s, quantity=q) for s, q in doc.get("lines", {}).items()]
        shp = Shipment(
            id=new_id("shp"), tracking_number=doc["tracking"], carrier="DHL", lines=lines, shipped_at=datetime.now(UTC)
        )
        return [ShipmentConfirmed(shipment=shp, fulfillment_id=doc["reference"], external_order_id=doc.get("wms_id"))]

    async def submit_fulfillment(self, request: FulfillmentRequest, order: Order) -> RemoteResult:
        r = await http.call(
            self.http,
            "POST",
            "/orders",
            json={"reference": request.id, "lines": [ln.model_dump() for ln in request.lines]},
        )
        return RemoteResult(external_id=str(r.json().get("id", request.id)))

    async def cancel_fulfillment(self, request: FulfillmentRequest) -> RemoteResult:
        r = await self.http.post(f"/orders/{request.external_id}/cancel")  # type: ignore[union-attr]
        if r.status_code == 409:
            raise FatalError(f"3PL refuses to cancel {request.id}: already picked", connection=self.connection_id)
        return RemoteResult()


class ToyMarketplace(ChannelConnector):
    """A polling channel: ``FEED`` holds (updated_at ISO, order doc) in update order."""

    name = "toy-marketplace"
    capabilities = frozenset({Capability.POLL_ORDERS})
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    FEED: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    PAGE = 2
    calls: ClassVar[list[str | None]] = []

    async def poll_orders(self, cursor: str | None) -> PollResult:
        self.calls.append(cursor)
        newer = [(ts, d) for ts, d in self.FEED if cursor is None or ts > cursor]
        page = newer[: self.PAGE]
        orders = [Order.model_validate({**d, "id": new_id("ord"), "connection": self.connection_id}) for _, d in page]
        return PollResult(orders=orders, cursor=page[-1][0] if page else cursor, more=len(newer) > self.PAGE)


@hookimpl
def orderhub_register_connectors(register: Any) -> None:
    register(ToyChannel)
    register(ToyWms)
    register(ToyMarketplace)
