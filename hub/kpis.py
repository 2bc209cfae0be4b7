"""Fulfilment KPIs computed from per-order facts. Pure, no I/O.

The service feeds :class:`OrderFact` rows built from the store's ``kpi_facts`` table. Rates are
:class:`~decimal.Decimal` fractions (0..1) rounded to 4 places, ``None`` when no order qualifies.
Definitions (denominators in brackets):

- **perfect order rate**: delivered on time (by the promised deliver-by; no promise counts as on
  time), complete, without exception and without a refund request [delivered orders];
- **OTIF** (on time, in full): delivered by the promised deliver-by and complete [delivered orders
  with a promised deliver-by];
- **promise accuracy**: delivered by the promised deliver-by, complete or not [delivered orders
  with a promised deliver-by];
- **ship-by accuracy**: shipped by the promised ship-by [shipped orders with a promised ship-by];
- **exception rate**: orders with an exception [all orders];
- **order cycle time**: placed to delivered (or to shipped), median and mean [orders that reached it];
- **refund cycle time**: refund requested to refund issued, median and mean [refunded orders];
- **cost to serve per order**: mean ``cost_to_serve`` [orders with a cost].
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

_Q = Decimal("0.0001")


@dataclass(frozen=True)
class OrderFact:
    """One order's fulfilment facts (a ``kpi_facts`` row plus refund times)."""

    order_id: str
    placed_at: datetime
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    promised_ship_by: datetime | None = None
    promised_deliver_by: datetime | None = None
    had_exception: bool = False
    complete: bool = True
    shipments: int = 0
    cost_to_serve: Decimal | None = None
    refund_requested_at: datetime | None = None
    refund_issued_at: datetime | None = None


@dataclass(frozen=True)
class Durations:
    """Median (p50) and mean of a set of durations; both ``None`` when ``count`` is 0."""

    count: int
    p50: timedelta | None
    avg: timedelta | None

    def to_json(self) -> dict[str, Any]:
        """Seconds as numbers."""
        return {
            "count": self.count,
            "p50_seconds": self.p50.total_seconds() if self.p50 is not None else None,
            "avg_seconds": self.avg.total_seconds() if self.avg is not None else None,
        }


def _rate(num: int, den: int) -> Decimal | None:
    return (Decimal(num) / Decimal(den)).quantize(_Q) if den else None


def _durations(values: Sequence[timedelta]) -> Durations:
    if not values:
        return Durations(0, None, None)
    secs = [v.total_seconds() for v in values]
    return Durations(len(values), timedelta(seconds=statistics.median(secs)), sum(values, timedelta()) / len(values))


def _on_time(f: OrderFact) -> bool:
    assert f.delivered_at is not None
    return f.promised_deliver_by is None or f.delivered_at <= f.promised_deliver_by


def perfect_order_rate(facts: Iterable[OrderFact]) -> Decimal | None:
    """Delivered orders that were on time, complete, exception-free and not refunded, over delivered orders."""
    delivered = [f for f in facts if f.delivered_at is not None]
    perfect = [
        f for f in delivered if _on_time(f) and f.complete and not f.had_exception and f.refund_requested_at is None
    ]
    return _rate(len(perfect), len(delivered))


def otif(facts: Iterable[OrderFact]) -> Decimal | None:
    """On time and in full, over delivered orders with a promised deliver-by."""
    judged = [f for f in facts if f.delivered_at is not None and f.promised_deliver_by is not None]
    return _rate(sum(1 for f in judged if _on_time(f) and f.complete), len(judged))


def promise_accuracy(facts: Iterable[OrderFact]) -> Decimal | None:
    """Delivered by the promised deliver-by, over delivered orders with one."""
    judged = [f for f in facts if f.delivered_at is not None and f.promised_deliver_by is not None]
    return _rate(sum(1 for f in judged if _on_time(f)), len(judged))


def ship_by_accuracy(facts: Iterable[OrderFact]) -> Decimal | None:
    """Shipped by the promised ship-by, over shipped orders with one."""
    pairs = [(f.shipped_at, f.promised_ship_by) for f in facts if f.shipped_at and f.promised_ship_by]
    return _rate(sum(1 for shipped, promised in pairs if shipped <= promised), len(pairs))


def exception_rate(facts: Iterable[OrderFact]) -> Decimal | None:
    """Orders with an exception over all orders."""
    fs = list(facts)
    return _rate(sum(1 for f in fs if f.had_exception), len(fs))


def order_cycle_time(facts: Iterable[OrderFact], until: Literal["delivered", "shipped"] = "delivered") -> Durations:
    """Placed to delivered (or shipped): p50 and mean over the orders that got there."""
    ends = [(f.delivered_at if until == "delivered" else f.shipped_at, f.placed_at) for f in facts]
    return _durations([end - start for end, start in ends if end is not None])


def refund_cycle_time(facts: Iterable[OrderFact]) -> Durations:
    """Refund requested to refund issued: p50 and mean over refunded orders."""
    return _durations(
        [
            f.refund_issued_at - f.refund_requested_at
            for f in facts
            if f.refund_issued_at is not None and f.refund_requested_at is not None
        ]
    )


def cost_to_serve_per_order(facts: Iterable[OrderFact]) -> Decimal | None:
    """Mean ``cost_to_serve`` over orders that have one (4 decimal places)."""
    costs = [f.cost_to_serve for f in facts if f.cost_to_serve is not None]
    return (sum(costs, Decimal(0)) / len(costs)).quantize(_Q) if costs else None


def summary(facts: Iterable[OrderFact]) -> dict[str, Any]:
    """Every KPI, JSON-ready (rates and costs as decimal strings)."""
    fs = list(facts)

    def s(d: Decimal | None) -> str | None:
        return str(d) if d is not None else None

    return {
        "orders": len(fs),
        "perfect_order_rate": s(perfect_order_rate(fs)),
        "otif": s(otif(fs)),
        "promise_accuracy": s(promise_accuracy(fs)),
        "ship_by_accuracy": s(ship_by_accuracy(fs)),
        "exception_rate": s(exception_rate(fs)),
        "order_cycle_time": order_cycle_time(fs).to_json(),
        "refund_cycle_time": refund_cycle_time(fs).to_json(),
        "cost_to_serve_per_order": s(cost_to_serve_per_order(fs)),
    }
