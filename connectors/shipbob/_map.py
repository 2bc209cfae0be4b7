"""ShipBob payloads -> canonical objects: pure functions, no I/O (ready to move into ``mappings/shipbob/``).

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

from hub.errors import MappingError
from hub.model import Shipment, ShipmentLine, TrackingEvent, TrackingStatus, new_id
from hub.plugins import FulfillmentException, Ignored, Message, ShipmentConfirmed, TrackingUpdated

SOURCE = "ShipBob ShipmentViewModel"

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


def _err(field: str, value: Any, message: str) -> MappingError:
    return MappingError(
        f"ShipBob shipment: {message}",
        errors=[{"file": SOURCE, "line": None, "field": field, "value": value, "message": message}],
    )


def shipment_lines(payload: Mapping[str, Any]) -> list[ShipmentLine]:
    """One line per product: the SKU is the product ``reference_id`` (we create orders by reference id),
    the quantity the sum of its ``inventory_items`` quantities."""
    lines: list[ShipmentLine] = []
    for i, p in enumerate(payload.get("products") or []):
        sku = p.get("reference_id") or p.get("sku")
        if not sku:
            raise _err(f"products[{i}].reference_id", None, "a shipped product has neither reference_id nor sku")
        items = p.get("inventory_items") or []
        qty = sum(int(it.get("quantity") or 0) for it in items) if items else int(p.get("quantity") or 0)
        if qty > 0:
            lines.append(ShipmentLine(sku=str(sku), quantity=qty))
    return lines


def hub_location(payload: Mapping[str, Any], fc_to_location: Mapping[int, str]) -> str | None:
    loc = payload.get("location") or {}
    fc = loc.get("id")
    return fc_to_location.get(int(fc)) if fc is not None else None


def shipment_from(payload: Mapping[str, Any], fc_to_location: Mapping[int, str]) -> Shipment:
    """The canonical shipment of one ShipBob shipment (``order.shipped``)."""
    tracking = payload.get("tracking") or {}
    shipped_at = (
        parse_time(tracking.get("shipping_date"))
        or parse_time(payload.get("actual_fulfillment_date"))
        or parse_time(payload.get("last_update_at"))
    )
    if shipped_at is None:
        raise _err("tracking.shipping_date", None, "no shipping_date, actual_fulfillment_date or last_update_at")
    return Shipment(
        id=new_id("shp"),
        fulfillment_id=payload.get("reference_id") or None,
        external_order_id=str(payload["order_id"]) if payload.get("order_id") is not None else None,
        location=hub_location(payload, fc_to_location),
        carrier=tracking.get("carrier") or None,
        service=tracking.get("carrier_service") or payload.get("ship_option") or None,
        tracking_number=tracking.get("tracking_number") or None,
        tracking_url=tracking.get("tracking_url") or None,
        lines=shipment_lines(payload),
        shipped_at=shipped_at,
        delivered_at=parse_time(payload.get("delivery_date")),
    )


def _details(payload: Mapping[str, Any]) -> str:
    parts = [
        ": ".join(x for x in (d.get("name"), d.get("description")) if x) for d in payload.get("status_details") or []
    ]
    return "; ".join(p for p in parts if p)


def messages_from(topic: str, payload: Mapping[str, Any], fc_to_location: Mapping[int, str]) -> list[Message]:
    """The hub messages of one ShipBob webhook body, by topic."""
    topic = LEGACY_TOPICS.get(topic, topic)
    order_id = str(payload["order_id"]) if payload.get("order_id") is not None else None
    fulfillment_id = payload.get("reference_id") or None
    if topic == "order.shipped":
        shipment = shipment_from(payload, fc_to_location)
        return [ShipmentConfirmed(shipment=shipment, external_order_id=order_id, fulfillment_id=fulfillment_id)]
    if topic == "order.shipment.delivered":
        tracking = payload.get("tracking") or {}
        number = tracking.get("tracking_number")
        if not number:
            raise _err("tracking.tracking_number", None, "a delivered shipment without a tracking number")
        at = parse_time(payload.get("delivery_date")) or parse_time(payload.get("last_update_at"))
        if at is None:
            raise _err("delivery_date", None, "a delivered shipment without delivery_date")
        event = TrackingEvent(
            tracking_number=str(number),
            carrier=tracking.get("carrier") or None,
            status=TrackingStatus.DELIVERED,
            message="Delivered",
            occurred_at=at,
            external_id=str(payload.get("id")) if payload.get("id") is not None else None,
        )
        return [TrackingUpdated(event=event)]
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
