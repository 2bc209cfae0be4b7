"""Order builder for the returns tests: totals are computed from the lines, as a channel reports them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from hub.model import Money, Order, new_id

# (sku, quantity, unit_price, discount or None, tax or None, tax rate)
LineSpec = tuple[str, int, str, str | None, str | None, str]


def make_order(
    currency: str,
    lines: Sequence[LineSpec],
    *,
    taxes_included: bool,
    shipping: tuple[str, str | None] | None = None,
    tags: Sequence[str] = (),
    email: str = "ann@example.com",
) -> Order:
    """A canonical order whose totals add up (subtotal, shipping, tax, discount, total)."""
    cur = currency

    def m(v: str | Decimal) -> dict[str, str]:
        return Money.of(v, cur).to_json()

    doc_lines: list[dict[str, Any]] = []
    subtotal = tax = discount = Money.zero(cur)
    for i, (sku, qty, price, disc, line_tax, rate) in enumerate(lines, start=1):
        ln: dict[str, Any] = {"line_no": i, "sku": sku, "quantity": qty, "unit_price": m(price)}
        net = Money.of(price, cur) * qty
        if disc is not None:
            ln["discount"] = m(disc)
            net = net - Money.of(disc, cur)
            discount = discount + Money.of(disc, cur)
        if line_tax is not None:
            ln["tax_lines"] = [{"title": "Tax", "rate": rate, "amount": m(line_tax)}]
            tax = tax + Money.of(line_tax, cur)
        subtotal = subtotal + net
        doc_lines.append(ln)
    ship_total = Money.zero(cur)
    shipping_lines: list[dict[str, Any]] = []
    if shipping is not None:
        price, ship_tax = shipping
        sl: dict[str, Any] = {"title": "Standard", "price": m(price)}
        if ship_tax is not None:
            sl["tax_lines"] = [{"title": "Tax", "rate": "0.2", "amount": m(ship_tax)}]
            tax = tax + Money.of(ship_tax, cur)
        ship_total = Money.of(price, cur)
        shipping_lines.append(sl)
    total = subtotal + ship_total + (Money.zero(cur) if taxes_included else tax)
    return Order.model_validate(
        {
            "id": new_id("ord"),
            "connection": "shop",
            "external_id": "1001",
            "placed_at": datetime(2026, 3, 1, tzinfo=UTC),
            "currency": cur,
            "customer": {"email": email},
            "lines": doc_lines,
            "shipping_lines": shipping_lines,
            "taxes_included": taxes_included,
            "tags": list(tags),
            "totals": {
                "subtotal": subtotal.to_json(),
                "shipping": ship_total.to_json(),
                "tax": tax.to_json(),
                "discount": discount.to_json(),
                "total": total.to_json(),
            },
        }
    )


@pytest.fixture
def order_factory() -> Callable[..., Order]:
    return make_order
