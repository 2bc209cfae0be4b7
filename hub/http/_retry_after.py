"""Reading the throttling headers of the systems we call."""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def _seconds(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs or secs in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, secs)


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` (seconds such as ``2.0``, or an HTTP date,
    RFC 9110 10.2.3) or ShipBob's ``x-retry-after`` (seconds); ``None`` when absent or unreadable."""
    for name in ("retry-after", "x-retry-after"):
        secs = _seconds(headers.get(name), now)
        if secs is not None:
            return secs
    return None


def rate_limit_header(headers: Mapping[str, str]) -> float | None:
    """The request rate (per second) the API says applies: Amazon SP-API's ``x-amzn-RateLimit-Limit``."""
    raw = headers.get("x-amzn-ratelimit-limit")
    if not raw:
        return None
    try:
        rate = float(raw.strip())
    except ValueError:
        return None
    return rate if 0 < rate < 1e6 else None
