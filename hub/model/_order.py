"""The canonical order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, ValidationInfo, model_validator

from hub.errors import TotalsMismatch
from hub.model._common import Address, Customer, Model
from hub.model._money import Money, quantize
from hub.model._status import OrderStatus, check_transition


class TaxLine(Model):
    title: str
    rate: Decimal = Field(description="0.2 for 20 %")
    amount: Money


class Discount(Model):
    """An order-level discount application (code or automatic), for information.

    The money effect of discounts is carried by ``OrderLine.discount`` and
    ``ShippingLine.discount`` (the channel's allocation of each discount to lines).
    """

    code: str | None = None
    kind: str = "discount"
    amount: Money


class OrderLine(Model):
    line_no: int = Field(ge=1)
    external_id: str | None = None
    sku: str = Field(min_length=1)
    title: str | None = None
    quantity: int = Field(gt=0)
    unit_price: Money
    discount: Money | None = Field(default=None, description="total discount on the line, all units")
    tax_lines: list[TaxLine] = Field(default_factory=list)
    cancelled_quantity: int = Field(default=0, ge=0)
    substitute_for: str | None = Field(default=None, description="original SKU when this line is a substitution")

    @property
    def net(self) -> Money:
        """unit_price * quantity - discount."""
        gross = self.unit_price * self.quantity
        return gross - self.discount if self.discount else gross

    @property
    def tax(self) -> Money:
        return Money.sum((t.amount for t in self.tax_lines), self.unit_price.currency)

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.cancelled_quantity


class ShippingLine(Model):
    title: str | None = None
    code: str | None = None
    price: Money
    discount: Money | None = None
    tax_lines: list[TaxLine] = Field(default_factory=list)

    @property
    def net(self) -> Money:
        return self.price - self.discount if self.discount else self.price


class Totals(Model):
    """Totals as the source reported them; checked against the lines on validation."""

    subtotal: Money = Field(description="sum of line nets (after line discounts)")
    shipping: Money = Field(description="sum of shipping nets")
    tax: Money
    discount: Money = Field(description="all discounts, lines and shipping")
    total: Money = Field(description="subtotal + shipping (+ tax unless taxes_included)")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    UNKNOWN = "unknown"


class HoldKind(StrEnum):
    FRAUD = "fraud"
    ADDRESS = "address"
    PAYMENT = "payment"
    MANUAL = "manual"
    CHANNEL = "channel"


class Hold(Model):
    kind: HoldKind
    reason: str
    placed_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None


class AllocationStatus(StrEnum):
    RESERVED = "reserved"
    RELEASED = "released"  # sent to the location for fulfilment
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Allocation(Model):
    """Quantity of one order line reserved at one location."""

    line_no: int
    sku: str
    location: str
    quantity: int = Field(gt=0)
    status: AllocationStatus = AllocationStatus.RESERVED
    fulfillment_id: str | None = None


class Decision(Model):
    """Why the hub did something to the order (allocation, hold, substitution...)."""

    at: datetime
    kind: str
    summary: str
    details: dict[str, Any] = Field(default_factory=dict)


class Promise(Model):
    ship_by: datetime | None = None
    deliver_by: datetime | None = None


_STORED: dict[str, bool] = {"stored": True}  # validation context of Order.from_stored


class Order(Model):
    """The canonical order. ``(connection, external_id)`` identifies it at its source."""

    id: str = Field(pattern=r"^ord_[0-9A-Z]{26}$")
    connection: str
    external_id: str
    name: str | None = None
    placed_at: datetime
    source_updated_at: datetime | None = Field(
        default=None, description="the source's own last-update time; newer wins"
    )
    currency: str
    customer: Customer | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    lines: list[OrderLine] = Field(min_length=1)
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    taxes_included: bool = False
    totals: Totals
    presentment_currency: str | None = None
    presentment_total: Money | None = None
    payment_status: PaymentStatus = PaymentStatus.PAID
    status: OrderStatus = OrderStatus.RECEIVED
    holds: list[Hold] = Field(default_factory=list)
    allocations: list[Allocation] = Field(default_factory=list)
    backordered: dict[str, int] = Field(default_factory=dict, description="line_no (as string) -> quantity")
    promise: Promise | None = None
    delivery_method: Literal["ship", "pickup"] = "ship"
    pickup_location: str | None = None
    allow_substitution: bool = False
    tags: list[str] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    channel_status: str | None = Field(default=None, description="the source's own status, verbatim")

    # Set on an instance whose totals this validator checked. Pydantic passes an existing Order
    # through a field (``OrderUpserted(order=...)``) without revalidating it but still runs model
    # validators on it; the mark saves checking the same instance twice. A slot, not a field or a
    # private attribute: it is not compared, dumped or copied, so a ``model_copy`` is checked again.
    __slots__ = ("_totals_checked",)

    @model_validator(mode="wrap")
    @classmethod
    def _check(cls, data: Any, handler: ModelWrapValidatorHandler[Order], info: ValidationInfo) -> Order:
        if isinstance(data, Order) and getattr(data, "_totals_checked", False):
            return handler(data)
        order = handler(data)
        if info.context is _STORED:  # checked when it was accepted; a stored order is not refused on load
            object.__setattr__(order, "_totals_checked", True)
            return order
        problems = totals_problems(order)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(order, "_totals_checked", True)
        return order

    @classmethod
    def from_stored(cls, data: Any) -> Order:
        """An order read back from the store: validated, but its totals not summed again (they
        were checked when the order was accepted)."""
        return cls.model_validate(data, context=_STORED)

    def line(self, line_no: int) -> OrderLine:
        for ln in self.lines:
            if ln.line_no == line_no:
                return ln
        raise KeyError(line_no)

    def transition(self, target: OrderStatus | str) -> Order:
        """A copy in ``target`` status; raises IllegalTransition when the state machine refuses."""
        new = check_transition(self.status, target, self.id)
        return self.model_copy(update={"status": new})

    @property
    def active_holds(self) -> list[Hold]:
        return [h for h in self.holds if h.released_at is None]


_TOTALS = ("subtotal", "shipping", "tax", "discount", "total")


def totals_problems(order: Order) -> list[str]:
    """Every way the order's totals fail to add up (empty when they do)."""
    cur = order.currency
    t = order.totals
    out: list[str] = []
    for name in _TOTALS:
        m: Money = getattr(t, name)
        if m.currency != cur:
            out.append(f"totals.{name} is in {m.currency}, the order in {cur}")
    for ln in order.lines:
        if ln.unit_price.currency != cur:
            out.append(f"line {ln.line_no} is priced in {ln.unit_price.currency}, the order in {cur}")
    if out:
        return out
    # Decimal sums when every amount is in the order currency (the usual case); otherwise Money
    # arithmetic, which raises CurrencyMismatch naming the two currencies.
    sums = _decimal_sums(order, cur) or _money_sums(order, cur)
    for name, expected in zip(_TOTALS, sums, strict=True):
        given: Decimal = getattr(t, name).amount
        if given != expected:
            out.append(f"totals.{name} is {given} but the lines add up to {expected} {cur}")
    return out


def _decimal_sums(order: Order, cur: str) -> tuple[Decimal, ...] | None:
    """(subtotal, shipping, tax, discount, total) of the lines in ``cur``, rounded as Money rounds;
    None when a discount, tax or shipping amount is in another currency.

    Exact: every amount is already rounded to the currency's minor units, so sums and products
    by a quantity need no rounding until the end."""
    subtotal = shipping = tax = discount = Decimal(0)
    # (currency of the gross amount, gross, discount, tax lines, is shipping) of every line and shipping line
    parts = [(cur, ln.unit_price.amount * ln.quantity, ln.discount, ln.tax_lines, False) for ln in order.lines]
    parts += [(s.price.currency, s.price.amount, s.discount, s.tax_lines, True) for s in order.shipping_lines]
    for currency, net, d, tax_lines, is_shipping in parts:
        if currency != cur:
            return None
        if d is not None:
            if d.currency != cur:
                return None
            net -= d.amount
            discount += d.amount
        if is_shipping:
            shipping += net
        else:
            subtotal += net
        for tl in tax_lines:
            if tl.amount.currency != cur:
                return None
            tax += tl.amount.amount
    total = subtotal + shipping + (Decimal(0) if order.taxes_included else tax)
    return tuple(quantize(x, cur) for x in (subtotal, shipping, tax, discount, total))


def _money_sums(order: Order, cur: str) -> tuple[Decimal, ...]:
    """The same sums with Money arithmetic (raises CurrencyMismatch on a second currency)."""
    subtotal = Money.sum((ln.net for ln in order.lines), cur)
    shipping = Money.sum((s.net for s in order.shipping_lines), cur)
    tax = Money.sum((ln.tax for ln in order.lines), cur) + Money.sum(
        (t2.amount for s in order.shipping_lines for t2 in s.tax_lines), cur
    )
    discount = Money.sum((ln.discount for ln in order.lines if ln.discount), cur) + Money.sum(
        (s.discount for s in order.shipping_lines if s.discount), cur
    )
    total = subtotal + shipping + (Money.zero(cur) if order.taxes_included else tax)
    return (subtotal.amount, shipping.amount, tax.amount, discount.amount, total.amount)


def check_totals(order: Order) -> None:
    """Raise :class:`TotalsMismatch` listing every problem."""
    problems = totals_problems(order)
    if problems:
        raise TotalsMismatch("; ".join(problems), order_id=order.id)
