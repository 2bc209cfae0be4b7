"""KPI formulas on small worked examples."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hub.kpis import (
    Durations,
    OrderFact,
    cost_to_serve_per_order,
    exception_rate,
    order_cycle_time,
    otif,
    perfect_order_rate,
    promise_accuracy,
    refund_cycle_time,
    ship_by_accuracy,
    summary,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
H = timedelta(hours=1)


def fact(n: int, **kw: object) -> OrderFact:
    return OrderFact(order_id=f"o{n}", placed_at=T0, **kw)  # type: ignore[arg-type]


# o1: on time, complete, clean               -> perfect, OTIF
# o2: late                                   -> not perfect, not OTIF
# o3: on time but incomplete                 -> not perfect, not OTIF, promise kept
# o4: on time, complete, exception           -> not perfect, OTIF
# o5: on time, complete, refund requested    -> not perfect, OTIF
# o6: not delivered yet                      -> not judged
FACTS = [
    fact(
        1,
        shipped_at=T0 + 20 * H,
        promised_ship_by=T0 + 24 * H,
        delivered_at=T0 + 40 * H,
        promised_deliver_by=T0 + 48 * H,
        cost_to_serve=Decimal("4.00"),
    ),
    fact(
        2,
        shipped_at=T0 + 30 * H,
        promised_ship_by=T0 + 24 * H,
        delivered_at=T0 + 60 * H,
        promised_deliver_by=T0 + 48 * H,
        cost_to_serve=Decimal("6.50"),
    ),
    fact(3, shipped_at=T0 + 10 * H, delivered_at=T0 + 30 * H, promised_deliver_by=T0 + 48 * H, complete=False),
    fact(
        4, delivered_at=T0 + 48 * H, promised_deliver_by=T0 + 48 * H, had_exception=True, cost_to_serve=Decimal("2.00")
    ),
    fact(
        5,
        delivered_at=T0 + 20 * H,
        promised_deliver_by=T0 + 48 * H,
        refund_requested_at=T0 + 50 * H,
        refund_issued_at=T0 + 74 * H,
    ),
    fact(6, promised_deliver_by=T0 + 48 * H, refund_requested_at=T0 + 5 * H, refund_issued_at=T0 + 7 * H),
]


def test_perfect_order_rate_counts_on_time_complete_clean_unrefunded_deliveries() -> None:
    assert perfect_order_rate(FACTS) == Decimal("0.2000")  # 1 of 5 delivered


def test_otif_is_on_time_and_in_full_over_delivered_orders_with_a_promise() -> None:
    assert otif(FACTS) == Decimal("0.6000")  # o1, o4, o5 of 5


def test_promise_accuracy_ignores_completeness() -> None:
    assert promise_accuracy(FACTS) == Decimal("0.8000")  # all but o2


def test_ship_by_accuracy() -> None:
    assert ship_by_accuracy(FACTS) == Decimal("0.5000")  # o1 yes, o2 no


def test_exception_rate_is_over_all_orders() -> None:
    assert exception_rate(FACTS) == Decimal("0.1667")  # 1 of 6


def test_order_cycle_time_median_and_mean() -> None:
    # delivered after 40, 60, 30, 48, 20 hours: median 40, mean 39.6
    assert order_cycle_time(FACTS) == Durations(5, 40 * H, timedelta(hours=39.6))
    # shipped after 20, 30, 10 hours
    assert order_cycle_time(FACTS, until="shipped") == Durations(3, 20 * H, 20 * H)


def test_refund_cycle_time_median_of_an_even_count_is_the_midpoint() -> None:
    assert refund_cycle_time(FACTS) == Durations(2, 13 * H, 13 * H)  # 24 h and 2 h


def test_cost_to_serve_per_order_is_the_mean_of_known_costs() -> None:
    assert cost_to_serve_per_order(FACTS) == Decimal("4.1667")  # 12.50 / 3


def test_no_qualifying_orders_give_none_not_zero() -> None:
    assert perfect_order_rate([]) is None
    assert otif([fact(1)]) is None
    assert cost_to_serve_per_order([fact(1)]) is None
    assert order_cycle_time([]) == Durations(0, None, None)


def test_summary_is_json_ready() -> None:
    s = summary(FACTS)
    assert s["orders"] == 6 and s["otif"] == "0.6000"
    assert s["order_cycle_time"] == {"count": 5, "p50_seconds": 144000.0, "avg_seconds": 142560.0}
