"""Partner events: the envelope and the type of each event's data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from hub.model._common import Model
from hub.model._fulfillment import FulfillmentRequest, Shipment
from hub.model._order import Order
from hub.model._returns import Refund, Return


class InventoryChanged(Model):
    sku: str
    location: str
    on_hand: int
    reserved: int
    safety_stock: int = 0
    available: int
    cause: str | None = None


class SyncFailed(Model):
    failure_id: str | None = None
    connection: str | None = None
    operation: str
    object_id: str | None = None
    error: str
    endpoint_id: str | None = Field(default=None, description="set when a partner endpoint was disabled")


#: Every partner event type and the model of its ``data``.
EVENT_TYPES: dict[str, type[BaseModel]] = {
    "order.created": Order,
    "order.updated": Order,
    "order.on_hold": Order,
    "order.allocated": Order,
    "order.backordered": Order,
    "order.cancelled": Order,
    "fulfillment.requested": FulfillmentRequest,
    "shipment.shipped": Shipment,
    "shipment.delivered": Shipment,
    "inventory.changed": InventoryChanged,
    "return.requested": Return,
    "return.approved": Return,
    "return.received": Return,
    "refund.issued": Refund,
    "sync.failed": SyncFailed,
}


class Event(Model):
    """A partner event. On the wire: ``{"type", "timestamp", "data"}`` with ``id`` as webhook-id."""

    id: str = Field(pattern=r"^evt_[0-9A-Z]{26}$")
    type: str
    timestamp: datetime
    object_id: str | None = Field(default=None, description="the order/sku/return the event is about")
    connection: str | None = None
    data: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        """The body partners receive."""
        return {"type": self.type, "timestamp": self.timestamp.isoformat(), "data": self.data}
