"""The return state machine and the shipped-not-yet-returned limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from hub.errors import InputError
from hub.model import Condition, Disposition, Order, Return, ReturnLine, ReturnStatus, new_id
from hub.returns import (
    IllegalReturnTransition,
    Receipt,
    ReturnNeedsApproval,
    ReturnQuantityExceeded,
    add_flags,
    approve,
    check_returnable,
    close,
    mark_refunded,
    receive,
    reject,
    returnable_quantities,
    set_dispositions,
    transition,
)

NOW = datetime(2026, 3, 20, tzinfo=UTC)


def _order(f: Callable[..., Order]) -> Order:
    return f(
        "EUR",
        [("A", 3, "10.00", None, None, "0"), ("B", 2, "5.00", None, None, "0"), ("A", 1, "10.00", None, None, "0")],
        taxes_included=True,
    )


def _ret(order: Order, lines: list[ReturnLine], status: ReturnStatus = ReturnStatus.REQUESTED) -> Return:
    return Return(id=new_id("ret"), order_id=order.id, lines=lines, requested_at=NOW, status=status)


def test_full_lifecycle_requested_to_closed(order_factory: Callable[..., Order]) -> None:
    order = _order(order_factory)
    ret = _ret(order, [ReturnLine(sku="A", quantity=2, line_no=1, reason="defective")])
    ret = approve(ret, NOW, "defective is auto-approved")
    ret = receive(ret, [Receipt(sku="A", condition=Condition.DEFECTIVE)], NOW)
    assert (ret.status, ret.lines[0].received_quantity, ret.lines[0].condition) == ("received", 2, "defective")
    ret = set_dispositions(ret, [Disposition.RETURN_TO_VENDOR], NOW)
    ret = close(mark_refunded(ret, NOW), NOW)
    assert ret.status is ReturnStatus.CLOSED and ret.decision_reason == "defective is auto-approved"


def test_illegal_transition_names_both_states(order_factory: Callable[..., Order]) -> None:
    ret = _ret(_order(order_factory), [ReturnLine(sku="A", quantity=1)])
    with pytest.raises(IllegalReturnTransition, match=r"cannot go from 'requested' to 'refunded'") as exc:
        transition(ret, ReturnStatus.REFUNDED, NOW)
    assert exc.value.status == 409 and exc.value.context["return_id"] == ret.id
    with pytest.raises(IllegalReturnTransition, match=r"from 'rejected' to 'approved'"):
        approve(reject(ret, NOW, "outside the window"), NOW)


def test_unreceived_line_is_recorded_missing_and_unrequested_sku_refused(order_factory: Callable[..., Order]) -> None:
    order = _order(order_factory)
    ret = approve(_ret(order, [ReturnLine(sku="A", quantity=1), ReturnLine(sku="B", quantity=1)]), NOW)
    got = receive(ret, [Receipt(sku="A", condition=Condition.NEW)], NOW)
    assert [(ln.condition, ln.received_quantity) for ln in got.lines] == [("new", 1), ("missing", 0)]
    with pytest.raises(InputError, match=r"received SKU\(s\) Z that the return did not request"):
        receive(ret, [Receipt(sku="Z", condition=Condition.NEW)], NOW)


def test_flagged_return_waits_for_ops_before_refund(order_factory: Callable[..., Order]) -> None:
    ret = _ret(_order(order_factory), [ReturnLine(sku="A", quantity=1)])
    ret = approve(ret, NOW)
    ret = receive(ret, [Receipt(sku="A", condition=Condition.NEW)], NOW)
    ret = set_dispositions(add_flags(ret, ["weight_mismatch: 120 g, expected 900 g"], NOW), [Disposition.RESTOCK], NOW)
    with pytest.raises(ReturnNeedsApproval, match="an ops user must approve the refund"):
        mark_refunded(ret, NOW)
    assert ret.status is ReturnStatus.DISPOSITIONED
    done = mark_refunded(ret, NOW, approved_by="ops@shop")
    assert done.status is ReturnStatus.REFUNDED and "approved by ops@shop" in (done.decision_reason or "")


def test_return_never_exceeds_shipped_minus_returned(order_factory: Callable[..., Order]) -> None:
    order = _order(order_factory)
    shipped = {1: 3, 2: 1, 3: 0}  # line 3 (A) not shipped yet, line 2 only 1 of 2
    earlier = [
        _ret(order, [ReturnLine(sku="A", quantity=1, line_no=1, received_quantity=1)], ReturnStatus.REFUNDED),
        _ret(order, [ReturnLine(sku="A", quantity=2, line_no=1)], ReturnStatus.REJECTED),  # takes nothing
    ]
    assert returnable_quantities(order, shipped, earlier) == {1: 2, 2: 1, 3: 0}
    with pytest.raises(ReturnQuantityExceeded, match=r"return of 3 x A exceeds the 2 unit\(s\) shipped") as exc:
        check_returnable(order, [ReturnLine(sku="A", quantity=3)], shipped, earlier)
    assert exc.value.context["returnable"] == 2
    with pytest.raises(ReturnQuantityExceeded, match="2 x B exceeds the 1 unit"):
        check_returnable(order, [ReturnLine(sku="B", quantity=2)], shipped, earlier)


def test_sku_on_two_lines_is_split_over_them(order_factory: Callable[..., Order]) -> None:
    order = _order(order_factory)
    lines = check_returnable(order, [ReturnLine(sku="A", quantity=4, reason="wrong_item")], {1: 3, 3: 1})
    assert [(ln.line_no, ln.quantity, ln.reason) for ln in lines] == [(1, 3, "wrong_item"), (3, 1, "wrong_item")]
    with pytest.raises(InputError, match="no line with SKU 'Q'"):
        check_returnable(order, [ReturnLine(sku="Q", quantity=1)], {1: 3})
