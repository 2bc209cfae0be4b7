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
