"""Fulfilment requests, shipments and tracking."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from hub.model._common import Address, Model
from hub.model._money import Money


class FulfillmentLine(Model):
    line_no: int
    sku: str
    quantity: int = Field(gt=0)


class FulfillmentStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    FAILED = "failed"


class FulfillmentRequest(Model):
    """What the hub asks a location (through its WMS/3PL connection) to ship."""

    id: str = Field(pattern=r"^ful_[0-9A-Z]{26}$")
    order_id: str
    location: str
    connection: str | None = None
    external_id: str | None = None
    lines: list[FulfillmentLine] = Field(min_length=1)
    ship_to: Address | None = None
    status: FulfillmentStatus = FulfillmentStatus.PENDING
    created_at: datetime


class TrackingStatus(StrEnum):
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    RETURN_TO_SENDER = "return_to_sender"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class TrackingEvent(Model):
    tracking_number: str
    carrier: str | None = None
    status: TrackingStatus
    message: str | None = None
    occurred_at: datetime
    location: str | None = None
    external_id: str | None = None


class ShipmentLine(Model):
    sku: str
    quantity: int = Field(gt=0)
    line_no: int | None = None


class Shipment(Model):
    """Goods that left a location, with their tracking."""

    id: str = Field(pattern=r"^shp_[0-9A-Z]{26}$")
    order_id: str | None = None
    fulfillment_id: str | None = None
    external_order_id: str | None = Field(default=None, description="the order's id at the source/3PL")
    location: str | None = None
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    label_url: str | None = None
    cost: Money | None = None
    lines: list[ShipmentLine] = Field(default_factory=list)
    shipped_at: datetime
    delivered_at: datetime | None = None
    events: list[TrackingEvent] = Field(default_factory=list)
