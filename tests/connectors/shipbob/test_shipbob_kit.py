"""The connector test kit (hub.testing) on ShipBob: settings, signatures, webhook fixtures, request shapes, retries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from connectors.shipbob import ShipBobConnector
from hub import signing
from hub.model import Address, Customer, FulfillmentLine, FulfillmentRequest, Money, Order, OrderLine, Totals
from hub.testing import ConnectorKit, Outbound

FIX = Path(__file__).parent / "fixtures"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

_ORDER = Order(
    id="ord_01JDXR5V6M3Y2Q9W8K7T6S5R4Q",
    connection="shop",
    external_id="1234762738908",
    name="1001",
    placed_at=datetime(2025, 10, 22, 9, 10, tzinfo=UTC),
    currency="USD",
    customer=Customer(email="johndoe@domain.com", name="John Doe"),
    shipping_address=Address(
        name="John Doe", company="Doe Inc", line1="100 N Racine Ave", line2="Suite 100", city="Chicago",
        region="IL", postal_code="60607", country="US", phone="555-555-5555",
    ),
    lines=[OrderLine(line_no=1, sku="LIGHT-ROAST", title="Light Roast Coffee", quantity=1, unit_price=Money.of("12.00", "USD"))],
    totals=Totals(
        subtotal=Money.of("12.00", "USD"), shipping=Money.zero("USD"), tax=Money.zero("USD"),
        discount=Money.zero("USD"), total=Money.of("12.00", "USD"),
    ),
)  # fmt: skip
_REQUEST = FulfillmentRequest(
    id="ful_01JDXR5V6M3Y2Q9W8K7T6S5R4P",
    order_id=_ORDER.id,
    location="chicago",
    external_id="100000001",
    lines=[FulfillmentLine(line_no=1, sku="LIGHT-ROAST", quantity=1)],
    created_at=datetime(2025, 10, 22, 9, 11, tzinfo=UTC),
)

#: The create-order example of https://developer.shipbob.com/guides/build-orders-integration (Step 1), plus the
#: optional documented fields the connector sends: location_id, purchase_date, products[].external_line_id
#: (https://developer.shipbob.com/api-reference/1.0/orders/create-order).
_CREATE_EXAMPLE = {
    "shipping_method": "Standard",
    "recipient": {
        "name": "John Doe",
        "address": {
            "address1": "100 N Racine Ave",
            "address2": "Suite 100",
            "company_name": None,
            "city": "Chicago",
            "state": "IL",
            "country": "US",
            "zip_code": "60607",
        },
        "email": "johndoe@domain.com",
        "phone_number": "555-555-5555",
    },
    "products": [{"name": "Light Roast Coffee", "reference_id": "LIGHT-ROAST", "quantity": 1, "external_line_id": 0}],
    "reference_id": "1234762738908",
    "order_number": "1001",
    "type": "DTC",
    "tags": [{"name": "Subscription Order", "value": "0"}],
    "location_id": 0,
    "purchase_date": "2019-08-24T14:15:22Z",
}


def _fx(name: str) -> Any:
    return json.loads((FIX / name).read_text())


class TestShipBobKit(ConnectorKit):
    connector = ShipBobConnector
    settings: ClassVar[dict[str, Any]] = {
        "access_token": "pat-test-token",
        "webhook_secret": SECRET,
        "channel_id": 100102,
        "fulfillment_center_map": {"chicago": 10},
    }
    webhooks_dir = FIX / "webhooks"
    shipment_partial = "order_shipped"
    shipment_order_lines: ClassVar[dict[str, int]] = {"LIGHT-ROAST": 2, "MUG-01": 2}
    shipment_order_id = "100000001"
    outbound: ClassVar[list[Outbound]] = [
        Outbound(
            name="create order",
            call=lambda c: c.submit_fulfillment(_REQUEST, _ORDER),
            method="POST",
            url="/order",
            response=(201, _fx("create_order_201.json")),
            example=_CREATE_EXAMPLE,
            source="developer.shipbob.com build-orders-integration guide, Step 1",
        ),
        Outbound(
            name="cancel order",
            call=lambda c: c.cancel_fulfillment(_REQUEST),
            method="POST",
            url="/order/100000001/cancel",
            response=(200, _fx("cancel_order_200.json")),
        ),
        Outbound(
            name="inventory levels",
            call=lambda c: c.inventory_snapshot(),
            method="GET",
            url="/inventory-level/locations",
            response=(200, _fx("inventory_levels_page2.json")),
        ),
    ]

    def sign(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        return {**headers, **signing.headers([SECRET], headers["webhook-id"], body)}
