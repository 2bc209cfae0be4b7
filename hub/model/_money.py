"""Money: a Decimal amount in the minor units of an ISO 4217 currency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pycountry
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from hub.errors import CurrencyMismatch

# ISO 4217 currencies whose minor unit is not 2 decimals (source: ISO 4217 list, SIX Financial).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4,
    "UYW": 4,
}


@lru_cache(maxsize=512)
def is_currency(code: str) -> bool:
    """True when ``code`` is an active ISO 4217 alphabetic code."""
    return len(code) == 3 and pycountry.currencies.get(alpha_3=code) is not None


def minor_units(currency: str) -> int:
    """Decimals of the currency's minor unit: JPY 0, EUR 2, KWD 3."""
    return _EXPONENTS.get(currency, 2)


@lru_cache(maxsize=512)
def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def to_decimal(value: Any) -> Decimal:
    """Parse a string, int or Decimal into a Decimal; floats are refused."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"money amounts must be strings or Decimals, never floats (got {value!r})")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, (int, str)):
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
    else:
        raise ValueError(f"not a money amount: {value!r}")
    if not d.is_finite():
        raise ValueError(f"money amount must be finite (got {value!r})")
    return d


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor units; never returns negative zero."""
    q = amount.quantize(_quantum(currency), ROUND_HALF_UP)
    return q if q else q.copy_abs()


class Money(BaseModel):
    """An amount of a currency, exact, rounded half-up to the currency's minor units.

    JSON: ``{"amount": "12.34", "currency": "EUR"}``. Floats are refused; arithmetic between
    two currencies raises :class:`~hub.errors.CurrencyMismatch`.
    """

    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str

    @field_validator("amount", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Decimal:
        return to_decimal(v)

    @field_validator("currency", mode="before")
    @classmethod
    def _iso_currency(cls, v: Any) -> str:
        if not isinstance(v, str) or not is_currency(v.upper()):
            raise ValueError(f"not an ISO 4217 currency code: {v!r}")
        return v.upper()

    @model_validator(mode="after")
    def _round(self) -> Money:
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))
        return self

    # construction helpers -------------------------------------------------
    @classmethod
    def of(cls, amount: Any, currency: str) -> Money:
        """``Money.of("12.34", "EUR")``."""
        return cls(amount=amount, currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """From an integer count of minor units: ``from_minor(1234, "EUR")`` is 12.34 EUR."""
        return cls(amount=Decimal(units).scaleb(-minor_units(currency)), currency=currency)

    @classmethod
    def sum(cls, items: Iterable[Money], currency: str) -> Money:
        """Exact sum; an empty iterable gives zero of ``currency``."""
        total = cls.zero(currency)
        for m in items:
            total = total + m
        return total

    # arithmetic -----------------------------------------------------------
    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} and {other.currency}; convert one first",
                left=self.currency,
                right=other.currency,
            )

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, (float, bool)) or not isinstance(factor, (int, Decimal)):
            raise TypeError("Money can be multiplied by an int or a Decimal only")
        return Money(amount=self.amount * factor, currency=self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._check(other)
        return self.amount >= other.amount

    def to_json(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    @property
    def minor(self) -> int:
        """The amount as an integer count of minor units."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    def is_zero(self) -> bool:
        return self.amount.is_zero()

    def allocate(self, weights: Sequence[int | Decimal]) -> list[Money]:
        """Split into parts proportional to ``weights`` that sum exactly to this amount.

        Largest-remainder method in minor units; ties go to the earliest part, so the result
        is deterministic.
        """
        if not weights:
            raise ValueError("allocate needs at least one weight")
        ws = [Decimal(w) for w in weights]
        if any(w < 0 for w in ws):
            raise ValueError("weights must not be negative")
        total_w = sum(ws)
        units = self.minor
        if total_w == 0:
            ws = [Decimal(1)] * len(ws)
            total_w = Decimal(len(ws))
        sign = -1 if units < 0 else 1
        units = abs(units)
        raw = [Decimal(units) * w / total_w for w in ws]
        floors = [int(r) for r in raw]
        rest = units - sum(floors)
        order = sorted(range(len(ws)), key=lambda i: (-(raw[i] - floors[i]), i))
        for i in order[:rest]:
            floors[i] += 1
        return [Money.from_minor(sign * f, self.currency) for f in floors]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
