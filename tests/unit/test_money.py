from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.errors import CurrencyMismatch
from hub.model import Money, minor_units

CURRENCIES = ["EUR", "USD", "JPY", "KWD", "GBP", "BHD", "CLP"]
amounts = st.decimals(
    min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False, places=6
)


def test_rounds_to_minor_units_per_currency() -> None:
    assert Money.of("12.345", "EUR").amount == Decimal("12.35")
    assert Money.of("1234.5", "JPY").amount == Decimal("1235")
    assert Money.of("1.2345", "KWD").amount == Decimal("1.235")
    assert Money.of("7", "EUR").to_json() == {"amount": "7.00", "currency": "EUR"}


@pytest.mark.parametrize("bad", [1.5, 0.1, float("nan")])
def test_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValidationError, match="never floats"):
        Money(amount=bad, currency="EUR")  # type: ignore[arg-type]


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        Money.of("1", "EURO")


def test_mixing_currencies_raises() -> None:
    with pytest.raises(CurrencyMismatch, match="EUR and USD"):
        Money.of("1", "EUR") + Money.of("1", "USD")


def test_multiplying_by_float_is_refused() -> None:
    with pytest.raises(TypeError):
        Money.of("1", "EUR") * 1.5  # type: ignore[operator]


@given(st.sampled_from(CURRENCIES), amounts)
def test_rounding_has_currency_exponent(cur: str, amount: Decimal) -> None:
    m = Money.of(amount, cur)
    assert -m.amount.as_tuple().exponent == minor_units(cur)  # type: ignore[operator]
    assert abs(m.amount - amount) <= Decimal(1).scaleb(-minor_units(cur)) / 2


@given(st.sampled_from(CURRENCIES), st.lists(st.integers(-(10**9), 10**9), max_size=30))
def test_sums_are_exact(cur: str, units: list[int]) -> None:
    total = Money.sum((Money.from_minor(u, cur) for u in units), cur)
    assert total.minor == sum(units)


@given(
    st.sampled_from(CURRENCIES), st.integers(-(10**7), 10**7), st.lists(st.integers(0, 1000), min_size=1, max_size=12)
)
def test_allocate_sums_back_exactly(cur: str, units: int, weights: list[int]) -> None:
    m = Money.from_minor(units, cur)
    parts = m.allocate(weights)
    assert len(parts) == len(weights)
    assert Money.sum(parts, cur) == m
    assert max(p.minor for p in parts) - min(p.minor for p in parts) <= abs(units)


def test_allocate_is_deterministic_with_remainder_to_first() -> None:
    parts = Money.of("100", "JPY").allocate([1, 1, 1])
    assert [p.amount for p in parts] == [Decimal(34), Decimal(33), Decimal(33)]
