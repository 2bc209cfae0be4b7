"""ShipBob payloads -> canonical messages: pure functions, no I/O. Shipments and deliveries are mapped by
``mappings/shipbob/shipment.yaml`` and ``tracking.yaml``; this module dispatches by topic.

Field names: ShipBob's ``ShipmentViewModel`` (``id, order_id, reference_id, status, status_details[],
location{id,name}, tracking{carrier, tracking_number, carrier_service, tracking_url, shipping_date},
products[]{reference_id, sku, name, inventory_items[]{quantity}}, actual_fulfillment_date, delivery_date,
last_update_at}``), the body of the ``order.shipped`` / ``order.shipment.*`` webhooks
(https://developer.shipbob.com/2026-07/webhooks, https://developer.shipbob.com/2026-07/api/orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from hub.mapping import MappingSet
from hub.model import Shipment, TrackingEvent, new_id
from hub.plugins import FulfillmentException, Ignored, Message, ShipmentConfirmed, TrackingUpdated

#: Legacy v1.0/v2.0 topic names (header ``shipbob-topic``) -> current names (header ``x-webhook-topic``).
LEGACY_TOPICS: dict[str, str] = {
    "order_shipped": "order.shipped",
    "shipment_delivered": "order.shipment.delivered",
    "shipment_exception": "order.shipment.exception",
    "shipment_onhold": "order.shipment.on_hold",
    "shipment_cancelled": "order.shipment.cancelled",
}


def parse_time(value: Any) -> datetime | None:
    """ShipBob times (``2025-10-23T15:55:09.3614767Z``, 7 fractional digits) as aware datetimes."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    main, sep, rest = text.partition(".")
    if sep:  # Python accepts at most 6 fractional digits
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{main}.{digits[:6]}{rest[len(digits) :]}"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _ctx(fc_to_location: Mapping[int, str]) -> dict[str, Any]:
    return {"fc_to_location": {str(fc): loc for fc, loc in fc_to_location.items()}}


def shipment_from(payload: Mapping[str, Any], fc_to_location: Mapping[int, str], mappings: MappingSet) -> Shipment:
    """The canonical shipment of one ShipBob shipment, by ``mappings/shipbob/shipment.yaml``."""
    return mappings.build(
        "shipment", dict(payload), Shipment, extra={"id": new_id("shp")}, context=_ctx(fc_to_location)
    )


def _details(payload: Mapping[str, Any]) -> str:
    parts = [
        ": ".join(x for x in (d.get("name"), d.get("description")) if x) for d in payload.get("status_details") or []
    ]
    return "; ".join(p for p in parts if p)


def messages_from(
    topic: str, payload: Mapping[str, Any], fc_to_location: Mapping[int, str], mappings: MappingSet
) -> list[Message]:
    """The hub messages of one ShipBob webhook body, by topic."""
    topic = LEGACY_TOPICS.get(topic, topic)
    order_id = str(payload["order_id"]) if payload.get("order_id") is not None else None
    fulfillment_id = payload.get("reference_id") or None
    if topic == "order.shipped":
        shipment = shipment_from(payload, fc_to_location, mappings)
        return [ShipmentConfirmed(shipment=shipment, external_order_id=order_id, fulfillment_id=fulfillment_id)]
    if topic == "order.shipment.delivered":
        return [TrackingUpdated(event=mappings.build("tracking", dict(payload), TrackingEvent))]
    reasons = {
        "order.shipment.exception": "ShipBob shipment exception",
        "order.shipment.on_hold": "ShipBob shipment on hold",
        "order.shipment.cancelled": "ShipBob cancelled the shipment",
    }
    if topic in reasons:
        detail = _details(payload)
        reason = f"{reasons[topic]} (shipment {payload.get('id')})" + (f": {detail}" if detail else "")
        return [FulfillmentException(external_order_id=order_id, fulfillment_id=fulfillment_id, reason=reason)]
    return [Ignored(reason=f"ShipBob topic {topic!r} is not used by the hub")]
