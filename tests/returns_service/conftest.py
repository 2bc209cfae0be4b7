"""A hub on the real PostgreSQL and Redis with the toy channel ('shop', which also takes refund pushes),
the toy 3PL ('wms') and a toy ERP ('erp', credit notes); helpers that take an order through the
channel webhook, ship it through the 3PL webhook and deliver it (the pattern of tests/sync/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from hub.api import make_app
from hub.model import Order, TrackingEvent, TrackingStatus
from hub.orders import service as orders
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import tables as t
from hub.sync import inbox
from tests.sync.conftest import OPS_TOKEN, READ_TOKEN, SECRET, make_router, open_hub, webhook

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
        {"id": "shop", "connector": "toy-refund-channel", "settings": {"secret": SECRET}, "rate_per_second": 1000},
        {"id": "wms", "connector": "toy-wms", "settings": {"secret": SECRET}, "rate_per_second": 1000},
        {"id": "erp", "connector": "toy-erp", "settings": {"secret": SECRET}, "rate_per_second": 1000},
    ],
    "api_tokens": [
        {"name": "ops", "scopes": ["read", "ops"], "token": OPS_TOKEN},
        {"name": "reader", "scopes": ["read"], "token": READ_TOKEN},
    ],
    "returns": {"window_days": 30, "refund_shipping": True, "flag_refund_over": 500},
}
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str) -> AsyncIterator[Hub]:
    """The hub, with 100 x SKU-1 at w1."""
    plugins = "tests.sync.toy,tests.returns_service.toy_money"
    h = await open_hub(pg_url, redis_url, redis_prefix, CONFIG, make_router(), plugins=plugins)
    async with h.store.begin() as conn:
        await inv.adjust(conn, "SKU-1", "w1", 100, cause="receipt")
    yield h
    await h.close()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(hub))) as c:
        yield c


async def run_inbox(h: Hub) -> None:
    """Apply every inbound delivery (outbound jobs are left in sync_jobs for the tests to inspect)."""
    for _ in range(20):
        if await inbox.process_batch(h) == 0:
            return
    raise AssertionError("inbox did not drain")


async def place(h: Hub, doc: dict[str, Any]) -> Order:
    """The order ``doc`` (toy channel format) through the signed channel webhook."""
    headers, body = webhook({"id": f"evt-{doc['external_id']}", "order": doc})
    await inbox.accept(h, "shop", headers, body)
    await run_inbox(h)
    async with h.store.connect() as c:
        order = await repo.get_by_external(c, "shop", doc["external_id"])
    assert order is not None
    return order


async def ship(h: Hub, order_id: str) -> str:
    """Every open fulfilment of the order shipped through the signed 3PL webhook; the tracking number."""
    async with h.store.connect() as c:
        fuls = (await c.execute(select(t.fulfillments).where(t.fulfillments.c.order_id == order_id))).all()
    tracking = f"TRK-{order_id[-8:]}"
    for f in fuls:
        if f.status in ("shipped", "cancelled"):
            continue
        lines: dict[str, int] = {}
        for ln in f.data["lines"]:
            lines[ln["sku"]] = lines.get(ln["sku"], 0) + ln["quantity"]
        headers, body = webhook({"id": f"ship-{f.id}", "reference": f.id, "tracking": tracking, "lines": lines})
        await inbox.accept(h, "wms", headers, body)
    await run_inbox(h)
    return tracking


async def deliver(h: Hub, tracking: str, at: datetime) -> None:
    """The carrier's delivered event (as a carrier connector hands it to the hub)."""
    ev = TrackingEvent(tracking_number=tracking, carrier="DHL", status=TrackingStatus.DELIVERED, occurred_at=at)
    async with h.store.begin() as c:
        await orders.tracking_updated(h, c, "carrier", ev)


async def delivered_order(h: Hub, doc: dict[str, Any], at: datetime) -> Order:
    order = await place(h, doc)
    await deliver(h, await ship(h, order.id), at)
    async with h.store.connect() as c:
        return await repo.get_order(c, order.id)
