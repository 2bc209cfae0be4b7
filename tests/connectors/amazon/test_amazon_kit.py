"""The connector test kit (hub.testing) on Amazon: settings, secrets, request bodies validated against Amazon's own
models (ordersV0.json ConfirmShipmentRequest, listingsItems_2021-08-01.json ListingsItemPatchRequest), retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from connectors.amazon import AmazonConnector
from connectors.amazon._map_v0 import order_from_v0
from hub.model import Shipment, ShipmentLine
from hub.testing import ConnectorKit, Outbound

FIX = Path(__file__).parent / "fixtures"
_LOCAL_MODELS = FIX / "models"


def _model(file: str, definition: str) -> dict[str, Any]:
    """A JSON Schema for one definition of an Amazon Swagger model (its definitions inlined)."""
    doc = json.loads((_LOCAL_MODELS / file).read_text())
    return {"$ref": f"#/definitions/{definition}", "definitions": doc["definitions"]}


def _fx(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def _seeded(c: AmazonConnector) -> AmazonConnector:
    """The kit routes one request per case: give the connection a live LWA token so it needs no token call."""
    c._token, c._token_expires = "Atza|kit-token", c.clock() + 3600
    return c


_ORDER = order_from_v0(
    "test-conn",
    _fx("getOrders_200.json")["payload"]["Orders"][0],
    _fx("getOrderItems_200.json")["payload"]["OrderItems"],
)
_SHIPMENT = Shipment(
    id="shp_01JDXR5V6M3Y2Q9W8K7T6S5R4P",
    carrier="FedEx",
    service="FedEx Ground",
    tracking_number="112345678",
    shipped_at=datetime(2022, 2, 11, 1, 0, tzinfo=UTC),
    lines=[ShipmentLine(sku="NABetaASINB00551Q3CS", quantity=1, line_no=1)],
)


class TestAmazonKit(ConnectorKit):
    connector = AmazonConnector
    settings: ClassVar[dict[str, Any]] = {
        "client_id": "amzn1.application-oa2-client.kit",
        "client_secret": "lwa-kit-secret",
        "refresh_token": "Atzr|kit-refresh",
        "marketplace_id": "ATVPDKIKX0DER",
        "seller_id": "A2SELLER",
    }
    outbound: ClassVar[list[Outbound]] = [
        Outbound(
            name="confirmShipment",
            call=lambda c: _seeded(c).push_fulfillment(_ORDER, _SHIPMENT),
            method="POST",
            url="/orders/v0/orders/902-1845936-5435065/shipmentConfirmation",
            response=(204, None),
            schema=_model("ordersV0.json", "ConfirmShipmentRequest"),
            source="amzn/selling-partner-api-models models/orders-api-model/ordersV0.json",
        ),
        Outbound(
            name="patchListingsItem",
            call=lambda c: _seeded(c).push_inventory("GM-ZDPI-9B4E", 5),
            method="PATCH",
            url="/listings/2021-08-01/items/A2SELLER/GM-ZDPI-9B4E",
            response=(200, _fx("patchListingsItem_200.json")),
            schema=_model("listingsItems_2021-08-01.json", "ListingsItemPatchRequest"),
            source="amzn/selling-partner-api-models models/listings-items-api-model/listingsItems_2021-08-01.json",
        ),
        Outbound(
            name="getOrders",
            call=lambda c: _seeded(c).poll_orders("2026-11-20T00:00:00Z"),
            method="GET",
            url="/orders/v0/orders",
            response=(200, {"payload": {"Orders": []}}),
        ),
    ]
