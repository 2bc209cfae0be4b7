"""Orders API v0 -> canonical order: ``prepare`` computes what a declarative mapping cannot (the unit price
inside a line total, the currency, whether prices include tax, totals), then ``mappings/amazon/order_v0.yaml``
maps the fields. Pure functions, no I/O. The 2026-01-01 API (camelCase, ``Money.amount`` a number) gets a
second mapping file and preparation next to these.

Source of every field name: amzn/selling-partner-api-models:models/orders-api-model/ordersV0.json
(definitions ``Order``, ``OrderItem``, ``Money``, ``Address``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from hub.errors import MappingError
from hub.mapping import MappingSet
from hub.model import Money, Order, minor_units, new_id
from hub.plugins import Message, OrderCancelled, OrderUpserted

API_VERSION = "v0"
SOURCE = "ordersV0.json"
#: The mapping file (``mappings/amazon/order_v0.yaml``) of this API version.
MAPPING = "order_v0"

#: Amazon ``OrderStatus`` values (ordersV0.json ``Order.OrderStatus``); their canonical status and payment
#: status are in ``mappings/amazon/order_v0.yaml``. ``Pending`` and ``PendingAvailability`` orders have not
#: been paid: they arrive with ``payment_status = pending`` and the hub's payment screening
#: (``[allocation] hold_unpaid = true``, the default) holds them until a later poll sees them ``Unshipped``.
#: No channel hold is used for them: the hub keeps stored holds across updates and would never lift it.
ORDER_STATUSES = (
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "Canceled",
    "Unfulfillable",
    "InvoiceUnconfirmed",
    "PendingAvailability",
)

#: Statuses that put a channel hold on the order (the reason shown to ops). Unfulfillable applies to
#: Multi-Channel Fulfillment (AFN) orders only, which are not polled by default.
HOLD_REASONS: dict[str, str] = {
    "Unfulfillable": "Amazon reports the order Unfulfillable (Multi-Channel Fulfillment); check it in Seller Central",
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


def _s(m: Money) -> str:
    return str(m.amount)


def prepare(order: dict[str, Any], items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload, context) for ``order_v0.yaml``: the order with its items under ``OrderItems`` (each with the
    computed ``_hub`` amounts), and the context (currency, taxes_included, shipping lines, totals, holds, tags)."""
    oid = str(order.get("AmazonOrderId") or "?")
    cur = _currency(order, items)
    enriched: list[dict[str, Any]] = []
    subtotal = tax_total = discount_total = Money.zero(cur)
    ship_price = ship_disc = ship_tax = Money.zero(cur)
    for it in items:
        qty = int(it.get("QuantityOrdered") or 0)
        if qty <= 0:  # a cancelled item reports QuantityOrdered 0; the mapping leaves it out
            enriched.append(it)
            continue
        price = _amount(it, "ItemPrice", cur)
        promo = _amount(it, "PromotionDiscount", cur)
        unit, rounding = split_line_price(price, qty)
        discount = rounding + promo
        tax = _amount(it, "ItemTax", cur) - _amount(it, "PromotionDiscountTax", cur)
        net = price - promo
        enriched.append(
            {
                **it,
                "_hub": {
                    "unit_price": _s(unit),
                    "discount": None if discount.is_zero() else _s(discount),
                    "tax_lines": []
                    if tax.is_zero()
                    else [{"title": "ItemTax", "rate": str(_effective_rate(tax, net)), "amount": _s(tax)}],
                },
            }
        )
        subtotal += net
        tax_total += tax
        discount_total += discount
        ship_price += _amount(it, "ShippingPrice", cur)
        ship_disc += _amount(it, "ShippingDiscount", cur)
        ship_tax += _amount(it, "ShippingTax", cur) - _amount(it, "ShippingDiscountTax", cur)
    shipping_lines: list[dict[str, Any]] = []
    if not (ship_price.is_zero() and ship_tax.is_zero()):
        shipping_lines.append(
            {
                "price": _s(ship_price),
                "discount": None if ship_disc.is_zero() else _s(ship_disc),
                "tax_lines": []
                if ship_tax.is_zero()
                else [
                    {
                        "title": "ShippingTax",
                        "rate": str(_effective_rate(ship_tax, ship_price - ship_disc)),
                        "amount": _s(ship_tax),
                    }
                ],
            }
        )
    shipping = ship_price - ship_disc
    tax_total += ship_tax
    discount_total += ship_disc
    taxes_included = _taxes_included(order, subtotal + shipping, tax_total)
    total = subtotal + shipping + (Money.zero(cur) if taxes_included else tax_total)
    status = str(order.get("OrderStatus"))
    tags = [f"amazon:{order.get('FulfillmentChannel') or 'MFN'}"]
    tags += [t for flag, t in (("IsPrime", "prime"), ("IsBusinessOrder", "business")) if order.get(flag)]
    context = {
        "order_id": oid,
        "currency": cur,
        "taxes_included": taxes_included,
        "shipping_lines": shipping_lines,
        "totals": {
            "subtotal": _s(subtotal),
            "shipping": _s(shipping),
            "tax": _s(tax_total),
            "discount": _s(discount_total),
            "total": _s(total),
        },
        "holds": [{"kind": "channel", "reason": HOLD_REASONS[status]}] if status in HOLD_REASONS else [],
        "tags": tags,
    }
    return {**order, "OrderItems": enriched}, context


def order_from_v0(
    connection: str,
    order: dict[str, Any],
    items: list[dict[str, Any]],
    *,
    mappings: MappingSet | None = None,
    order_id: str | None = None,
) -> Order:
    """The canonical order of one v0 ``Order`` and its ``OrderItem`` list (all pages), through
    ``mappings/amazon/order_v0.yaml`` (or the connection's override of ``order_v0``).

    Raises :class:`~hub.errors.MappingError` naming the mapping file, line, field and value.
    """
    payload, context = prepare(order, items)
    ms = mappings or MappingSet.for_connector("amazon")
    try:
        return ms.build(
            MAPPING, payload, Order, extra={"id": order_id or new_id("ord"), "connection": connection}, context=context
        )
    except MappingError as exc:
        raise MappingError(
            f"Amazon order {context['order_id']} ({connection}): {exc.detail}", errors=exc.errors
        ) from None


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


def message_from_v0(
    connection: str, order: dict[str, Any], items: list[dict[str, Any]], mappings: MappingSet | None = None
) -> Message:
    """``OrderCancelled`` for a ``Canceled`` order (with the order when its items still map), else ``OrderUpserted``."""
    if order.get("OrderStatus") == "Canceled":
        try:
            full: Order | None = order_from_v0(connection, order, items, mappings=mappings)
        except MappingError:
            full = None  # cancelled items report QuantityOrdered 0: nothing to build, the cancellation stands
        return OrderCancelled(
            external_id=str(order["AmazonOrderId"]),
            reason="cancelled at Amazon",
            cancelled_at=parse_time(order.get("LastUpdateDate")),
            order=full,
        )
    return OrderUpserted(order=order_from_v0(connection, order, items, mappings=mappings))
