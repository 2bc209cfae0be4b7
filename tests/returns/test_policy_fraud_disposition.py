"""Return policy decisions with their reasons, fraud signals, and the default disposition hook."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hub.config import ReturnsConfig
from hub.errors import InputError
from hub.model import Condition, Disposition, Money, Order, Return, ReturnLine, new_id
from hub.plugins import load
from hub.returns import (
    CustomerHistory,
    FlagCode,
    Outcome,
    Receipt,
    decide,
    default_disposition,
    receipt_flags,
    request_flags,
    restock_quantity,
)

DELIVERED = datetime(2026, 3, 1, 12, tzinfo=UTC)
CFG = ReturnsConfig(non_returnable_skus=["GIFTCARD"], non_returnable_tags=["final-sale"])


def _order(f: Callable[..., Order], tags: tuple[str, ...] = ()) -> Order:
    return f(
        "EUR",
        [("A", 2, "40.00", None, None, "0"), ("GIFTCARD", 1, "50.00", None, None, "0")],
        taxes_included=True,
        tags=tags,
    )


def _lines(reason: str | None = "defective", sku: str = "A") -> list[ReturnLine]:
    return [ReturnLine(sku=sku, quantity=1, line_no=1, reason=reason)]


def test_return_past_the_window_is_refused_with_the_policy_reason(order_factory: Callable[..., Order]) -> None:
    d = decide(_order(order_factory), _lines(), DELIVERED, DELIVERED + timedelta(days=41, hours=3), CFG)
    assert d.outcome is Outcome.REJECT
    assert d.reason == "returned 41 days after delivery; the window is 30 days"


def test_auto_approve_reason_inside_the_window_is_approved(order_factory: Callable[..., Order]) -> None:
    d = decide(_order(order_factory), _lines(), DELIVERED, DELIVERED + timedelta(days=30), CFG, CustomerHistory(3, 0))
    assert d.outcome is Outcome.APPROVE and "within the 30 days window" in d.reason


def test_other_reason_goes_to_review(order_factory: Callable[..., Order]) -> None:
    d = decide(_order(order_factory), _lines("changed_mind"), DELIVERED, DELIVERED + timedelta(days=2), CFG)
    assert d.outcome is Outcome.REVIEW and "'changed_mind' is not auto-approved" in d.reason


def test_non_returnable_sku_and_tags_are_refused(order_factory: Callable[..., Order]) -> None:
    now = DELIVERED + timedelta(days=1)
    assert decide(_order(order_factory), _lines(sku="GIFTCARD"), DELIVERED, now, CFG).reason == (
        "SKU GIFTCARD is not returnable"
    )
    tagged = decide(_order(order_factory, ("final-sale",)), _lines(), DELIVERED, now, CFG)
    assert tagged.outcome is Outcome.REJECT and "tagged final-sale" in tagged.reason
    by_product = decide(_order(order_factory), _lines(), DELIVERED, now, CFG, product_tags={"A": ["final-sale"]})
    assert by_product.outcome is Outcome.REJECT


def test_unknown_delivery_date_goes_to_review(order_factory: Callable[..., Order]) -> None:
    assert decide(_order(order_factory), _lines(), None, DELIVERED, CFG).outcome is Outcome.REVIEW


def test_fraud_signals_send_an_auto_approvable_return_to_review(order_factory: Callable[..., Order]) -> None:
    order = _order(order_factory)
    cfg = ReturnsConfig(
        flag_refund_over=Decimal("30"), flag_return_rate_over=Decimal("0.5"), flag_returns_per_customer=3
    )
    # 4 earlier returns of 5 orders: rate 80 % > 50 %, and 4 >= 3 returns; the refund 40.00 > 30
    d = decide(order, _lines(), DELIVERED, DELIVERED + timedelta(days=1), cfg, CustomerHistory(orders=5, returns=4))
    assert d.outcome is Outcome.REVIEW
    assert [f.code for f in d.flags] == [FlagCode.RETURN_RATE, FlagCode.REFUND_VALUE, FlagCode.SERIAL_RETURNER]
    assert "returned 4 of 5 orders (80%), over the 50% limit" in d.reason
    assert "refund of 40.00 EUR is over the 30 EUR limit" in d.reason


def test_a_first_return_of_a_new_customer_is_not_flagged(order_factory: Callable[..., Order]) -> None:
    assert request_flags(_order(order_factory), _lines(), CustomerHistory(orders=1, returns=0), CFG) == []


def test_receipt_item_and_weight_mismatch_are_flagged() -> None:
    ret = Return(
        id=new_id("ret"),
        order_id=new_id("ord"),
        requested_at=DELIVERED,
        lines=[ReturnLine(sku="A", quantity=2), ReturnLine(sku="B", quantity=1)],
    )
    flags = receipt_flags(
        ret,
        [Receipt(sku="A", condition=Condition.NEW, quantity=1), Receipt(sku="C", condition=Condition.NEW)],
        expected_weight_grams=900,
        measured_weight_grams=120,
    )
    assert [f.code for f in flags] == [FlagCode.ITEM_MISMATCH, FlagCode.WEIGHT_MISMATCH]
    assert (
        str(flags[0])
        == "item_mismatch: A: requested 2, received 1; B: requested 1, received 0; C: requested 0, received 1"
    )
    assert "86.7% off, tolerance 10%" in flags[1].detail
    ok = receipt_flags(
        ret,
        [Receipt(sku="A", condition=Condition.NEW), Receipt(sku="B", condition=Condition.OPENED)],
        expected_weight_grams=900,
        measured_weight_grams=950,
    )
    assert ok == []


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition.NEW, Disposition.RESTOCK),
        (Condition.OPENED, Disposition.RESTOCK),
        (Condition.DAMAGED, Disposition.DISPOSE),
        (Condition.DEFECTIVE, Disposition.RETURN_TO_VENDOR),
        (Condition.MISSING, None),
    ],
)
def test_default_disposition_by_condition_through_the_hook(
    order_factory: Callable[..., Order], condition: Condition, expected: Disposition | None
) -> None:
    pm, _ = load(entry_points=False)
    line = ReturnLine(sku="A", quantity=1, condition=condition, received_quantity=1)
    assert pm.hook.orderhub_return_disposition(line=line, order=_order(order_factory), config=CFG) == expected
    assert default_disposition(line) == expected


def test_a_plugin_answer_overrides_the_default(order_factory: Callable[..., Order]) -> None:
    from hub.plugins import hookimpl

    class Refurbisher:
        @hookimpl
        def orderhub_return_disposition(self, line: ReturnLine, order: Order, config: object) -> Disposition | None:
            return Disposition.REFURBISH if line.condition == Condition.OPENED else None

    pm, _ = load(entry_points=False, extra_plugins=[Refurbisher()])
    opened = ReturnLine(sku="A", quantity=1, condition=Condition.OPENED)
    damaged = ReturnLine(sku="A", quantity=1, condition=Condition.DAMAGED)
    order = _order(order_factory)
    assert pm.hook.orderhub_return_disposition(line=opened, order=order, config=CFG) is Disposition.REFURBISH
    assert pm.hook.orderhub_return_disposition(line=damaged, order=order, config=CFG) is Disposition.DISPOSE


def test_only_restocked_lines_go_back_to_stock() -> None:
    assert restock_quantity(ReturnLine(sku="A", quantity=3, received_quantity=2, disposition=Disposition.RESTOCK)) == 2
    assert restock_quantity(ReturnLine(sku="A", quantity=3, disposition=Disposition.DISPOSE)) == 0
    with pytest.raises(InputError, match="has no condition yet"):
        default_disposition(ReturnLine(sku="A", quantity=1))


def test_refund_value_estimate_uses_what_was_paid(order_factory: Callable[..., Order]) -> None:
    flags = request_flags(_order(order_factory), _lines(), CustomerHistory(), CFG, refund_value=Money.of("600", "EUR"))
    assert [f.code for f in flags] == [FlagCode.REFUND_VALUE]
