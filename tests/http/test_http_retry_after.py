from __future__ import annotations

from email.utils import formatdate

import httpx

from hub.http import rate_limit_header, retry_after


def test_retry_after_reads_seconds_as_shopify_sends_them() -> None:
    # Shopify REST 429: "Retry-After: 2.0" (FORMATS.md 1.5)
    assert retry_after(httpx.Headers({"Retry-After": "2.0"})) == 2.0


def test_retry_after_reads_an_http_date() -> None:
    now = 1_800_000_000.0
    assert retry_after(httpx.Headers({"Retry-After": formatdate(now + 30, usegmt=True)}), now=now) == 30.0


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    now = 1_800_000_000.0
    assert retry_after(httpx.Headers({"Retry-After": formatdate(now - 30, usegmt=True)}), now=now) == 0.0


def test_shipbob_x_retry_after_is_honoured() -> None:
    # ShipBob 429: x-retry-after (seconds) and x-remaining-calls (FORMATS.md 3.1)
    assert retry_after(httpx.Headers({"x-retry-after": "25", "x-remaining-calls": "0"})) == 25.0


def test_unreadable_or_missing_retry_after_is_none() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


def test_amazon_rate_limit_header_gives_the_rate() -> None:
    # SP-API responses carry x-amzn-RateLimit-Limit, e.g. getOrders 0.0167 req/s (FORMATS.md 2.1)
    assert rate_limit_header(httpx.Headers({"x-amzn-RateLimit-Limit": "0.0167"})) == 0.0167
    assert rate_limit_header(httpx.Headers({"x-amzn-RateLimit-Limit": "n/a"})) is None
