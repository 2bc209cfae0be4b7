"""Order holds: fraud screen, address validation, unpaid orders. Pure, no I/O.

:func:`screen` is the one entry point: it returns the :class:`hub.model.Hold` objects to place on an
order when it arrives, before allocation. The fraud part is a policy (the ``orderhub_screen_fraud``
hook); :func:`default_fraud_screen` is the built-in default registered in :mod:`hub.policies`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.clock import now as clock_now
from hub.config import AllocationConfig, HubConfig
from hub.model import Address, Hold, HoldKind, Order, PaymentStatus


@dataclass(frozen=True)
class FraudVerdict:
    """The fraud screen's answer: ``hold`` the order or not, and why (no PII in ``reason``)."""

    hold: bool
    reason: str = ""


FraudHook = Callable[..., Any]

UNPAID = frozenset({PaymentStatus.PENDING, PaymentStatus.VOIDED, PaymentStatus.UNKNOWN})


def _allocation(config: HubConfig | AllocationConfig) -> AllocationConfig:
    return config.allocation if isinstance(config, HubConfig) else config


def default_fraud_screen(
    order: Order, context: Mapping[str, Any], config: HubConfig | AllocationConfig
) -> FraudVerdict:
    """The ``[allocation]`` fraud rules, first match wins:

    1. the customer's email is in ``fraud_block_emails`` (case-insensitive);
    2. ``context["orders_by_email_today"]`` (orders from this email today, this one included) is above
       ``fraud_velocity_per_email_per_day``;
    3. the order's value is above ``fraud_max_value`` and the billing and shipping countries differ.
       The value is ``context["order_value"]`` when the caller converted it to the base currency,
       else the order's total in its own currency.
    """
    cfg = _allocation(config)
    email = (order.customer.email or "").strip().lower() if order.customer else ""
    if email and email in {e.strip().lower() for e in cfg.fraud_block_emails}:
        return FraudVerdict(True, "customer email is on the block list (fraud_block_emails)")
    count = int(context.get("orders_by_email_today", 0) or 0)
    if email and count > cfg.fraud_velocity_per_email_per_day:
        return FraudVerdict(
            True,
            f"{count} orders from the same email today, above fraud_velocity_per_email_per_day "
            f"= {cfg.fraud_velocity_per_email_per_day}",
        )
    value = Decimal(str(context.get("order_value", order.totals.total.amount)))
    ship, bill = order.shipping_address, order.billing_address
    if value > cfg.fraud_max_value and ship and bill and ship.country != bill.country:
        return FraudVerdict(
            True,
            f"order value {value} {order.currency} above fraud_max_value {cfg.fraud_max_value} "
            f"with billing country {bill.country} different from shipping country {ship.country}",
        )
    return FraudVerdict(False, "no fraud rule matched")


# Postal code formats (upper-cased input). Sources: USPS Publication 28 (ZIP, ZIP+4), Canada Post
# (A1A 1A1, no D F I O Q U; no W Z first), Royal Mail PAF (outward + inward code), Deutsche Post (5 digits),
# La Poste (5 digits), PostNL (4 digits + 2 letters), Japan Post (NNN-NNNN), Australia Post (4 digits).
POSTAL_CODE_FORMATS: dict[str, re.Pattern[str]] = {
    "US": re.compile(r"^\d{5}(-\d{4})?$"),
    "CA": re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d$"),
    "GB": re.compile(r"^([A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|GIR ?0AA)$"),
    "DE": re.compile(r"^\d{5}$"),
    "FR": re.compile(r"^\d{5}$"),
    "NL": re.compile(r"^[1-9]\d{3} ?[A-Z]{2}$"),
    "JP": re.compile(r"^\d{3}-?\d{4}$"),
    "AU": re.compile(r"^\d{4}$"),
}
#: Any other country: 2 to 10 letters, digits, spaces or hyphens, with at least one digit.
GENERIC_POSTAL_CODE = re.compile(r"^(?=.*\d)[A-Z0-9][A-Z0-9 \-]{1,9}$")

#: Countries without a postal-code system (after Google's libaddressinput address metadata); a
#: postal code is not required there and not checked. IE's Eircode is optional for delivery.
NO_POSTAL_CODE = frozenset(
    [
        "AE",
        "AG",
        "AN",
        "AO",
        "AW",
        "BF",
        "BI",
        "BJ",
        "BO",
        "BS",
        "BW",
        "BZ",
        "CD",
        "CF",
        "CG",
        "CI",
        "CK",
        "CM",
        "DJ",
        "DM",
        "ER",
        "FJ",
        "GA",
        "GD",
        "GH",
        "GM",
        "GQ",
        "GY",
        "HK",
        "IE",
        "KI",
        "KM",
        "KN",
        "KP",
        "LY",
        "ML",
        "MO",
        "MR",
        "MW",
        "NR",
        "NU",
        "QA",
        "RW",
        "SB",
        "SC",
        "SL",
        "SR",
        "ST",
        "SY",
        "TD",
        "TF",
        "TG",
        "TK",
        "TL",
        "TO",
        "TV",
        "UG",
        "VU",
        "YE",
        "ZW",
    ]
)


def postal_code_ok(country: str, postal_code: str) -> bool:
    """True when ``postal_code`` has the country's format (a generic rule for unlisted countries)."""
    code = postal_code.strip().upper()
    return bool(POSTAL_CODE_FORMATS.get(country, GENERIC_POSTAL_CODE).match(code))


def address_problems(address: Address | None) -> list[str]:
    """Why the address cannot be shipped to (empty when it can): required fields and postal code format."""
    if address is None:
        return ["no shipping address"]
    problems = [f"{name} is missing" for name in ("line1", "city") if not (getattr(address, name) or "").strip()]
    postal = (address.postal_code or "").strip()
    if not postal:
        if address.country not in NO_POSTAL_CODE:
            problems.append(f"postal_code is missing (required in {address.country})")
    elif not postal_code_ok(address.country, postal):
        problems.append(f"postal_code is not a valid {address.country} postal code (check the shipping address)")
    return problems


def payment_problem(order: Order, config: HubConfig | AllocationConfig) -> str | None:
    """Why the order waits for payment (``hold_unpaid`` and status pending, voided or unknown), else None."""
    if _allocation(config).hold_unpaid and order.payment_status in UNPAID:
        return f"payment is {order.payment_status.value}, not authorised (hold_unpaid = true)"
    return None


def screen(
    order: Order,
    context: Mapping[str, Any],
    config: HubConfig | AllocationConfig,
    fraud_hook: FraudHook | None = None,
) -> list[Hold]:
    """The holds to place on ``order``: fraud, address, payment, in that order.

    ``context``: facts the caller gathered (``orders_by_email_today``, optionally ``order_value``
    and ``now``, the hold time, default the hub clock). ``fraud_hook``: the ``orderhub_screen_fraud``
    hook caller (``pm.hook.orderhub_screen_fraud``), called as ``fraud_hook(order=, context=, config=)``;
    when it answers ``None`` (or is not given) :func:`default_fraud_screen` decides. A kind that
    already has an active hold on the order is not added again. Address validation is skipped for
    click & collect orders.
    """
    at: datetime = context.get("now") or clock_now()
    active = {h.kind for h in order.active_holds}
    holds: list[Hold] = []

    verdict = fraud_hook(order=order, context=context, config=config) if fraud_hook else None
    if verdict is None:
        verdict = default_fraud_screen(order, context, config)
    if verdict.hold:
        holds.append(Hold(kind=HoldKind.FRAUD, reason=verdict.reason or "held by the fraud screen", placed_at=at))

    if order.delivery_method == "ship":
        problems = address_problems(order.shipping_address)
        if problems:
            holds.append(Hold(kind=HoldKind.ADDRESS, reason="; ".join(problems), placed_at=at))

    why = payment_problem(order, config)
    if why:
        holds.append(Hold(kind=HoldKind.PAYMENT, reason=why, placed_at=at))
    return [h for h in holds if h.kind not in active]
