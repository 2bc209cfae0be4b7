"""Named value transforms of the mapping language: each takes a raw payload value and returns a
canonical Python value, or raises :class:`TransformError` with a reason a person can act on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pycountry

from hub.model import is_currency, quantize


class TransformError(ValueError):
    """A payload value that a transform cannot convert."""


def to_decimal(value: Any) -> Decimal:
    """A Decimal from a decimal string, an int or a JSON number (read by its shortest decimal text,
    so the float ``0.06`` becomes ``Decimal("0.06")``, never ``0.059999...``)."""
    if isinstance(value, str):  # the usual case first: JSON amounts are text
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise TransformError(f"expected a decimal number, got {value!r}") from None
    elif isinstance(value, bool):
        raise TransformError(f"expected a decimal number, got the boolean {value!r}")
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, float):
        d = Decimal(repr(value))
    elif isinstance(value, int):
        d = Decimal(value)
    else:
        raise TransformError(f"expected a decimal number, got {type(value).__name__} {value!r}")
    if not d.is_finite():
        raise TransformError(f"expected a finite decimal number, got {value!r}")
    return d


def decimal_sum(value: Any) -> Decimal:
    """The exact sum of a list of decimal values (an empty list or null gives 0); a scalar is itself."""
    if value is None:
        return Decimal(0)
    if isinstance(value, list):
        total = Decimal(0)
        for v in value:
            if v is not None:
                total += to_decimal(v)
        return total
    return to_decimal(value)


def to_money(amount: Any, currency: Any) -> dict[str, Any]:
    """``{"amount": Decimal, "currency": "EUR"}`` rounded to the currency's minor units."""
    cur = _currency(currency) if isinstance(currency, str) else None
    if cur is None:
        raise TransformError(f"not an ISO 4217 currency code: {currency!r}")
    return {"amount": quantize(to_decimal(amount), cur), "currency": cur}


@lru_cache(maxsize=1024)
def _currency(text: str) -> str | None:
    """The ISO 4217 code ``text`` names (any case), or None."""
    code = text.upper()
    return code if is_currency(code) else None


def to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise TransformError(f"expected a text value, got {type(value).__name__} {value!r}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TransformError(f"expected a whole number, got the boolean {value!r}")
    if isinstance(value, int):
        return value
    try:
        d = to_decimal(value)
    except TransformError:
        raise TransformError(f"expected a whole number, got {value!r}") from None
    if d != d.to_integral_value():
        raise TransformError(f"expected a whole number, got {value!r}")
    return int(d)


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise TransformError(f"expected true/false, got {value!r}")


def to_datetime(value: Any) -> datetime:
    """ISO-8601 text (``Z`` or an offset; a naive time is taken as UTC) or Unix epoch seconds
    (a number above 10^11 is taken as milliseconds)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        seconds = float(value)
        if abs(seconds) > 1e11:
            seconds /= 1000.0
        return datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return to_datetime(to_decimal(text))
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise TransformError(f"not an ISO-8601 date-time or epoch: {value!r}") from None
    else:
        raise TransformError(f"not an ISO-8601 date-time or epoch: {value!r}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@lru_cache(maxsize=1024)
def _country(text: str) -> str | None:
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


def to_country(value: Any) -> str:
    """ISO 3166-1 alpha-2 from an alpha-2 or alpha-3 code or an English country name."""
    if not isinstance(value, str) or not value.strip():
        raise TransformError(f"expected a country code or name, got {value!r}")
    code = _country(value.strip())
    if code is None:
        raise TransformError(f"unknown country {value!r} (use ISO 3166 alpha-2/alpha-3 or the English name)")
    return code


def split_list(value: Any, separator: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; a list is kept (its items as text)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [to_string(v) for v in value if v not in (None, "")]
    return [part.strip() for part in to_string(value).split(separator) if part.strip()]


#: The ``type:`` names of the mapping language and their converters (money is handled by the engine).
TYPES: dict[str, Callable[[Any], Any]] = {
    "string": to_string,
    "int": to_int,
    "bool": to_bool,
    "decimal": to_decimal,
    "datetime": to_datetime,
    "country": to_country,
}
