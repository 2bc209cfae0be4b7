"""Small builders for allocation tests: orders whose totals add up, locations, stock levels.

Addresses and coordinates are real places (city-centre coordinates, rounded), so distances are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hub.model import Address, InventoryLevel, Location, Order, new_id

BERLIN = {"latitude": 52.52, "longitude": 13.405}
HAMBURG = {"latitude": 53.551, "longitude": 9.994}
MUNICH = {"latitude": 48.137, "longitude": 11.575}
POTSDAM = {"latitude": 52.39, "longitude": 13.064}
PARIS = {"latitude": 48.857, "longitude": 2.352}


def order(
    lines: Sequence[tuple[str, int]],
    *,
    unit_price: str = "10.00",
    currency: str = "EUR",
    ship_to: dict[str, Any] | None = None,
    **over: Any,
) -> Order:
    """An order of ``(sku, quantity)`` lines shipping to Berlin unless told otherwise."""
    price = Decimal(unit_price)
    subtotal = sum((price * q for _, q in lines), Decimal(0))
    money = lambda v: {"amount": str(v), "currency": currency}  # noqa: E731
    doc: dict[str, Any] = {
        "id": new_id("ord"),
        "connection": "shop",
        "external_id": "1001",
        "placed_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        "currency": currency,
        "shipping_address": ship_to
        if ship_to is not None
        else {"line1": "Alexanderplatz 1", "city": "Berlin", "postal_code": "10178", "country": "DE", **BERLIN},
        "lines": [
            {"line_no": i, "sku": sku, "quantity": q, "unit_price": money(price)}
            for i, (sku, q) in enumerate(lines, start=1)
        ],
        "totals": {
            "subtotal": money(subtotal),
            "shipping": money(0),
            "tax": money(0),
            "discount": money(0),
            "total": money(subtotal),
        },
    }
    doc.update(over)
    return Order.model_validate(doc)


def loc(id: str, *, country: str = "DE", coords: dict[str, float] | None = None, **over: Any) -> Location:
    return Location.model_validate({"id": id, "name": id, "country": country, **(coords or {}), **over})


def levels(table: dict[tuple[str, str], int]) -> list[InventoryLevel]:
    """``{(sku, location): available}`` as inventory levels (on_hand = available, nothing reserved)."""
    return [InventoryLevel(sku=s, location=lc, on_hand=q, reserved=0) for (s, lc), q in table.items()]


def address(**over: Any) -> Address:
    return Address.model_validate({"line1": "x", "city": "y", "country": "DE", "postal_code": "10178", **over})
