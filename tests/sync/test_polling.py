"""Polling: cursors in the database, so a restart neither skips nor repeats."""

from __future__ import annotations

import httpx

from hub.config import HubConfig, Settings
from hub.runtime import Hub
from hub.store import orders as repo
from hub.sync import polling
from tests.sync import toy
from tests.sync.conftest import CONFIG

FEED_CONFIG = {**CONFIG, "connections": [*CONFIG["connections"], {"id": "market", "connector": "toy-marketplace"}]}


async def _open(pg_url: str, redis_url: str, prefix: str) -> Hub:
    settings = Settings(database_url=pg_url, redis_url=redis_url, redis_prefix=prefix, plugins="tests.sync.toy")
    return await Hub.open(
        settings,
        HubConfig.model_validate(FEED_CONFIG),
        migrate=False,
        http_transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})),
    )


async def test_a_restart_neither_skips_nor_repeats(hub: Hub, pg_url: str, redis_url: str, redis_prefix: str) -> None:
    toy.ToyMarketplace.FEED[:] = [(f"2026-01-01T00:0{i}:00Z", toy.order_doc(f"m{i}")) for i in range(5)]
    toy.ToyMarketplace.calls.clear()
    first = await _open(pg_url, redis_url, redis_prefix)
    try:
        assert await polling.poll_once(first, "market", max_pages=1) == 2  # stops after a page, like a crash
        assert await polling.get_cursor(first, "market") == "2026-01-01T00:01:00Z"
    finally:
        await first.close()
    # a new process: it resumes from the stored cursor
    toy.ToyMarketplace.FEED.append(("2026-01-01T00:09:00Z", toy.order_doc("m9")))
    second = await _open(pg_url, redis_url, redis_prefix)
    try:
        assert await polling.poll_once(second, "market") == 4
        assert await polling.poll_once(second, "market") == 0
        async with second.store.connect() as c:
            orders, _ = await repo.list_orders(c, connection="market", limit=100)
    finally:
        await second.close()
    assert sorted(o.external_id for o in orders) == ["m0", "m1", "m2", "m3", "m4", "m9"]
    assert toy.ToyMarketplace.calls[1] == "2026-01-01T00:01:00Z"


async def test_pollers_pause_under_backpressure(hub: Hub, pg_url: str, redis_url: str, redis_prefix: str) -> None:
    toy.ToyMarketplace.FEED[:] = [("2026-01-01T00:00:00Z", toy.order_doc("bp0"))]
    h = await _open(pg_url, redis_url, redis_prefix)
    try:
        h.config.queue.max_depth = -1
        assert await polling.poll_once(h, "market") == 0
        assert await polling.get_cursor(h, "market") is None
    finally:
        await h.close()


async def test_a_3pl_snapshot_sets_on_hand_through_the_ledger_and_serves_backorders(hub: Hub) -> None:
    from hub.model import Order, new_id
    from hub.orders import service
    from hub.store import inventory as inv

    async with hub.store.begin() as c:
        waiting = await service.ingest_order(
            hub,
            c,
            Order.model_validate({**toy.order_doc("snap", sku="NEW-SKU"), "id": new_id("ord"), "connection": "shop"}),
        )
    assert waiting.status == "backordered"
    toy.ToyWms.COUNTS[:] = [("NEW-SKU", "w1", 3), ("SKU-1", "w1", 90)]
    assert await polling.snapshot_once(hub, "wms") == 2
    async with hub.store.connect() as c:
        levels = {(lv.sku, lv.location): (lv.on_hand, lv.reserved) for lv in await inv.levels(c, ["NEW-SKU", "SKU-1"])}
        causes = [e.cause for e in await inv.ledger(c, "SKU-1", "w1")]
        order = await repo.get_order(c, waiting.id)
    assert levels == {("NEW-SKU", "w1"): (3, 1), ("SKU-1", "w1"): (90, 0)}
    assert causes == ["receipt", "count"]
    assert order.status == "released"


async def test_a_snapshot_leaves_pairs_with_parcels_in_flight_alone(hub: Hub) -> None:
    """A 3PL count taken after it picked a released order but before the shipment is confirmed would
    count the unit out twice (once by the count, once by the shipment): such pairs wait."""
    from hub.model import Order, new_id
    from hub.orders import service
    from hub.store import inventory as inv

    async with hub.store.begin() as c:
        o = await service.ingest_order(
            hub, c, Order.model_validate({**toy.order_doc("fly"), "id": new_id("ord"), "connection": "shop"})
        )
    assert o.status == "released"  # one unit of SKU-1 is with the 3PL, not yet shipped
    toy.ToyWms.COUNTS[:] = [("SKU-1", "w1", 99), ("OTHER", "w1", 5)]
    assert await polling.snapshot_once(hub, "wms") == 1
    async with hub.store.connect() as c:
        levels = {lv.sku: (lv.on_hand, lv.reserved) for lv in await inv.levels(c, ["SKU-1", "OTHER"])}
    assert levels == {"SKU-1": (100, 1), "OTHER": (5, 0)}
