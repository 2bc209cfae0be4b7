"""A hub wired to Amazon, ShipBob and EasyPost over respx mocks, on the real PostgreSQL and Redis.

Every outbound request goes through the connections' own clients (``hub.http.client_for``: rate limiter in
Redis, retries, redaction) into one respx router; a request no route matches fails loudly
(``assert_all_mocked``), so the test sees every call the hub makes. Payloads are built from the connectors'
fixtures (real formats, sources in each fixtures/README.md) with only values changed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from hub.config import HubConfig, Settings
from hub.http import RetryPolicy
from hub.runtime import Hub
from hub.store.tables import sync_jobs as J
from hub.sync import inbox, jobs
from tests.conftest import _fresh_pg

FIXTURES = Path(__file__).resolve().parents[1] / "connectors"

LWA_URL = "https://lwa.amazon.test/auth/o2/token"
SP_API = "https://sellingpartnerapi-na.amazon.test"
SHIPBOB_API = "https://api.shipbob.test/2026-07"
EASYPOST_API = "https://api.easypost.test/v2"

SHIPBOB_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example secret
EASYPOST_SECRET = "e2e-easypost-webhook-secret"
SHIPBOB_TOKEN = "shipbob-pat-e2e-0123456789"
AMAZON_CLIENT_SECRET = "amzn-lwa-client-secret-e2e"
AMAZON_REFRESH_TOKEN = "Atzr|e2e-refresh-token"
AMAZON_ACCESS_TOKEN = "Atza|e2e-access-token"

MARKETPLACE = "ATVPDKIKX0DER"
SELLER_ID = "A2SELLER0E2E"
FC_ID = 27  # the ShipBob fulfillment center that is hub location shipbob-ca (any id: it only has to match)

CONFIG: dict[str, Any] = {
    "locations": [
        {
            "id": "shipbob-ca",
            "name": "ShipBob Moreno Valley (CA)",
            "kind": "3pl",
            "country": "US",
            "postal_code": "92551",
            "latitude": 33.94,
            "longitude": -117.23,
            "priority": 1,
            "fulfilled_by": "shipbob",
        }
    ],
    "connections": [
        {
            "id": "amazon",
            "connector": "amazon",
            "settings": {
                "client_id": "amzn1.application-oa2-client.e2e",
                "client_secret": AMAZON_CLIENT_SECRET,
                "refresh_token": AMAZON_REFRESH_TOKEN,
                "marketplace_id": MARKETPLACE,
                "seller_id": SELLER_ID,
                "region": "na",
                "base_url": SP_API,
                "lwa_url": LWA_URL,
            },
        },
        {
            "id": "shipbob",
            "connector": "shipbob",
            "settings": {
                "access_token": SHIPBOB_TOKEN,
                "webhook_secret": SHIPBOB_SECRET,
                "channel_id": 100102,
                "base_url": SHIPBOB_API,
                "fulfillment_center_map": {"shipbob-ca": FC_ID},
            },
        },
        {
            "id": "easypost",
            "connector": "easypost",
            "settings": {"api_key": "EZTK-e2e-api-key", "webhook_secret": EASYPOST_SECRET, "base_url": EASYPOST_API},
        },
    ],
    "queue": {"lease_seconds": 5, "max_tries": 3},
}


def fixture(connector: str, name: str) -> Any:
    """A connector fixture (tests/connectors/<connector>/fixtures/<name>), parsed."""
    return json.loads((FIXTURES / connector / "fixtures" / name).read_text())


@pytest.fixture
def router() -> respx.Router:
    """The external systems; tests add their routes. Unmatched requests raise inside the hub's call."""
    return respx.Router(assert_all_called=False, assert_all_mocked=True)


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router) -> AsyncIterator[Hub]:
    """A hub on a truncated test database and a private Redis prefix, talking to ``router``."""
    store = await _fresh_pg(pg_url)
    await store.close()
    settings = Settings(database_url=pg_url, redis_url=redis_url, redis_prefix=redis_prefix)
    h = await Hub.open(
        settings,
        HubConfig.model_validate(CONFIG),
        migrate=False,
        http_transport=httpx.MockTransport(router.async_handler),
        http_options={"retry": RetryPolicy(attempts=1, initial=0.01, max_backoff=0.01, budget=0.0)},
    )
    yield h
    await h.close()


async def drain(h: Hub, rounds: int = 50) -> None:
    """Run the worker's loop in-process until nothing is due now."""
    for _ in range(rounds):
        n = await inbox.process_batch(h) + await jobs.run_batch(h)
        if n == 0:
            return
    raise AssertionError("work did not drain")


async def settle(h: Hub, limit_s: float = 8.0) -> None:
    """Drain, then wait for delayed jobs (coalesced inventory pushes are due 0.5 s later) until none is left."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while True:
        await drain(h)
        async with h.store.connect() as conn:
            due = await jobs.next_due_in(conn)
        if due is None:
            return
        if loop.time() + due > end:
            async with h.store.connect() as conn:
                rows = (
                    await conn.execute(select(J.c.connection, J.c.operation, J.c.errors).where(J.c.status == "pending"))
                ).all()
            waiting = "; ".join(f"{r.connection} {r.operation}: {(r.errors or [{}])[-1].get('error')}" for r in rows)
            raise AssertionError(f"sync jobs still pending, the next {due:.1f}s from now: {waiting}")
        await asyncio.sleep(due + 0.02)
