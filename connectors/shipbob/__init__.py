"""ShipBob connector (3PL / WMS)."""

from connectors.shipbob._connector import ShipBobConnector, ShipBobSettings

__all__ = ["ShipBobConnector", "ShipBobSettings"]
