"""Return fraud signals. Pure: no I/O.

A flag does not refuse a return: the return keeps its status with the flags set
(:func:`hub.returns.lifecycle.add_flags`) and waits for an ops user instead of being approved or
refunded automatically. Thresholds come from ``[returns]`` (:class:`hub.config.ReturnsConfig`).

- ``return_rate``: the customer's earlier returns / orders is over ``flag_return_rate_over``
- ``refund_value``: the refund is over ``flag_refund_over`` (in the order currency's units)
- ``serial_returner``: the customer's earlier returns count reaches ``flag_returns_per_customer``
- ``item_mismatch``: what arrived differs from what was requested (SKU or quantity)
- ``weight_mismatch``: the parcel weighs more than ``weight_tolerance_percent`` off what was expected

``CustomerHistory`` counts this customer's earlier orders and returns, not the one being decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hub.config import ReturnsConfig
from hub.model import Money, Order, Return, ReturnLine
from hub.returns.lifecycle import Receipt
from hub.returns.refunds import line_paid


class FlagCode(StrEnum):
    """The kinds of return fraud signal (see the module docstring)."""

    RETURN_RATE = "return_rate"
    REFUND_VALUE = "refund_value"
    SERIAL_RETURNER = "serial_returner"
    ITEM_MISMATCH = "item_mismatch"
    WEIGHT_MISMATCH = "weight_mismatch"


@dataclass(frozen=True)
class Flag:
    """One fraud signal: a code for machines and a detail for the ops user. ``str()`` is ``"code: detail"``."""

    code: FlagCode
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class CustomerHistory:
    """The customer's earlier orders and returns (the store counts them, e.g. by customer email)."""

    orders: int = 0
    returns: int = 0


def estimate_refund(order: Order, lines: Sequence[ReturnLine]) -> Money:
    """What refunding ``lines`` would roughly cost (their share of what was paid), for the value check."""
    total = Money.zero(order.currency)
    for rl in lines:
        ln = next((x for x in order.lines if x.line_no == rl.line_no), None) or next(
            (x for x in order.lines if x.sku == rl.sku), None
        )
        if ln is not None:
            total = total + line_paid(order, ln) * (Decimal(min(rl.quantity, ln.quantity)) / ln.quantity)
    return total


def request_flags(
    order: Order,
    lines: Sequence[ReturnLine],
    history: CustomerHistory,
    config: ReturnsConfig,
    refund_value: Money | None = None,
) -> list[Flag]:
    """Signals on a return request: return rate, refund value, serial returner."""
    flags: list[Flag] = []
    if history.orders > 0:
        rate = Decimal(history.returns) / Decimal(history.orders)
        if rate > config.flag_return_rate_over:
            flags.append(
                Flag(
                    FlagCode.RETURN_RATE,
                    f"customer returned {history.returns} of {history.orders} orders "
                    f"({rate:.0%}), over the {config.flag_return_rate_over:.0%} limit",
                )
            )
    value = refund_value if refund_value is not None else estimate_refund(order, lines)
    if value.amount > config.flag_refund_over:
        flags.append(
            Flag(
                FlagCode.REFUND_VALUE, f"refund of {value} is over the {config.flag_refund_over} {value.currency} limit"
            )
        )
    if history.returns >= config.flag_returns_per_customer:
        flags.append(
            Flag(
                FlagCode.SERIAL_RETURNER,
                f"customer already has {history.returns} returns (limit {config.flag_returns_per_customer})",
            )
        )
    return flags


def receipt_flags(
    ret: Return,
    receipts: Sequence[Receipt],
    *,
    expected_weight_grams: int | None = None,
    measured_weight_grams: int | None = None,
    weight_tolerance_percent: Decimal = Decimal(10),
) -> list[Flag]:
    """Signals on what arrived: SKUs or quantities that differ from the request, a weight that is off."""
    flags: list[Flag] = []
    requested: dict[str, int] = {}
    for ln in ret.lines:
        requested[ln.sku] = requested.get(ln.sku, 0) + ln.quantity
    received: dict[str, int] = {}
    for r in receipts:
        qty = r.quantity if r.quantity is not None else (0 if r.condition == "missing" else requested.get(r.sku, 1))
        received[r.sku] = received.get(r.sku, 0) + qty
    diffs = [
        f"{sku}: requested {requested.get(sku, 0)}, received {received.get(sku, 0)}"
        for sku in sorted(set(requested) | set(received))
        if requested.get(sku, 0) != received.get(sku, 0)
    ]
    if diffs:
        flags.append(Flag(FlagCode.ITEM_MISMATCH, "; ".join(diffs)))
    if expected_weight_grams and measured_weight_grams is not None:
        off = abs(Decimal(measured_weight_grams - expected_weight_grams)) * 100 / Decimal(expected_weight_grams)
        if off > weight_tolerance_percent:
            flags.append(
                Flag(
                    FlagCode.WEIGHT_MISMATCH,
                    f"parcel weighs {measured_weight_grams} g, expected {expected_weight_grams} g "
                    f"({off:.1f}% off, tolerance {weight_tolerance_percent}%)",
                )
            )
    return flags
