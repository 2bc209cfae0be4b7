"""Orders API v0 -> canonical order: pure functions, no I/O.

Kept apart from the connector so that it can move into ``mappings/amazon/order_v0.yaml`` once the
mapping engine is in place; the 2026-01-01 API (camelCase, ``Money.amount`` as a number) gets a
second mapper next to this one.

Source of every field name: amzn/selling-partner-api-models:models/orders-api-model/ordersV0.json
(definitions ``Order``, ``OrderItem``, ``Money``, ``Address``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from hub.errors import MappingError
from hub.model import (
    Address,
    Customer,
    Hold,
    HoldKind,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    PaymentStatus,
    Promise,
    ShippingLine,
    TaxLine,
    Totals,
    minor_units,
    new_id,
)
from hub.plugins import Message, OrderCancelled, OrderUpserted

API_VERSION = "v0"
SOURCE = "ordersV0.json"

#: Amazon ``OrderStatus`` -> canonical status.
#:
#: Amazon says not to ship ``Pending`` orders (payment not yet authorised) nor ``PendingAvailability``
#: pre-orders. They arrive as ``received`` with ``payment_status = pending``: the hub's payment screening
#: (``[allocation] hold_unpaid = true``, the default) puts them on a *payment* hold, and the next poll that
#: sees them ``Unshipped`` (payment ``paid``) releases that hold by itself. No channel hold is used for them:
#: the hub keeps stored holds across updates and would never lift it.
#: Open statuses map to ``received`` because the hub runs the order's lifecycle; Amazon's own status is kept
#: verbatim in ``channel_status``. ``Canceled`` becomes an ``OrderCancelled`` message.
STATUS: dict[str, OrderStatus] = {
    "Pending": OrderStatus.RECEIVED,
    "PendingAvailability": OrderStatus.RECEIVED,
    "Unshipped": OrderStatus.RECEIVED,
    "PartiallyShipped": OrderStatus.RECEIVED,
    "Shipped": OrderStatus.SHIPPED,
    "InvoiceUnconfirmed": OrderStatus.SHIPPED,
    "Canceled": OrderStatus.CANCELLED,
    "Unfulfillable": OrderStatus.ON_HOLD,
}

#: Statuses that put a channel hold on the order (the reason shown to ops). Unfulfillable applies to
#: Multi-Channel Fulfillment (AFN) orders only, which are not polled by default.
HOLD_REASONS: dict[str, str] = {
    "Unfulfillable": "Amazon reports the order Unfulfillable (Multi-Channel Fulfillment); check it in Seller Central",
}

PAYMENT: dict[str, PaymentStatus] = {
    "Pending": PaymentStatus.PENDING,
    "PendingAvailability": PaymentStatus.PENDING,
    "Canceled": PaymentStatus.VOIDED,
    "Unfulfillable": PaymentStatus.UNKNOWN,
}

#: Currency of well-known marketplaces, used only when no Money field names one (Pending orders).
#: Source: https://developer-docs.amazon.com/sp-api/docs/marketplace-ids
MARKETPLACE_CURRENCY: dict[str, str] = {
    "ATVPDKIKX0DER": "USD",
    "A2EUQ1WTGCTBG2": "CAD",
    "A1AM78C64UM0Y8": "MXN",
    "A2Q3Y263D00KWC": "BRL",
    "A1F83G8C2ARO7P": "GBP",
    "A1PA6795UKMFR9": "EUR",
    "A13V1IB3VIYZZH": "EUR",
    "APJ6JRA9NG5V4": "EUR",
    "A1RKKUPIHCS9HS": "EUR",
    "A1805IZSGTT6HS": "EUR",
    "AMEN7PMS3EDWL": "EUR",
    "A2NODRKZP88ZB9": "SEK",
    "A1C3SOZRARQ6R3": "PLN",
    "A33AVAJ2PDY3EV": "TRY",
    "A21TJRUUN4KGV": "INR",
    "A1VC38T7YXB528": "JPY",
    "A39IBJ37TRP1C6": "AUD",
    "A19VAU5U5O7RUS": "SGD",
    "A2VIGQ35RCS4UG": "AED",
    "A17E79C6D8DWNP": "SAR",
}

#: Marketplaces whose item prices exclude tax (tax is added on top), used when OrderTotal cannot tell.
TAX_EXCLUSIVE_MARKETPLACES = frozenset({"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8"})


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 Amazon time (``2017-01-20T19:49:35Z``) as an aware datetime."""
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def money(value: dict[str, Any] | None) -> Money | None:
    """An Amazon ``Money {CurrencyCode, Amount}`` (Amount a decimal string) as Money; None when absent."""
    if not value or value.get("Amount") in (None, "") or not value.get("CurrencyCode"):
        return None
    return Money.of(str(value["Amount"]), str(value["CurrencyCode"]))


def _err(order_id: str, field: str, value: Any, message: str) -> MappingError:
    return MappingError(
        f"Amazon order {order_id}: {message}",
        errors=[{"file": SOURCE, "line": None, "field": field, "value": value, "message": message}],
    )


def _currency(order: dict[str, Any], items: list[dict[str, Any]]) -> str:
    for it in items:
        for key in ("ItemPrice", "ItemTax", "ShippingPrice", "PromotionDiscount"):
            m = money(it.get(key))
            if m is not None:
                return m.currency
    total = money(order.get("OrderTotal"))
    if total is not None:
        return total.currency
    cur = MARKETPLACE_CURRENCY.get(str(order.get("MarketplaceId")))
    if cur is None:
        raise _err(
            str(order.get("AmazonOrderId")),
            "MarketplaceId",
            order.get("MarketplaceId"),
            "no Money field names a currency and the marketplace is unknown; add it to MARKETPLACE_CURRENCY",
        )
    return cur


def _amount(it: dict[str, Any], key: str, currency: str) -> Money:
    m = money(it.get(key))
    return m if m is not None else Money.zero(currency)


def _effective_rate(tax: Money, base: Money) -> Decimal:
    """Amazon sends tax amounts, not rates: the rate that the amounts imply, to 4 places."""
    if base.amount <= 0:
        return Decimal(0)
    return (tax.amount / base.amount).quantize(Decimal("0.0001"))


def split_line_price(total: Money, quantity: int) -> tuple[Money, Money]:
    """``ItemPrice`` is the line total (price x quantity). Returns (unit_price, rounding discount) such that
    ``unit_price * quantity - rounding == total`` exactly: the unit price is rounded *up* to minor units and
    the few minor units too many become a line discount, so no cent is lost or invented."""
    exp = Decimal(1).scaleb(-minor_units(total.currency))
    unit_amount = (total.amount / quantity).quantize(exp, rounding=ROUND_CEILING)
    unit = Money.of(unit_amount, total.currency)
    return unit, unit * quantity - total


def _address(raw: dict[str, Any] | None) -> Address | None:
    if not raw or not raw.get("CountryCode"):
        return None
    line2 = " ".join(x for x in (raw.get("AddressLine2"), raw.get("AddressLine3")) if x) or None
    return Address(
        name=raw.get("Name"),
        company=raw.get("CompanyName"),
        line1=raw.get("AddressLine1"),
        line2=line2,
        city=raw.get("City"),
        region=raw.get("StateOrRegion"),
        postal_code=raw.get("PostalCode"),
        country=raw["CountryCode"],
        phone=raw.get("Phone"),
    )


def order_from_v0(
    connection: str, order: dict[str, Any], items: list[dict[str, Any]], *, order_id: str | None = None
) -> Order:
    """The canonical order of one v0 ``Order`` and its ``OrderItem`` list (all pages).

    Raises :class:`~hub.errors.MappingError` naming the order, the field and the value.
    """
    oid = str(order.get("AmazonOrderId") or "")
    if not oid:
        raise _err("?", "AmazonOrderId", None, "AmazonOrderId is missing")
    status_raw = str(order.get("OrderStatus"))
    if status_raw not in STATUS:
        raise _err(oid, "OrderStatus", status_raw, f"unknown OrderStatus; known: {sorted(STATUS)}")
    placed_at = parse_time(order.get("PurchaseDate"))
    if placed_at is None:
        raise _err(oid, "PurchaseDate", None, "PurchaseDate is missing")
    cur = _currency(order, items)

    lines: list[OrderLine] = []
    ship_price = ship_disc = ship_tax = Money.zero(cur)
    for it in items:
        qty = int(it.get("QuantityOrdered") or 0)
        if qty <= 0:  # a cancelled item reports QuantityOrdered 0
            continue
        sku = it.get("SellerSKU")
        if not sku:
            raise _err(oid, f"OrderItems[{it.get('OrderItemId')}].SellerSKU", sku, "order item has no SellerSKU")
        price = _amount(it, "ItemPrice", cur)
        unit, rounding = split_line_price(price, qty)
        discount = rounding + _amount(it, "PromotionDiscount", cur)
        tax = _amount(it, "ItemTax", cur) - _amount(it, "PromotionDiscountTax", cur)
        net = price - _amount(it, "PromotionDiscount", cur)
        lines.append(
            OrderLine(
                line_no=len(lines) + 1,
                external_id=str(it.get("OrderItemId")),
                sku=str(sku),
                title=it.get("Title"),
                quantity=qty,
                unit_price=unit,
                discount=None if discount.is_zero() else discount,
                tax_lines=[]
                if tax.is_zero()
                else [TaxLine(title="ItemTax", rate=_effective_rate(tax, net), amount=tax)],
            )
        )
        ship_price += _amount(it, "ShippingPrice", cur)
        ship_disc += _amount(it, "ShippingDiscount", cur)
        ship_tax += _amount(it, "ShippingTax", cur) - _amount(it, "ShippingDiscountTax", cur)
    if not lines:
        raise _err(oid, "OrderItems", len(items), "the order has no item with QuantityOrdered > 0")

    shipping_lines: list[ShippingLine] = []
    if not (ship_price.is_zero() and ship_tax.is_zero()):
        shipping_lines.append(
            ShippingLine(
                title=order.get("ShipServiceLevel"),
                code=order.get("ShipmentServiceLevelCategory"),
                price=ship_price,
                discount=None if ship_disc.is_zero() else ship_disc,
                tax_lines=[]
                if ship_tax.is_zero()
                else [
                    TaxLine(
                        title="ShippingTax", rate=_effective_rate(ship_tax, ship_price - ship_disc), amount=ship_tax
                    )
                ],
            )
        )

    subtotal = Money.sum((ln.net for ln in lines), cur)
    shipping = Money.sum((s.net for s in shipping_lines), cur)
    tax = Money.sum((ln.tax for ln in lines), cur) + Money.sum(
        (t.amount for s in shipping_lines for t in s.tax_lines), cur
    )
    discount = Money.sum((ln.discount for ln in lines if ln.discount), cur) + Money.sum(
        (s.discount for s in shipping_lines if s.discount), cur
    )
    taxes_included = _taxes_included(order, subtotal + shipping, tax)
    total = subtotal + shipping + (Money.zero(cur) if taxes_included else tax)

    holds: list[Hold] = []
    if status_raw in HOLD_REASONS:
        holds.append(Hold(kind=HoldKind.CHANNEL, reason=HOLD_REASONS[status_raw], placed_at=placed_at))
    buyer = order.get("BuyerInfo") or {}
    customer = (
        Customer(email=buyer.get("BuyerEmail") or None, name=buyer.get("BuyerName") or None)
        if buyer.get("BuyerEmail") or buyer.get("BuyerName")
        else None
    )
    ship_by = parse_time(order.get("LatestShipDate"))
    deliver_by = parse_time(order.get("LatestDeliveryDate"))
    tags = [f"amazon:{order.get('FulfillmentChannel', 'MFN')}"]
    tags += [t for flag, t in (("IsPrime", "prime"), ("IsBusinessOrder", "business")) if order.get(flag)]
    return Order(
        id=order_id or new_id("ord"),
        connection=connection,
        external_id=oid,
        name=oid,
        placed_at=placed_at,
        source_updated_at=parse_time(order.get("LastUpdateDate")),
        currency=cur,
        customer=customer,
        shipping_address=_address(order.get("ShippingAddress")),
        lines=lines,
        shipping_lines=shipping_lines,
        taxes_included=taxes_included,
        totals=Totals(subtotal=subtotal, shipping=shipping, tax=tax, discount=discount, total=total),
        payment_status=PAYMENT.get(status_raw, PaymentStatus.PAID),
        status=STATUS[status_raw],
        holds=holds,
        promise=Promise(ship_by=ship_by, deliver_by=deliver_by) if ship_by or deliver_by else None,
        tags=tags,
        channel_status=status_raw,
    )


def _taxes_included(order: dict[str, Any], before_tax: Money, tax: Money) -> bool:
    """Whether item prices include tax: read from ``OrderTotal`` when it tells (EU/JP prices include VAT,
    US prices do not), else from the marketplace."""
    reported = money(order.get("OrderTotal"))
    if reported is not None and not tax.is_zero() and reported.currency == before_tax.currency:
        if reported == before_tax:
            return True
        if reported == before_tax + tax:
            return False
    return str(order.get("MarketplaceId")) not in TAX_EXCLUSIVE_MARKETPLACES


def message_from_v0(connection: str, order: dict[str, Any], items: list[dict[str, Any]]) -> Message:
    """``OrderCancelled`` for a ``Canceled`` order (with the order when its items still map), else ``OrderUpserted``."""
    if order.get("OrderStatus") == "Canceled":
        try:
            full: Order | None = order_from_v0(connection, order, items)
        except MappingError:
            full = None  # cancelled items report QuantityOrdered 0: nothing to build, the cancellation stands
        return OrderCancelled(
            external_id=str(order["AmazonOrderId"]),
            reason="cancelled at Amazon",
            cancelled_at=parse_time(order.get("LastUpdateDate")),
            order=full,
        )
    return OrderUpserted(order=order_from_v0(connection, order, items))
