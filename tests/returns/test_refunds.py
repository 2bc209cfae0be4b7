"""Refund arithmetic: worked examples with the exact amounts, and the sum-to-paid property."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import ReturnsConfig
from hub.model import Condition, Money, Order, PaymentStatus, Refund, ReturnLine
from hub.returns import (
    Dispute,
    FxConversion,
    LineToRefund,
    RefundExceedsPaid,
    calculate_refund,
    money_trail,
    refundable_quantities,
)

NOW = datetime(2026, 3, 20, tzinfo=UTC)
Factory = Callable[..., Order]


def _refund(order: Order, calc_lines: list[LineToRefund], prev: list[Refund], **kw: object) -> Refund:
    calc = calculate_refund(order, calc_lines, previous_refunds=prev, **kw)  # type: ignore[arg-type]
    return calc.to_refund(order_id=order.id, created_at=NOW)


def eur_vat_included(f: Factory) -> Order:
    # 20 % VAT included. Order-level code WELCOME (10.00 EUR) spread over the lines by price:
    #   A: 3 x 19.99 = 59.97, discount 5.71 -> net 54.26, VAT 54.26/6 = 9.04
    #   B: 1 x 45.00,         discount 4.29 -> net 40.71, VAT 40.71/6 = 6.785 -> 6.79
    #   shipping 4.90 (VAT 0.82).  total = 54.26 + 40.71 + 4.90 = 99.87
    return f(
        "EUR",
        [("A", 3, "19.99", "5.71", "9.04", "0.2"), ("B", 1, "45.00", "4.29", "6.79", "0.2")],
        taxes_included=True,
        shipping=("4.90", "0.82"),
    )


def test_eur_vat_included_partial_then_rest_sums_to_paid(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    assert order.totals.total == Money.of("99.87", "EUR")
    # 1 unit of A. Discount 5.71 over 3 units: 571/3 = 190.33 -> [1.91, 1.90, 1.90] (remainder to the first);
    # VAT 9.04 over 3 units: 904/3 -> [3.02, 3.01, 3.01]. Unit 1 = 19.99 - 1.91 = 18.08, of which VAT 3.02.
    first = calculate_refund(order, [LineToRefund(1, 1)], include_shipping=False)
    assert first.amount == Money.of("18.08", "EUR")
    assert first.tax == Money.of("3.02", "EUR")
    assert first.lines[0].amount == Money.of("18.08", "EUR")
    r1 = first.to_refund(order_id=order.id, created_at=NOW)
    # The rest: A's last 2 units take what is left of A: 54.26 - 18.08 = 36.18 (VAT 9.04 - 3.02 = 6.02);
    # B 40.71 (VAT 6.79); shipping 4.90 (VAT 0.82). 36.18 + 40.71 + 4.90 = 81.79; VAT 6.02 + 6.79 + 0.82 = 13.63
    rest = calculate_refund(
        order, [LineToRefund(1, 2), LineToRefund(2, 1)], previous_refunds=[r1], include_shipping=True
    )
    assert [ln.amount for ln in rest.lines] == [Money.of("36.18", "EUR"), Money.of("40.71", "EUR")]
    assert rest.shipping == Money.of("4.90", "EUR")
    assert rest.tax == Money.of("13.63", "EUR")
    assert rest.amount == Money.of("81.79", "EUR")
    # 18.08 + 81.79 = 99.87 = paid
    assert first.amount + rest.amount == order.totals.total


def test_usd_sales_tax_excluded_partial_return_then_the_rest(order_factory: Factory) -> None:
    # Sales tax 8.875 % excluded (added on top).
    #   A: 2 x 25.00 = 50.00, tax 4.4375 -> 4.44
    #   B: 3 x 9.99 = 29.97, discount 3.00 -> net 26.97, tax 2.3936 -> 2.39
    #   shipping 7.50 untaxed. total = 50.00 + 26.97 + 7.50 + 4.44 + 2.39 = 91.30
    order = order_factory(
        "USD",
        [("A", 2, "25.00", None, "4.44", "0.08875"), ("B", 3, "9.99", "3.00", "2.39", "0.08875")],
        taxes_included=False,
        shipping=("7.50", None),
    )
    assert order.totals.total == Money.of("91.30", "USD")
    # 1 unit of B: discount 3.00/3 = 1.00; tax 239/3 = 79.67 -> [0.80, 0.80, 0.79].
    # 9.99 - 1.00 + 0.80 = 9.79 (tax 0.80); shipping not refunded (config.refund_shipping is false).
    first = calculate_refund(order, [LineToRefund(2, 1, "changed_mind")], config=ReturnsConfig())
    assert first.amount == Money.of("9.79", "USD")
    assert first.tax == Money.of("0.80", "USD")
    assert first.shipping == Money.zero("USD")
    r1 = first.to_refund(order_id=order.id, created_at=NOW)
    assert refundable_quantities(order, [r1]) == {1: 2, 2: 2}
    # The rest: A 50.00 + 4.44 = 54.44; B what is left: 26.97 + 2.39 - 9.79 = 19.57 (tax 2.39 - 0.80 = 1.59);
    # shipping 7.50. 54.44 + 19.57 + 7.50 = 81.51; 9.79 + 81.51 = 91.30
    rest = calculate_refund(
        order, [LineToRefund(1, 2), LineToRefund(2, 2)], previous_refunds=[r1], include_shipping=True
    )
    assert [ln.amount for ln in rest.lines] == [Money.of("54.44", "USD"), Money.of("19.57", "USD")]
    assert rest.tax == Money.of("6.03", "USD")  # 4.44 + 1.59
    assert rest.amount == Money.of("81.51", "USD")
    assert first.amount + rest.amount == order.totals.total


def test_jpy_split_three_ways_sums_exactly_to_paid(order_factory: Factory) -> None:
    # JPY has 0 decimals. 3 x 999 = 2997, discount 100 -> net 2897; 10 % tax included: 2897/11 = 263.4 -> 263.
    # Discount over units: 100/3 -> [34, 33, 33]; tax: 263/3 -> [88, 88, 87].
    order = order_factory("JPY", [("TEA", 3, "999", "100", "263", "0.1")], taxes_included=True)
    prev: list[Refund] = []
    amounts = []
    for _ in range(3):
        r = _refund(order, [LineToRefund(1, 1)], prev)
        prev.append(r)
        amounts.append(r.amount)
    # 999 - 34 = 965; 999 - 33 = 966; last takes what is left: 2897 - 965 - 966 = 966
    assert amounts == [Money.of("965", "JPY"), Money.of("966", "JPY"), Money.of("966", "JPY")]
    assert [r.tax for r in prev] == [Money.of("88", "JPY"), Money.of("88", "JPY"), Money.of("87", "JPY")]
    assert Money.sum(amounts, "JPY") == order.totals.total == Money.of("2897", "JPY")


def test_kwd_three_decimals_with_restocking_fee(order_factory: Factory) -> None:
    # KWD has 3 decimals, no tax. A: 2 x 12.345 = 24.690, discount 1.001 -> 23.689; B: 3.250; shipping 1.500.
    # total = 23.689 + 3.250 + 1.500 = 28.439
    order = order_factory(
        "KWD",
        [("A", 2, "12.345", "1.001", None, "0"), ("B", 1, "3.250", None, None, "0")],
        taxes_included=False,
        shipping=("1.500", None),
    )
    cfg = ReturnsConfig(restocking_fee_percent={"changed_mind": Decimal("10")})
    # 1 unit of A: discount 1001/2 = 500.5 -> [0.501, 0.500]; 12.345 - 0.501 = 11.844;
    # fee 10 % of 11.844 = 1.1844 -> 1.184; refund 11.844 - 1.184 = 10.660
    first = calculate_refund(order, [LineToRefund(1, 1, "changed_mind")], config=cfg)
    assert first.merchandise == Money.of("11.844", "KWD")
    assert first.restocking_fee == Money.of("1.184", "KWD")
    assert first.amount == Money.of("10.660", "KWD")
    r1 = first.to_refund(order_id=order.id, created_at=NOW)
    # rest, reason defective (no fee): A 23.689 - 11.844 = 11.845; B 3.250; shipping 1.500 -> 16.595
    rest = calculate_refund(
        order,
        [LineToRefund(1, 1, "defective"), LineToRefund(2, 1, "defective")],
        previous_refunds=[r1],
        config=cfg,
        include_shipping=True,
    )
    assert rest.amount == Money.of("16.595", "KWD")
    r2 = rest.to_refund(order_id=order.id, created_at=NOW)
    # paid 28.439 = refunded 10.660 + 16.595 (27.255) + the fee kept 1.184
    trail = money_trail(order, [r1, r2])
    assert trail.refunded == Money.of("27.255", "KWD")
    assert trail.outstanding == Money.of("1.184", "KWD") == first.restocking_fee


def test_waived_restocking_fee_and_customer_paid_return_label(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    cfg = ReturnsConfig(restocking_fee_percent={"changed_mind": Decimal("15")}, return_shipping_paid_by="customer")
    line = [LineToRefund(2, 1, "changed_mind")]
    # fee 15 % of 40.71 = 6.1065 -> 6.11; label 5.95: 40.71 - 6.11 - 5.95 = 28.65
    charged = calculate_refund(order, line, config=cfg, return_shipping_cost=Money.of("5.95", "EUR"))
    assert (charged.restocking_fee, charged.return_shipping_fee) == (Money.of("6.11", "EUR"), Money.of("5.95", "EUR"))
    assert charged.amount == Money.of("28.65", "EUR")
    waived = calculate_refund(order, line, config=cfg, restocking_fee_reasons=())
    assert waived.restocking_fee.is_zero() and waived.amount == Money.of("40.71", "EUR")


def test_fx_conversion_records_rate_and_converted_amount(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    # 18.08 EUR x 1.0834 = 19.587872 -> 19.59 USD
    calc = calculate_refund(order, [LineToRefund(1, 1)], fx=FxConversion("USD", Decimal("1.0834")))
    assert calc.amount == Money.of("18.08", "EUR")
    assert calc.booked_amount == Money.of("19.59", "USD")
    refund = calc.to_refund(order_id=order.id, created_at=NOW, return_id=None)
    assert refund.fx_rate == Decimal("1.0834") and refund.amount.currency == "EUR"


def test_refund_of_more_units_than_left_is_refused_naming_the_line(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    r1 = _refund(order, [LineToRefund(1, 2)], [])
    with pytest.raises(RefundExceedsPaid, match=r"line 1 \(A\): cannot refund 2 unit\(s\); 1 of 3 are left"):
        calculate_refund(order, [LineToRefund(1, 2)], previous_refunds=[r1])


def test_received_return_lines_refund_what_arrived(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    lines = [
        ReturnLine(sku="A", quantity=2, line_no=1, condition=Condition.NEW, received_quantity=1),
        ReturnLine(sku="B", quantity=1, condition=Condition.MISSING, received_quantity=0),
    ]
    calc = calculate_refund(order, lines)
    assert [(ln.line_no, ln.quantity) for ln in calc.lines] == [(1, 1)]
    assert calc.amount == Money.of("18.08", "EUR")


def test_shipping_is_refunded_once(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    r1 = _refund(order, [LineToRefund(2, 1)], [], include_shipping=True)
    assert r1.shipping == Money.of("4.90", "EUR")
    again = calculate_refund(order, [LineToRefund(1, 1)], previous_refunds=[r1], include_shipping=True)
    assert again.shipping.is_zero()


def test_money_trail_counts_open_and_lost_disputes_not_won_ones(order_factory: Factory) -> None:
    order = eur_vat_included(order_factory)
    r1 = _refund(order, [LineToRefund(1, 1)], [])
    disputes = [
        Dispute(Money.of("45.00", "EUR"), "chargeback", "lost"),
        Dispute(Money.of("10.00", "EUR"), "dispute", "won"),
    ]
    trail = money_trail(order, [r1], disputes)
    # 99.87 paid - 18.08 refunded - 45.00 lost chargeback = 36.79
    assert (trail.paid, trail.refunded, trail.disputed) == (
        Money.of("99.87", "EUR"),
        Money.of("18.08", "EUR"),
        Money.of("45.00", "EUR"),
    )
    assert trail.outstanding == Money.of("36.79", "EUR") and not trail.over_refunded
    pending = order.model_copy(update={"payment_status": PaymentStatus.PENDING})
    assert money_trail(pending, []).paid.is_zero()
    assert money_trail(order, [r1], [Dispute(Money.of("99.87", "EUR"))]).over_refunded


# -- property: refunding everything, in any partial steps, gives back exactly what was paid ----------

CURRENCIES = {"EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}


@st.composite
def orders_and_steps(
    draw: st.DrawFn,
) -> tuple[
    str,
    list[tuple[str, int, str, str | None, str | None, str]],
    bool,
    tuple[str, str | None] | None,
    list[list[tuple[int, int]]],
]:
    cur = draw(st.sampled_from(sorted(CURRENCIES)))
    exp = CURRENCIES[cur]

    def amt(units: int) -> str:
        return str(Decimal(units).scaleb(-exp))

    n = draw(st.integers(1, 4))
    lines = []
    for i in range(n):
        qty = draw(st.integers(1, 7))
        price = draw(st.integers(0, 200_000))
        disc = draw(st.integers(0, price * qty))
        tax = draw(st.integers(0, max(0, (price * qty - disc) // 3)))
        rate = draw(st.sampled_from(["0", "0.05", "0.08875", "0.1", "0.2"]))
        lines.append((f"SKU{i}", qty, amt(price), amt(disc) if disc else None, amt(tax) if tax else None, rate))
    included = draw(st.booleans())
    shipping = None
    if draw(st.booleans()):
        sp = draw(st.integers(0, 5_000))
        shipping = (amt(sp), amt(draw(st.integers(0, sp // 5))))
    # random partial steps: every unit of every line goes to one of up to 4 refunds
    steps: list[list[tuple[int, int]]] = [[] for _ in range(4)]
    for no, (_, qty, *_rest) in enumerate(lines, start=1):
        picks = draw(st.lists(st.integers(0, 3), min_size=qty, max_size=qty))
        for k in range(4):
            if picks.count(k):
                steps[k].append((no, picks.count(k)))
    steps = [s for s in steps if s]
    return cur, lines, included, shipping, steps


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=orders_and_steps(), ship_step=st.integers(0, 10))
def test_refunding_every_line_in_random_steps_sums_exactly_to_paid(
    order_factory: Factory,
    case: tuple[
        str,
        list[tuple[str, int, str, str | None, str | None, str]],
        bool,
        tuple[str, str | None] | None,
        list[list[tuple[int, int]]],
    ],
    ship_step: int,
) -> None:
    cur, lines, included, shipping, steps = case
    order = order_factory(cur, lines, taxes_included=included, shipping=shipping)
    prev: list[Refund] = []
    ship_at = min(ship_step, len(steps) - 1)
    for k, step in enumerate(steps):
        r = _refund(order, [LineToRefund(no, q) for no, q in step], prev, include_shipping=k == ship_at)
        assert all(ln.amount.currency == cur for ln in r.lines)
        assert r.amount >= Money.zero(cur)
        prev.append(r)
    assert Money.sum((r.amount for r in prev), cur) == order.totals.total
    assert Money.sum((r.tax or Money.zero(cur) for r in prev), cur) == order.totals.tax
    assert all(q == 0 for q in refundable_quantities(order, prev).values())
    assert money_trail(order, prev).outstanding.is_zero()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=orders_and_steps(), reasons=st.lists(st.sampled_from(["defective", "changed_mind", "too_big"]), min_size=4))
def test_with_restocking_fees_refunds_plus_fees_kept_equal_paid(
    order_factory: Factory,
    case: tuple[
        str,
        list[tuple[str, int, str, str | None, str | None, str]],
        bool,
        tuple[str, str | None] | None,
        list[list[tuple[int, int]]],
    ],
    reasons: list[str],
) -> None:
    cur, lines, included, shipping, steps = case
    order = order_factory(cur, lines, taxes_included=included, shipping=shipping)
    cfg = ReturnsConfig(restocking_fee_percent={"changed_mind": Decimal("15"), "too_big": Decimal("7.5")})
    prev: list[Refund] = []
    fees = Money.zero(cur)
    for k, step in enumerate(steps):
        reason = reasons[k % len(reasons)]
        calc = calculate_refund(
            order,
            [LineToRefund(no, q, reason) for no, q in step],
            previous_refunds=prev,
            config=cfg,
            include_shipping=k == len(steps) - 1,
        )
        assert calc.amount >= Money.zero(cur) and calc.restocking_fee <= calc.merchandise + calc.shipping
        fees = fees + calc.restocking_fee
        prev.append(calc.to_refund(order_id=order.id, created_at=NOW))
    trail = money_trail(order, prev)
    assert trail.refunded + fees == order.totals.total
    assert trail.outstanding == fees
