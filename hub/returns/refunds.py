"""Exact refund amounts and the order's money trail. Pure: no I/O.

Conventions (the same for every refund the hub computes):

- ``RefundLine.amount`` is what the customer paid for those units: the price less the line's
  discount share, **with** its tax (inside the price when the order's taxes are included, added
  on top when they are not). ``RefundLine.tax`` reports the tax part of it.
- ``Refund.shipping`` is the shipping refunded, with its tax; ``Refund.tax`` is the tax of the
  lines plus the tax of the shipping; ``Refund.restocking_fee`` is kept back.
- ``Refund.amount`` = lines + shipping - restocking fee (- the return label when the customer pays it).

Each line is split into units: its discount and its tax are spread over the units with
:meth:`Money.allocate` (largest remainder, ties to the earliest unit), so unit *i* costs
``unit_price - discount_i (+ tax_i)``. A refund of *k* units takes the next *k* units; the refund that
takes the last unit of a line takes whatever is left of the line. So the refunds of every line, over any
sequence of partial refunds, add up to exactly what was paid for it, to the minor unit.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from hub.config import ReturnsConfig
from hub.errors import InputError
from hub.model import Money, Order, OrderLine, PaymentStatus, Refund, RefundLine, ReturnLine, new_id
from hub.returns.errors import RefundExceedsPaid

_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineToRefund:
    """Units of one order line to refund, with the return reason (for the restocking fee)."""

    line_no: int
    quantity: int
    reason: str | None = None


@dataclass(frozen=True)
class FxConversion:
    """Book the refund in another currency (an ERP's company currency) at ``rate``.

    ``rate`` is units of ``currency`` for 1 unit of the order currency (``Decimal``, never a float).
    """

    currency: str
    rate: Decimal


@dataclass(frozen=True)
class RefundCalculation:
    """The result of :func:`calculate_refund`, all in the order currency; ``to_refund()`` makes the Refund."""

    currency: str
    lines: tuple[RefundLine, ...]
    merchandise: Money
    shipping: Money
    tax: Money
    restocking_fee: Money
    return_shipping_fee: Money
    amount: Money
    fx_rate: Decimal | None = None
    booked_amount: Money | None = None

    def to_refund(
        self,
        *,
        order_id: str,
        created_at: datetime,
        refund_id: str | None = None,
        return_id: str | None = None,
        reason: str | None = None,
    ) -> Refund:
        """A :class:`hub.model.Refund` carrying these amounts (a new ``ref_`` id unless given)."""
        return Refund(
            id=refund_id or new_id("ref"),
            order_id=order_id,
            return_id=return_id,
            amount=self.amount,
            lines=list(self.lines),
            shipping=self.shipping,
            tax=self.tax,
            restocking_fee=self.restocking_fee,
            reason=reason,
            fx_rate=self.fx_rate,
            created_at=created_at,
        )


@dataclass(frozen=True)
class _Refunded:
    quantity: int
    amount: Money
    tax: Money


def _units(total: Money | None, quantity: int, currency: str) -> list[Money]:
    if total is None or total.is_zero():
        return [Money.zero(currency)] * quantity
    return total.allocate([1] * quantity)


def line_paid(order: Order, line: OrderLine) -> Money:
    """What the customer paid for an order line: net of its discount, plus its tax when taxes are excluded."""
    return line.net if order.taxes_included else line.net + line.tax


def shipping_paid(order: Order) -> tuple[Money, Money]:
    """(shipping paid with its tax, the tax part) for the whole order."""
    cur = order.currency
    net = Money.sum((s.net for s in order.shipping_lines), cur)
    tax = Money.sum((t.amount for s in order.shipping_lines for t in s.tax_lines), cur)
    return (net if order.taxes_included else net + tax), tax


def _line_for(order: Order, line_no: int | None, sku: str | None) -> OrderLine:
    if line_no is not None:
        try:
            return order.line(line_no)
        except KeyError:
            raise InputError(f"order {order.id} has no line {line_no}", order_id=order.id) from None
    matches = [ln for ln in order.lines if ln.sku == sku]
    if len(matches) != 1:
        raise InputError(
            f"order {order.id}: refund line for SKU {sku!r} matches {len(matches)} order lines; give its line_no",
            order_id=order.id,
            sku=sku,
        )
    return matches[0]


def _previous(order: Order, previous_refunds: Sequence[Refund]) -> tuple[dict[int, _Refunded], Money, Money]:
    cur = order.currency
    per_line: dict[int, _Refunded] = {}
    shipping = Money.zero(cur)
    shipping_tax = Money.zero(cur)
    for ref in previous_refunds:
        line_tax = Money.zero(cur)
        for rl in ref.lines:
            ln = _line_for(order, rl.line_no, rl.sku)
            tax = rl.tax or Money.zero(cur)
            line_tax = line_tax + tax
            prev = per_line.get(ln.line_no, _Refunded(0, Money.zero(cur), Money.zero(cur)))
            per_line[ln.line_no] = _Refunded(prev.quantity + rl.quantity, prev.amount + rl.amount, prev.tax + tax)
        if ref.shipping is not None:
            shipping = shipping + ref.shipping
            if ref.tax is not None and ref.tax > line_tax:
                shipping_tax = shipping_tax + (ref.tax - line_tax)
    return per_line, shipping, shipping_tax


def refundable_quantities(order: Order, previous_refunds: Sequence[Refund] = ()) -> dict[int, int]:
    """Per order line (``line_no``): units not refunded yet."""
    done, _, _ = _previous(order, previous_refunds)
    return {ln.line_no: ln.quantity - (done[ln.line_no].quantity if ln.line_no in done else 0) for ln in order.lines}


def _normalise(order: Order, items: Sequence[LineToRefund | ReturnLine]) -> list[LineToRefund]:
    out: list[LineToRefund] = []
    for it in items:
        if isinstance(it, LineToRefund):
            out.append(it)
            continue
        qty = it.received_quantity if it.received_quantity is not None else it.quantity
        ln = _line_for(order, it.line_no, it.sku)
        out.append(LineToRefund(ln.line_no, qty, it.reason))
    return out


def calculate_refund(
    order: Order,
    lines_to_refund: Sequence[LineToRefund | ReturnLine],
    *,
    previous_refunds: Sequence[Refund] = (),
    config: ReturnsConfig | None = None,
    include_shipping: bool | None = None,
    restocking_fee_reasons: Collection[str] | None = None,
    return_shipping_cost: Money | None = None,
    fx: FxConversion | None = None,
) -> RefundCalculation:
    """The exact refund of ``lines_to_refund`` in the order currency.

    - ``lines_to_refund``: :class:`LineToRefund` or received :class:`~hub.model.ReturnLine` (its
      ``received_quantity`` counts when set, so a ``missing`` line refunds nothing).
    - ``previous_refunds``: the order's earlier refunds; their lines and shipping are not refunded again.
    - ``include_shipping``: refund what is left of the shipping; ``None`` follows ``config.refund_shipping``.
    - ``restocking_fee_reasons``: the return reasons that pay the fee (percent from
      ``config.restocking_fee_percent``); ``None`` means every configured reason, an empty set waives it.
    - ``return_shipping_cost``: the return label, deducted when ``config.return_shipping_paid_by`` is
      ``customer``.
    - ``fx``: also convert the amount for an ERP booking in another currency (rate recorded).

    Raises :class:`RefundExceedsPaid` when a line asks for more units than are left to refund.
    """
    cfg = config or ReturnsConfig()
    cur = order.currency
    zero = Money.zero(cur)
    done, ship_done, ship_tax_done = _previous(order, previous_refunds)
    want: dict[int, LineToRefund] = {}
    for item in _normalise(order, lines_to_refund):
        if item.quantity < 0:
            raise InputError(f"order {order.id} line {item.line_no}: refund quantity {item.quantity} is negative")
        same = want.get(item.line_no)
        want[item.line_no] = LineToRefund(
            item.line_no, item.quantity + (same.quantity if same else 0), item.reason or (same.reason if same else None)
        )

    fee_reasons = cfg.restocking_fee_percent.keys() if restocking_fee_reasons is None else restocking_fee_reasons
    out_lines: list[RefundLine] = []
    merch = zero
    line_tax_total = zero
    fee = zero
    for no in sorted(want):
        item = want[no]
        if item.quantity == 0:
            continue
        ln = order.line(no)
        prev = done.get(no, _Refunded(0, zero, zero))
        start, end = prev.quantity, prev.quantity + item.quantity
        if end > ln.quantity:
            raise RefundExceedsPaid(
                f"order {order.id} line {no} ({ln.sku}): cannot refund {item.quantity} unit(s); "
                f"{ln.quantity - prev.quantity} of {ln.quantity} are left to refund",
                order_id=order.id,
                line_no=no,
                sku=ln.sku,
                requested=item.quantity,
                refundable=ln.quantity - prev.quantity,
            )
        paid = line_paid(order, ln)
        left_amount, left_tax = paid - prev.amount, ln.tax - prev.tax
        if end == ln.quantity:  # the last units take whatever is left of the line
            amount, tax = left_amount, left_tax
        else:
            discounts = _units(ln.discount, ln.quantity, cur)[start:end]
            taxes = _units(ln.tax, ln.quantity, cur)[start:end]
            tax = Money.sum(taxes, cur)
            amount = ln.unit_price * item.quantity - Money.sum(discounts, cur)
            if not order.taxes_included:
                amount = amount + tax
            amount, tax = min(amount, left_amount), min(tax, left_tax)
        out_lines.append(RefundLine(line_no=no, sku=ln.sku, quantity=item.quantity, amount=amount, tax=tax))
        merch = merch + amount
        line_tax_total = line_tax_total + tax
        if item.reason and item.reason in fee_reasons and item.reason in cfg.restocking_fee_percent:
            fee = fee + Money(amount=amount.amount * cfg.restocking_fee_percent[item.reason] / _HUNDRED, currency=cur)

    shipping, shipping_tax = zero, zero
    if include_shipping if include_shipping is not None else cfg.refund_shipping:
        ship_paid, ship_tax = shipping_paid(order)
        shipping = max(ship_paid - ship_done, zero)
        shipping_tax = max(min(ship_tax - ship_tax_done, shipping), zero)

    gross = merch + shipping
    fee = min(fee, max(gross, zero))
    label = zero
    if return_shipping_cost is not None and cfg.return_shipping_paid_by == "customer":
        label = min(return_shipping_cost, max(gross - fee, zero))
    amount = gross - fee - label

    booked: Money | None = None
    if fx is not None:
        if fx.rate <= 0:
            raise InputError(f"order {order.id}: FX rate {fx.rate} to {fx.currency} must be positive")
        booked = Money(amount=amount.amount * fx.rate, currency=fx.currency)
    return RefundCalculation(
        currency=cur,
        lines=tuple(out_lines),
        merchandise=merch,
        shipping=shipping,
        tax=line_tax_total + shipping_tax,
        restocking_fee=fee,
        return_shipping_fee=label,
        amount=amount,
        fx_rate=fx.rate if fx else None,
        booked_amount=booked,
    )


# -- money trail ------------------------------------------------------------------------------


class DisputeStatus(StrEnum):
    """State of a dispute: open (money held), won (money back), lost (money gone)."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True)
class Dispute:
    """A chargeback or payment dispute. Open and lost ones hold or took back ``amount``; won ones did not."""

    amount: Money
    kind: str = "chargeback"
    status: DisputeStatus | str = DisputeStatus.OPEN


@dataclass(frozen=True)
class MoneyTrail:
    """Where the order's money is: ``outstanding`` = paid - refunded - disputed (what can still be refunded)."""

    paid: Money
    refunded: Money
    disputed: Money
    outstanding: Money

    @property
    def over_refunded(self) -> bool:
        """True when more went back than came in (a refund and a chargeback for the same money)."""
        return self.outstanding.amount < 0


_UNPAID = {PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.VOIDED}


def money_trail(
    order: Order, refunds: Sequence[Refund], disputes: Sequence[Dispute] = (), *, paid: Money | None = None
) -> MoneyTrail:
    """The order's money trail. ``paid`` defaults to the order total (zero while the payment is pending,
    authorised or voided); pass the captured amount for a partially paid order."""
    cur = order.currency
    paid_m = paid if paid is not None else (Money.zero(cur) if order.payment_status in _UNPAID else order.totals.total)
    refunded = Money.sum((r.amount for r in refunds), cur)
    disputed = Money.sum((d.amount for d in disputes if str(d.status) != DisputeStatus.WON), cur)
    return MoneyTrail(paid=paid_m, refunded=refunded, disputed=disputed, outstanding=paid_m - refunded - disputed)
