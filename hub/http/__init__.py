"""Outbound HTTP: one ``httpx.AsyncClient`` per connection, over the httpx-aiohttp transport.

``client_for(connector)`` is what the runtime calls; connectors use ``self.http`` (a
:class:`HubClient`, an ``httpx.AsyncClient``) and never build their own::

    response = await hub.http.call(self.http, "POST", "/inventory_levels/set.json", json=body)

``call`` retries timeouts, connection errors, 429 and 5xx (honouring ``Retry-After`` and
``x-retry-after``) and raises :class:`hub.errors.RetriableError` / :class:`hub.errors.FatalError`
with redacted request/response snapshots. Plain ``self.http.get(...)`` works as in httpx for
connectors that read statuses themselves; both go through the connection's Redis rate limiter
(shared by every worker) and log one redacted line per request. See docs/http.md.
"""

from __future__ import annotations

from hub.http._call import RETRY_STATUSES, call
from hub.http._client import ConnectionTransport, HubClient, RetryPolicy, client_for
from hub.http._limiter import RateLimiter
from hub.http._redact import redact_headers, redact_url, request_snapshot, response_snapshot
from hub.http._retry_after import rate_limit_header, retry_after

__all__ = [
    "RETRY_STATUSES",
    "ConnectionTransport",
    "HubClient",
    "RateLimiter",
    "RetryPolicy",
    "call",
    "client_for",
    "rate_limit_header",
    "redact_headers",
    "redact_url",
    "request_snapshot",
    "response_snapshot",
    "retry_after",
]
