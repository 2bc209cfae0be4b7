"""Backorders: queue order, expected promise dates from incoming stock, expiry. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from hub.errors import InputError


@dataclass(frozen=True)
class Backorder:
    """``quantity`` units of order line ``line_no`` (``sku``) waiting for stock.

    ``value``: the money value of the waiting units in the order's currency (used by the ``value``
    priority); ``location``: set when the units must come from one location (click & collect).
    """

    order_id: str
    line_no: int
    sku: str
    quantity: int
    placed_at: datetime
    value: Decimal = Decimal(0)
    location: str | None = None


@dataclass(frozen=True)
class ExpectedReceipt:
    """Stock expected to arrive: ``quantity`` of ``sku`` at ``location`` at ``expected_at``."""

    sku: str
    location: str
    quantity: int
    expected_at: datetime


def backorder_queue_order(
    backorders: Iterable[Backorder], priority: Literal["oldest", "value"] = "oldest"
) -> list[Backorder]:
    """The order in which backorders get incoming stock.

    ``oldest``: earliest ``placed_at`` first; ``value``: highest ``value`` first, then oldest.
    Ties are broken by order id and line number, so the result is deterministic.
    """
    items = list(backorders)
    if priority == "oldest":
        return sorted(items, key=lambda b: (b.placed_at, b.order_id, b.line_no))
    if priority == "value":
        return sorted(items, key=lambda b: (-b.value, b.placed_at, b.order_id, b.line_no))
    raise InputError(f"unknown backorder priority {priority!r}: use 'oldest' or 'value'", priority=priority)


def _fits(backorder: Backorder, receipt: ExpectedReceipt) -> bool:
    return receipt.sku == backorder.sku and (backorder.location is None or receipt.location == backorder.location)


def expected_promise(
    backorder: Backorder, expected_receipts: Iterable[ExpectedReceipt], *, ahead: int = 0
) -> datetime | None:
    """When incoming stock covers the backorder: the date of the receipt at which the cumulative
    expected quantity of its SKU (at its location, when it has one) reaches ``ahead + quantity``;
    ``ahead`` is the units queued before it. ``None`` when the receipts never cover it."""
    target = ahead + backorder.quantity
    got = 0
    for r in sorted((r for r in expected_receipts if _fits(backorder, r)), key=lambda r: r.expected_at):
        got += r.quantity
        if got >= target:
            return r.expected_at
    return None


def expected_promises(
    backorders: Iterable[Backorder],
    expected_receipts: Sequence[ExpectedReceipt],
    priority: Literal["oldest", "value"] = "oldest",
) -> list[tuple[Backorder, datetime | None]]:
    """Every backorder in queue order with its expected date, the queue ahead consuming receipts first."""
    out: list[tuple[Backorder, datetime | None]] = []
    ahead: dict[tuple[str, str | None], int] = {}
    for b in backorder_queue_order(backorders, priority):
        key = (b.sku, b.location)
        # backorders for any location of the SKU also compete with location-bound ones
        queued = ahead.get(key, 0) + (ahead.get((b.sku, None), 0) if b.location is not None else 0)
        if b.location is None:
            queued = sum(q for (sku, _), q in ahead.items() if sku == b.sku)
        out.append((b, expected_promise(b, expected_receipts, ahead=queued)))
        ahead[key] = ahead.get(key, 0) + b.quantity
    return out


def expired_backorders(backorders: Iterable[Backorder], now: datetime, max_age_days: int | None) -> list[Backorder]:
    """Backorders whose order was placed more than ``max_age_days`` days before ``now``
    (``[allocation].backorder_max_age_days``; ``None``: nothing expires)."""
    if max_age_days is None:
        return []
    limit = timedelta(days=max_age_days)
    return [b for b in backorders if now - b.placed_at > limit]
