"""The connector test kit (hub.testing) on EasyPost: settings, signatures, webhook fixtures, request shapes, retries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from connectors.easypost import EasyPostConnector, signature
from hub.model import Address
from hub.plugins import Parcel
from hub.testing import ConnectorKit, Outbound, WebhookFixture

FIX = Path(__file__).parent / "fixtures"
SECRET = "s\u00e9cret"
_FROM = Address(name="EasyPost", line1="417 Montgomery Street", line2="5th Floor", city="San Francisco",
                region="CA", postal_code="94104", country="US", phone="4153334445")  # fmt: skip
_TO = Address(name="Dr. Steve Brule", line1="179 N Harbor Dr", city="Redondo Beach", region="CA",
              postal_code="90277", country="US")  # fmt: skip

_ADDRESS = {
    "type": "object",
    "required": ["street1", "city", "zip", "country"],
    "properties": {
        k: {"type": "string"}
        for k in ("name", "company", "street1", "street2", "city", "state", "zip", "country", "phone")
    },
    "additionalProperties": False,
}
#: Create Shipment request (https://docs.easypost.com/docs/shipments#create-a-shipment): addresses and a parcel
#: (weight in ounces, dimensions in inches), as in official/docs/responses/shipments/shipments-create.json.
_SHIPMENT_SCHEMA = {
    "type": "object",
    "required": ["shipment"],
    "properties": {
        "shipment": {
            "type": "object",
            "required": ["from_address", "to_address", "parcel"],
            "properties": {
                "from_address": _ADDRESS,
                "to_address": _ADDRESS,
                "parcel": {
                    "type": "object",
                    "required": ["weight"],
                    "properties": {
                        k: {"type": "number", "exclusiveMinimum": 0} for k in ("weight", "length", "width", "height")
                    },
                    "additionalProperties": False,
                },
                "reference": {"type": "string"},
                "carrier_accounts": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        }
    },
}


def _raw(name: str) -> bytes:
    return (FIX / name).read_bytes().rstrip(b"\n")


class TestEasyPostKit(ConnectorKit):
    connector = EasyPostConnector
    settings: ClassVar[dict[str, Any]] = {"api_key": "EZTK-test-key", "webhook_secret": SECRET}
    webhooks: ClassVar[list[WebhookFixture]] = [
        WebhookFixture("tracker_updated", _raw("event-body.json"), source="EasyPost/examples official/fixtures"),
        WebhookFixture("tracker_delivered", _raw("tracking-webhook.json"), source="EasyPost/examples tracking guide"),
        WebhookFixture("tracker_created", _raw("events-retrieve.json"), source="EasyPost/examples events-retrieve"),
    ]
    outbound: ClassVar[list[Outbound]] = [
        Outbound(
            name="rates",
            call=lambda c: c.rates(
                _FROM, _TO, Parcel(weight_grams=1868, length_cm=51.3, width_cm=27.7, height_cm=12.7)
            ),
            method="POST",
            url="/shipments",
            response=(201, json.loads((FIX / "shipments-create.json").read_text())),
            schema=_SHIPMENT_SCHEMA,
            source="https://docs.easypost.com/docs/shipments",
        ),
        Outbound(
            name="tracker",
            call=lambda c: c.track("EZ1000000001", "USPS"),
            method="POST",
            url="/trackers",
            response=(201, json.loads((FIX / "trackers-create.json").read_text())),
            example={"tracker": {"tracking_code": "EZ1000000001", "carrier": "USPS"}},
            source="https://docs.easypost.com/docs/trackers#create-a-tracker",
        ),
    ]

    def sign(self, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        return {**headers, "X-Hmac-Signature": signature(SECRET, body)}
