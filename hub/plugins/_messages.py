"""What a connector's parse step hands to the hub: canonical objects with their intent."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.model import Order, Refund, Return, Shipment, TrackingEvent


class InboundEvent(BaseModel):
    """Identity of one inbound delivery, read from headers/body *before* mapping.

    ``event_id`` is the dedup key (unique per connection); ``object_key`` names the entity
    (``order:450789469``) so that events about one entity are applied in order;
    ``source_ts`` is the source's own time of the change (newest wins).
    """

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    topic: str | None = None
    object_key: str | None = None
    source_ts: datetime | None = None


class _Msg(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)


class OrderUpserted(_Msg):
    """An order was created or updated at the source."""

    kind: Literal["order"] = "order"
    order: Order


class OrderCancelled(_Msg):
    kind: Literal["order_cancelled"] = "order_cancelled"
    external_id: str
    reason: str | None = None
    cancelled_at: datetime | None = None
    order: Order | None = Field(default=None, description="the full order, when the source sends it")


class ShipmentConfirmed(_Msg):
    """A location/3PL shipped (part of) an order. ``external_order_id`` is the id the 3PL knows."""

    kind: Literal["shipment"] = "shipment"
    shipment: Shipment
    external_order_id: str | None = None
    fulfillment_id: str | None = None


class TrackingUpdated(_Msg):
    kind: Literal["tracking"] = "tracking"
    event: TrackingEvent


class RefundCreated(_Msg):
    kind: Literal["refund"] = "refund"
    external_order_id: str
    refund: Refund


class ReturnRequested(_Msg):
    kind: Literal["return"] = "return"
    external_order_id: str
    ret: Return


class InventoryCounted(_Msg):
    """Absolute on-hand counts from a WMS/3PL (location is the hub location id)."""

    kind: Literal["inventory"] = "inventory"
    counts: list[tuple[str, str, int]] = Field(description="(sku, location, on_hand)")


class FulfillmentException(_Msg):
    """The 3PL reports a problem with a fulfilment (cannot cancel after pick, lost, damaged...)."""

    kind: Literal["fulfillment_exception"] = "fulfillment_exception"
    external_order_id: str | None = None
    fulfillment_id: str | None = None
    reason: str


class Ignored(_Msg):
    """A delivery that is authentic but carries nothing for the hub (a topic it does not use)."""

    kind: Literal["ignored"] = "ignored"
    reason: str


Message = (
    OrderUpserted
    | OrderCancelled
    | ShipmentConfirmed
    | TrackingUpdated
    | RefundCreated
    | ReturnRequested
    | InventoryCounted
    | FulfillmentException
    | Ignored
)
