"""A return requested in Shopify reaches the hub: the signed ``returns/request`` webhook goes through
``inbox.accept`` and processing and creates the return of the shipped order, once.

The order is Shopify's documented example order 450789469 (``orders/create``) and the return is
tests/connectors/shopify/fixtures/returns_request.json (see the README there); the order ships through
the toy 3PL's signed webhook (tests/sync/toy.py), on the real PostgreSQL and Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from sqlalchemy import select

from hub.config import HubConfig, Settings
from hub.model import Return, ReturnStatus
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import tables as t
from hub.sync import inbox
from tests.conftest import _fresh_pg
from tests.returns_service.conftest import run_inbox, ship
from tests.sync import toy
from tests.sync.conftest import SECRET, make_router

FIXTURES = Path(__file__).parents[1] / "connectors" / "shopify" / "fixtures"
SHOPIFY_SECRET = "shpss_return_test_secret"
CONFIG: dict[str, Any] = {
    "locations": [
        {
            "id": "w1",
            "name": "Louisville",
            "country": "US",
            "latitude": 38.25,
            "longitude": -85.76,
            "fulfilled_by": "wms",
            "priority": 1,
        },
    ],
    "connections": [
        {
            "id": "shopify",
            "connector": "shopify",
            "settings": {
                "shop_domain": "test-shop.myshopify.com",
                "access_token": "shpat_return_test",
                "client_secret": SHOPIFY_SECRET,
                "location_map": {"w1": "655441491"},
            },
            "rate_per_second": 1000,
        },
        {"id": "wms", "connector": "toy-wms", "settings": {"secret": SECRET}, "rate_per_second": 1000},
    ],
    "returns": {"window_days": 30},
}


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[Hub]:
    """The hub with a Shopify connection and the toy 3PL; 10 of each SKU of order 450789469 at w1."""
    store = await _fresh_pg(pg_url)
    await store.close()
    toy.STRICT["on"] = True
    router: respx.Router = make_router()
    settings = Settings(database_url=pg_url, redis_url=redis_url, redis_prefix=redis_prefix, plugins="tests.sync.toy")
    h = await Hub.open(
        settings,
        HubConfig.model_validate(CONFIG),
        migrate=False,
        http_transport=httpx.MockTransport(router.async_handler),
    )
    async with h.store.begin() as conn:
        for sku in ("IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"):
            await inv.adjust(conn, sku, "w1", 10, cause="receipt")
    yield h
    await h.close()


def delivery(name: str) -> tuple[dict[str, str], bytes]:
    """The fixture's body and Shopify headers, signed with the connection's client secret."""
    body = (FIXTURES / f"{name}.json").read_bytes()
    headers = {k: v for k, v in orjson.loads((FIXTURES / f"{name}.headers.json").read_bytes()).items() if k[0] != "_"}
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    return {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}, body


async def returns_of(h: Hub) -> list[Any]:
    async with h.store.connect() as c:
        return list((await c.execute(select(t.returns))).all())


async def test_a_returns_request_webhook_creates_the_return_of_the_shipped_order_once(hub: Hub) -> None:
    await inbox.accept(hub, "shopify", *delivery("orders_create"))
    await run_inbox(hub)
    async with hub.store.connect() as c:
        order = await repo.get_by_external(c, "shopify", "450789469")
    assert order is not None
    await ship(hub, order.id)

    headers, body = delivery("returns_request")
    first = await inbox.accept(hub, "shopify", headers, body)
    again = await inbox.accept(hub, "shopify", headers, body)  # Shopify's retry of the same delivery
    await run_inbox(hub)

    rows = await returns_of(hub)
    assert len(rows) == 1
    ret = Return.model_validate(rows[0].data)
    assert (rows[0].connection, ret.external_id, ret.order_id) == ("shopify", "945000954", order.id)
    assert ret.status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED)
    assert sorted((ln.sku, ln.line_no, ln.quantity, ln.reason) for ln in ret.lines) == [
        ("IPOD2008GREEN", 1, 1, "defective"),
        ("IPOD2008RED", 2, 1, "unwanted"),
    ]
    assert (first.duplicate, again.duplicate) == (False, True)
    async with hub.store.connect() as c:
        assert (await c.execute(select(t.sync_failures))).all() == []


async def test_a_returns_request_in_the_published_shape_is_resolved_by_line_item_id(hub: Hub) -> None:
    """Shopify's published payload names line items by id only: the hub finds the order line by it."""
    await inbox.accept(hub, "shopify", *delivery("orders_create"))
    await run_inbox(hub)
    async with hub.store.connect() as c:
        order = await repo.get_by_external(c, "shopify", "450789469")
    assert order is not None
    await ship(hub, order.id)
    headers, _ = delivery("returns_request")
    body = (FIXTURES / "invalid" / "returns_request_as_documented.json").read_bytes()
    digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
    headers = {**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    await inbox.accept(hub, "shopify", headers, body)
    await run_inbox(hub)
    async with hub.store.connect() as c:
        assert (await c.execute(select(t.sync_failures))).all() == []
    (row,) = await returns_of(hub)
    ret = Return.model_validate(row.data)
    line = next(ln for ln in order.lines if ln.external_id == "466157049")
    assert next((ln.sku, ln.line_no) for ln in ret.lines) == (line.sku, line.line_no)
