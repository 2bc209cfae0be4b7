from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from hub.config import HubConfig, Settings
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.sync import inbox, jobs
from tests.conftest import _fresh_pg
from tests.sync import toy

SECRET = "toy-secret-123"
OPS_TOKEN = "ops-token-0123456789"
READ_TOKEN = "read-token-0123456789"

CONFIG: dict[str, Any] = {
    "locations": [
        {
            "id": "w1",
            "name": "Berlin",
            "country": "DE",
            "latitude": 52.52,
            "longitude": 13.40,
            "fulfilled_by": "wms",
            "priority": 1,
        },
    ],
    "connections": [
        {"id": "shop", "connector": "toy-channel", "settings": {"secret": SECRET}, "rate_per_second": 1000},
        {"id": "wms", "connector": "toy-wms", "settings": {"secret": SECRET}, "rate_per_second": 1000},
    ],
    "api_tokens": [
        {"name": "ops", "scopes": ["read", "ops"], "token": OPS_TOKEN},
        {"name": "reader", "scopes": ["read"], "token": READ_TOKEN},
    ],
    "queue": {"lease_seconds": 5, "max_tries": 4, "inventory_push_delay_seconds": 0.5},
    "allocation": {"hold_unpaid": True},
}


def make_router() -> respx.Router:
    router = respx.Router(assert_all_called=False)
    router.post(url__regex=r".*/inventory$", name="inventory").respond(200, json={})
    router.post(url__regex=r"https://toy-wms\.test/orders$", name="wms_orders").respond(201, json={"id": "WMS-1"})
    router.post(url__regex=r".*/fulfillments$", name="fulfillments").respond(200, json={})
    router.post(url__regex=r".*/cancel$", name="cancel").respond(200, json={})
    return router


@pytest.fixture
def router() -> respx.Router:
    return make_router()


async def open_hub(
    pg_url: str,
    redis_url: str,
    redis_prefix: str,
    config: dict[str, Any],
    router: respx.Router,
    *,
    plugins: str = "tests.sync.toy",
) -> Hub:
    """A hub on a fresh database of the real PostgreSQL and on Redis, with the toy plugins (and
    ``plugins``) loaded and outbound HTTP answered by ``router``."""
    store = await _fresh_pg(pg_url)
    await store.close()
    toy.STRICT["on"] = True
    settings = Settings(database_url=pg_url, redis_url=redis_url, redis_prefix=redis_prefix, plugins=plugins)
    return await Hub.open(
        settings,
        HubConfig.model_validate(config),
        migrate=False,
        http_transport=httpx.MockTransport(router.async_handler),
    )


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router) -> AsyncIterator[Hub]:
    """A hub on the real PostgreSQL and Redis, with the toy channel ('shop') and 3PL ('wms')."""
    h = await open_hub(pg_url, redis_url, redis_prefix, CONFIG, router)
    async with h.store.begin() as conn:
        await inv.adjust(conn, "SKU-1", "w1", 100, cause="receipt")
    yield h
    await h.close()


def webhook(doc: dict[str, Any], secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = json.dumps(doc).encode()
    return {"X-Toy-Signature": toy.sign(secret, body), "Content-Type": "application/json"}, body


async def drain(h: Hub, rounds: int = 50) -> None:
    """Run the worker's loop in-process until nothing is due."""
    for _ in range(rounds):
        n = await inbox.process_batch(h) + await jobs.run_batch(h)
        if n == 0:
            return
    raise AssertionError("work did not drain")


async def eventually(check: Callable[[], Awaitable[bool]], limit_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while loop.time() < end:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def burst_worker(
    functions: list[Any], redis_url: str, prefix: str, *, ctx: dict[str, Any] | None = None, poll_delay: float = 0.05
) -> Any:
    """An arq worker of the hub's queue ``prefix`` that runs what is queued (and due) and returns."""
    from arq.worker import Worker

    from hub.redis_urls import arq_settings
    from hub.sync.queue import queue_name

    return Worker(
        functions=functions,
        redis_settings=arq_settings(redis_url),
        queue_name=queue_name(prefix),
        burst=True,
        poll_delay=poll_delay,
        handle_signals=False,
        keep_result=0,
        ctx=ctx,
    )
