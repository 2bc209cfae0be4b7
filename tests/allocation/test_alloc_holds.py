from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from alloc_factories import order

from hub import policies
from hub.config import AllocationConfig, HubConfig
from hub.holds import FraudVerdict, address_problems, default_fraud_screen, postal_code_ok, screen
from hub.model import Address, Hold, HoldKind, PaymentStatus
from hub.plugins.manager import PluginManager, hookimpl

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
CFG = AllocationConfig(
    fraud_max_value=Decimal("500"), fraud_velocity_per_email_per_day=3, fraud_block_emails=["Bad@Example.com"]
)
DE = {"line1": "Alexanderplatz 1", "city": "Berlin", "postal_code": "10178", "country": "DE"}
US = {"line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"}


def kinds(holds: list[Hold]) -> list[HoldKind]:
    return [h.kind for h in holds]


def test_a_clean_order_gets_no_hold() -> None:
    o = order([("A", 1)], customer={"email": "ok@example.com"}, billing_address=DE)
    assert screen(o, {"orders_by_email_today": 1, "now": NOW}, CFG) == []


def test_high_value_with_billing_and_shipping_countries_differing_is_held_for_fraud() -> None:
    o = order([("A", 1)], unit_price="600.00", billing_address=US)
    holds = screen(o, {"now": NOW}, CFG)
    assert kinds(holds) == [HoldKind.FRAUD]
    assert "billing country US different from shipping country DE" in holds[0].reason
    assert holds[0].placed_at == NOW


def test_high_value_with_the_same_country_or_low_value_with_a_mismatch_passes() -> None:
    assert not default_fraud_screen(order([("A", 1)], unit_price="600.00", billing_address=DE), {}, CFG).hold
    assert not default_fraud_screen(order([("A", 1)], unit_price="400.00", billing_address=US), {}, CFG).hold


def test_a_converted_order_value_in_the_context_is_used() -> None:
    o = order([("A", 1)], unit_price="400.00", billing_address=US)
    assert default_fraud_screen(o, {"order_value": Decimal("650")}, CFG).hold


def test_velocity_per_email_above_the_limit_is_held() -> None:
    o = order([("A", 1)], customer={"email": "fast@example.com"})
    assert not default_fraud_screen(o, {"orders_by_email_today": 3}, CFG).hold
    verdict = default_fraud_screen(o, {"orders_by_email_today": 4}, CFG)
    assert verdict.hold and "4 orders from the same email today" in verdict.reason
    assert "fast@example.com" not in verdict.reason  # no PII in reasons


def test_blocked_email_is_held_case_insensitively() -> None:
    o = order([("A", 1)], customer={"email": " bad@EXAMPLE.com"})
    verdict = default_fraud_screen(o, {}, HubConfig(allocation=CFG))
    assert verdict == FraudVerdict(True, "customer email is on the block list (fraud_block_emails)")


def test_a_fraud_plugin_answers_before_the_default() -> None:
    class Lenient:
        @hookimpl
        def orderhub_screen_fraud(self, order: Any, context: Any, config: Any) -> FraudVerdict:
            return FraudVerdict(False, "trusted customer")

    pm = PluginManager()
    pm.register(policies, name="orderhub.defaults")
    o = order([("A", 1)], customer={"email": "bad@example.com"})
    assert kinds(screen(o, {"now": NOW}, CFG, pm.hook.orderhub_screen_fraud)) == [HoldKind.FRAUD]
    pm.register(Lenient())
    assert screen(o, {"now": NOW}, CFG, pm.hook.orderhub_screen_fraud) == []


def test_a_fraud_hook_answering_none_falls_back_to_the_default() -> None:
    o = order([("A", 1)], customer={"email": "bad@example.com"})
    assert kinds(screen(o, {"now": NOW}, CFG, lambda **_: None)) == [HoldKind.FRAUD]


@pytest.mark.parametrize(
    ("country", "good", "bad"),
    [
        ("US", ["62701", "62701-1234"], ["6270", "62701-12", "ABCDE"]),
        ("CA", ["K1A 0B1", "k1a0b1"], ["D1A 0B1", "K1A 0B", "12345"]),
        ("GB", ["SW1A 1AA", "EC1A1BB", "M1 1AE", "B33 8TH", "GIR 0AA"], ["SW1A", "1AA SW1", "12345"]),
        ("DE", ["10178", "01067"], ["1017", "101789", "D-10178"]),
        ("FR", ["75001", "97400"], ["7500", "750011"]),
        ("NL", ["1012 AB", "1012AB"], ["0123 AB", "1012 A", "12345"]),
        ("JP", ["100-0001", "1000001"], ["100-001", "ABC-DEFG"]),
        ("AU", ["2000", "0800"], ["200", "20000"]),
        ("BR", ["01310-100"], ["X", "ABCDEF", "12345678901"]),
    ],
)
def test_postal_code_formats(country: str, good: list[str], bad: list[str]) -> None:
    assert all(postal_code_ok(country, c) for c in good), good
    assert not any(postal_code_ok(country, c) for c in bad), bad


def test_address_problems_list_every_missing_field() -> None:
    assert address_problems(None) == ["no shipping address"]
    assert address_problems(Address(country="DE")) == [
        "line1 is missing",
        "city is missing",
        "postal_code is missing (required in DE)",
    ]
    assert address_problems(Address(**{**DE, "postal_code": "1017"})) == [
        "postal_code is not a valid DE postal code (check the shipping address)"
    ]


def test_countries_without_postal_codes_do_not_need_one() -> None:
    assert address_problems(Address(line1="Sheikh Zayed Rd 1", city="Dubai", country="AE")) == []


def test_an_invalid_shipping_address_is_held_but_not_for_click_and_collect() -> None:
    bad = {"line1": "", "city": "Berlin", "postal_code": "10178", "country": "DE"}
    holds = screen(order([("A", 1)], ship_to=bad), {"now": NOW}, CFG)
    assert kinds(holds) == [HoldKind.ADDRESS] and holds[0].reason == "line1 is missing"
    pickup = order([("A", 1)], ship_to=bad, delivery_method="pickup", pickup_location="store")
    assert screen(pickup, {"now": NOW}, CFG) == []


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.VOIDED, PaymentStatus.UNKNOWN])
def test_unpaid_orders_are_held_when_hold_unpaid(status: PaymentStatus) -> None:
    o = order([("A", 1)], payment_status=status)
    holds = screen(o, {"now": NOW}, CFG)
    assert kinds(holds) == [HoldKind.PAYMENT] and status.value in holds[0].reason
    assert screen(o, {"now": NOW}, AllocationConfig(hold_unpaid=False)) == []


@pytest.mark.parametrize("status", [PaymentStatus.AUTHORIZED, PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID])
def test_authorised_or_paid_orders_are_not_held(status: PaymentStatus) -> None:
    assert screen(order([("A", 1)], payment_status=status), {"now": NOW}, CFG) == []


def test_holds_of_a_kind_already_active_are_not_added_again_and_several_kinds_add_up() -> None:
    o = order([("A", 1)], unit_price="900.00", billing_address=US, payment_status="pending", ship_to={**DE, "city": ""})
    assert kinds(screen(o, {"now": NOW}, CFG)) == [HoldKind.FRAUD, HoldKind.ADDRESS, HoldKind.PAYMENT]
    held = o.model_copy(update={"holds": [Hold(kind=HoldKind.PAYMENT, reason="x", placed_at=NOW)]})
    assert kinds(screen(held, {"now": NOW}, CFG)) == [HoldKind.FRAUD, HoldKind.ADDRESS]
