from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.allocation import (
    Backorder,
    ExpectedReceipt,
    backorder_queue_order,
    expected_promise,
    expected_promises,
    expired_backorders,
)
from hub.errors import InputError

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def bo(order_id: str, days_ago: int, qty: int = 1, value: str = "10", sku: str = "A", **kw: object) -> Backorder:
    return Backorder(order_id, 1, sku, qty, T0 - timedelta(days=days_ago), Decimal(value), **kw)  # type: ignore[arg-type]


def rc(day: int, qty: int, sku: str = "A", location: str = "w1") -> ExpectedReceipt:
    return ExpectedReceipt(sku, location, qty, datetime(2026, 3, day, tzinfo=UTC))


def test_oldest_first_queue() -> None:
    q = backorder_queue_order([bo("o2", 1), bo("o1", 5), bo("o3", 3)])
    assert [b.order_id for b in q] == ["o1", "o3", "o2"]


def test_value_first_queue_breaks_ties_by_age() -> None:
    q = backorder_queue_order([bo("o1", 5, value="10"), bo("o2", 1, value="99"), bo("o3", 3, value="99")], "value")
    assert [b.order_id for b in q] == ["o3", "o2", "o1"]


def test_unknown_priority_is_refused() -> None:
    with pytest.raises(InputError, match="use 'oldest' or 'value'"):
        backorder_queue_order([], "newest")  # type: ignore[arg-type]


def test_expected_promise_is_the_receipt_that_covers_the_quantity() -> None:
    receipts = [rc(10, 2), rc(5, 1), rc(20, 5), rc(3, 9, sku="B")]
    assert expected_promise(bo("o1", 0, qty=1), receipts) == datetime(2026, 3, 5, tzinfo=UTC)
    assert expected_promise(bo("o1", 0, qty=3), receipts) == datetime(2026, 3, 10, tzinfo=UTC)
    assert expected_promise(bo("o1", 0, qty=3), receipts, ahead=1) == datetime(2026, 3, 20, tzinfo=UTC)
    assert expected_promise(bo("o1", 0, qty=9), receipts) is None


def test_a_location_bound_backorder_waits_for_its_own_location() -> None:
    receipts = [rc(5, 5, location="w2"), rc(12, 5, location="store")]
    assert expected_promise(bo("o1", 0, location="store"), receipts) == datetime(2026, 3, 12, tzinfo=UTC)


def test_expected_promises_serve_the_queue_in_order() -> None:
    receipts = [rc(5, 2), rc(10, 2)]
    out = expected_promises([bo("new", 1, qty=2), bo("old", 9, qty=2), bo("mid", 4, qty=1)], receipts)
    assert [(b.order_id, d.day if d else None) for b, d in out] == [("old", 5), ("mid", 10), ("new", None)]


def test_expired_backorders_are_older_than_the_max_age() -> None:
    items = [bo("o1", 31), bo("o2", 30), bo("o3", 2)]
    assert [b.order_id for b in expired_backorders(items, T0, 30)] == ["o1"]
    assert expired_backorders(items, T0, None) == []


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 1000)), max_size=20), st.sampled_from(["oldest", "value"]))
def test_queue_order_is_a_permutation_sorted_by_the_priority(spec: list[tuple[int, int]], priority: str) -> None:
    items = [bo(f"o{i}", age, value=str(v)) for i, (age, v) in enumerate(spec)]
    q = backorder_queue_order(items, priority)  # type: ignore[arg-type]
    assert sorted(q, key=id) == sorted(items, key=id)
    keys = [(b.placed_at,) if priority == "oldest" else (-b.value, b.placed_at) for b in q]
    assert keys == sorted(keys)
