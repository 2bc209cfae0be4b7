"""Order totals: the Decimal sums equal the Money arithmetic they replace, problems are reported
per field, and an order is checked once, not again each time it is put into a message."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

import hub.model._order as order_module
from hub.errors import CurrencyMismatch
from hub.model import Money, Order, OrderLine, ShippingLine, Totals, new_id, totals_problems
from hub.plugins import OrderCancelled, OrderUpserted

NAMES = ("subtotal", "shipping", "tax", "discount", "total")


def _m(amount: Any, currency: str) -> dict[str, Any]:
    return {"amount": str(amount), "currency": currency}


def _parts(order: Order) -> dict[str, Any]:
    """An order's lines and settings, to build others with any totals."""
    return {"currency": order.currency, "lines": order.lines, "shipping_lines": order.shipping_lines}


def _bare(currency: str, lines: list[Any], shipping: list[Any], taxes_included: bool) -> Order:
    """An order with zero totals that is not checked (model_construct), to compute its sums."""
    zero = Money.zero(currency)
    return Order.model_construct(
        currency=currency,
        lines=[OrderLine.model_validate(ln) for ln in lines],
        shipping_lines=[ShippingLine.model_validate(s) for s in shipping],
        taxes_included=taxes_included,
        totals=Totals(**dict.fromkeys(NAMES, zero)),
    )


def _random_order(rng: random.Random, currency: str) -> Order:
    places = {"JPY": 0, "KWD": 3}.get(currency, 2)

    def amount(top: int) -> str:
        return str(Decimal(rng.randint(0, top * 10**places)).scaleb(-places))

    def taxes() -> list[dict[str, Any]]:
        return [{"title": "VAT", "rate": "0.2", "amount": _m(amount(20), currency)} for _ in range(rng.randint(0, 2))]

    lines = [
        {
            "line_no": i + 1,
            "sku": f"SKU-{i}",
            "quantity": rng.randint(1, 7),
            "unit_price": _m(amount(500), currency),
            "discount": _m(amount(30), currency) if rng.random() < 0.5 else None,
            "tax_lines": taxes(),
        }
        for i in range(rng.randint(1, 6))
    ]
    shipping = [
        {
            "price": _m(amount(15), currency),
            "discount": _m(amount(5), currency) if rng.random() < 0.3 else None,
            "tax_lines": taxes(),
        }
        for _ in range(rng.randint(0, 2))
    ]
    return _bare(currency, lines, shipping, rng.random() < 0.5)


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_decimal_sums_equal_money_arithmetic(currency: str) -> None:
    rng = random.Random(currency)
    for _ in range(200):
        order = _random_order(rng, currency)
        fast = order_module._decimal_sums(order, currency)
        assert fast is not None
        slow = order_module._money_sums(order, currency)
        assert fast == slow
        assert [str(x) for x in fast] == [str(x) for x in slow]  # same digits, as printed in messages


def test_an_order_with_the_sums_as_totals_is_accepted_and_each_wrong_total_is_named() -> None:
    order = _random_order(random.Random(7), "EUR")
    sums = order_module._money_sums(order, "EUR")
    totals = {n: _m(s, "EUR") for n, s in zip(NAMES, sums, strict=True)}
    doc = {
        "id": new_id("ord"),
        "connection": "shop",
        "external_id": "1",
        "placed_at": datetime(2026, 1, 1, tzinfo=UTC),
        "currency": "EUR",
        "lines": [ln.model_dump() for ln in order.lines],
        "shipping_lines": [s.model_dump() for s in order.shipping_lines],
        "taxes_included": order.taxes_included,
    }
    assert Order.model_validate({**doc, "totals": totals}).totals.total.amount == sums[4]
    wrong = {n: _m(Decimal(s) + 1, "EUR") for n, s in zip(NAMES, sums, strict=True)}
    with pytest.raises(ValidationError) as info:
        Order.model_validate({**doc, "totals": wrong})
    message = info.value.errors()[0]["msg"].removeprefix("Value error, ")
    assert message.split("; ") == [
        f"totals.{n} is {Decimal(s) + 1} but the lines add up to {s} EUR" for n, s in zip(NAMES, sums, strict=True)
    ]


def test_sums_of_nothing_are_printed_in_minor_units_never_negative_zero() -> None:
    lines = [{"line_no": 1, "sku": "A", "quantity": 1, "unit_price": _m("5.00", "EUR"), "discount": _m("5", "EUR")}]
    order = _bare("EUR", lines, [], False)
    order = order.model_copy(update={"totals": Totals(**dict.fromkeys(NAMES, Money.of("1", "EUR")))})
    assert totals_problems(order) == [
        "totals.subtotal is 1.00 but the lines add up to 0.00 EUR",
        "totals.shipping is 1.00 but the lines add up to 0.00 EUR",
        "totals.tax is 1.00 but the lines add up to 0.00 EUR",
        "totals.discount is 1.00 but the lines add up to 5.00 EUR",
        "totals.total is 1.00 but the lines add up to 0.00 EUR",
    ]
    jpy = _bare("JPY", [{**lines[0], "unit_price": _m(5, "JPY"), "discount": None}], [], False)
    assert totals_problems(jpy)[0] == "totals.subtotal is 0 but the lines add up to 5 JPY"


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("line discount", {"lines": 0, "discount": _m("1", "USD")}),
        ("line tax", {"lines": 0, "tax_lines": [{"title": "T", "rate": "0.1", "amount": _m("1", "USD")}]}),
        ("shipping price", {"shipping_lines": 0, "price": _m("1", "USD")}),
        ("shipping discount", {"shipping_lines": 0, "discount": _m("1", "USD")}),
        ("shipping tax", {"shipping_lines": 0, "tax_lines": [{"title": "T", "rate": "0", "amount": _m("1", "USD")}]}),
    ],
)
def test_an_amount_in_another_currency_is_still_refused_naming_both(where: str, change: dict[str, Any]) -> None:
    lines = [{"line_no": 1, "sku": "A", "quantity": 1, "unit_price": _m("5.00", "EUR")}]
    shipping = [{"price": _m("1.00", "EUR")}]
    key = "lines" if "lines" in change else "shipping_lines"
    target = lines if key == "lines" else shipping
    target[0] = {**target[0], **{k: v for k, v in change.items() if k != key}}
    order = _bare("EUR", lines, shipping, False)
    assert order_module._decimal_sums(order, "EUR") is None
    with pytest.raises(CurrencyMismatch, match="cannot combine EUR and USD"):
        totals_problems(order)


def _valid_order() -> Order:
    lines = [{"line_no": 1, "sku": "A", "quantity": 2, "unit_price": _m("10.00", "EUR")}]
    totals = {"subtotal": "20.00", "shipping": "0.00", "tax": "0.00", "discount": "0.00", "total": "20.00"}
    return Order.model_validate(
        {
            "id": new_id("ord"),
            "connection": "shop",
            "external_id": "1",
            "placed_at": datetime(2026, 1, 1, tzinfo=UTC),
            "currency": "EUR",
            "lines": lines,
            "totals": {k: _m(v, "EUR") for k, v in totals.items()},
        }
    )


def test_an_order_is_checked_once_not_again_in_each_message(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Order] = []
    real = order_module.totals_problems

    def counting(order: Order) -> list[str]:
        calls.append(order)
        return real(order)

    monkeypatch.setattr(order_module, "totals_problems", counting)
    order = _valid_order()
    assert len(calls) == 1
    msg = OrderUpserted(order=order)
    OrderCancelled(external_id="1", order=order)
    assert msg.order is order
    assert len(calls) == 1


def test_a_copy_with_totals_that_do_not_add_up_is_still_refused_in_a_message() -> None:
    order = _valid_order()
    bad = order.model_copy(update={"totals": order.totals.model_copy(update={"total": Money.of("99", "EUR")})})
    with pytest.raises(ValidationError, match=r"totals.total is 99.00 but the lines add up to 20.00 EUR"):
        OrderUpserted(order=bad)
    assert OrderUpserted(order=order.model_copy()).order.totals == order.totals


def test_the_check_mark_is_not_part_of_the_order() -> None:
    order = _valid_order()
    again = Order.model_validate(order.to_json())
    assert again == order
    assert again.model_dump() == order.model_dump()
    assert "_totals_checked" not in order.model_dump() and "_totals_checked" not in order.__dict__
