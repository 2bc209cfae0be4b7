"""Locations and inventory."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field, computed_field

from hub.model._common import CountryCode, Model


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    THREE_PL = "3pl"


class Location(Model):
    """A place that holds stock: a warehouse, a store or a 3PL's fulfilment center."""

    id: str = Field(min_length=1)
    name: str
    kind: LocationKind = LocationKind.WAREHOUSE
    country: CountryCode
    postal_code: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    priority: int = Field(default=100, description="lower is preferred")
    pickup: bool = False
    ships_to: list[CountryCode] = Field(default_factory=list, description="empty: ships everywhere")
    fulfilled_by: str | None = Field(default=None, description="connection id of the WMS/3PL")
    daily_capacity: int | None = Field(default=None, ge=0)
    shipment_cost: str | None = Field(default=None, description="cost per shipment, decimal string")
    cutoff_hour: int = Field(default=15, ge=0, le=23)
    handling_days: int = Field(default=1, ge=0)
    channels: list[str] = Field(default_factory=list, description="connections it serves; empty: all")


class InventoryLevel(Model):
    sku: str
    location: str
    on_hand: int = Field(ge=0)
    reserved: int = Field(ge=0)
    safety_stock: int = Field(default=0, ge=0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        """on_hand - reserved - safety_stock (never negative)."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)


class LedgerEntry(Model):
    """One append-only row of the inventory ledger."""

    id: int | None = None
    sku: str
    location: str
    delta_on_hand: int = 0
    delta_reserved: int = 0
    cause: str = Field(description="reservation, release, shipment, receipt, adjustment, return, ...")
    ref: str | None = Field(default=None, description="order, return or adjustment id")
    reason: str | None = None
    at: datetime
