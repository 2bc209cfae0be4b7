"""A hub on the real PostgreSQL and Redis with the sync tests' toy channel ('shop') and 3PL ('wms'),
and helpers to log in to the console."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api import make_app
from hub.runtime import Hub
from hub.store import inventory as inv
from tests.sync import toy
from tests.sync.conftest import CONFIG, OPS_TOKEN, READ_TOKEN, make_router, open_hub

__all__ = ["OPS_TOKEN", "READ_TOKEN", "csrf_of", "login"]

CONSOLE_CONFIG: dict[str, Any] = {
    **copy.deepcopy(CONFIG),
    "webhooks": {"allow_private_targets": True, "retry_schedule": [], "timeout_seconds": 2},
}


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[Hub]:
    """Toy connections on the real PostgreSQL and Redis; 100 units of SKU-1 at w1."""
    h = await open_hub(pg_url, redis_url, redis_prefix, CONSOLE_CONFIG, make_router())
    async with h.store.begin() as conn:
        await inv.adjust(conn, "SKU-1", "w1", 100, cause="receipt")
    yield h
    toy.STRICT["on"] = True
    await h.close()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(hub))) as c:
        yield c


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a console page."""
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def login(client: TestClient[Any, Any], token: str) -> str:
    """Log in; returns the dashboard's HTML."""
    r = await client.post("/console/login", data={"token": token, "next": "/console/"}, allow_redirects=True)
    assert r.status == 200, await r.text()
    return await r.text()
