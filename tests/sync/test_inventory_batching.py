"""Inventory pushes are batched: the due ``push_inventory`` jobs of a channel become one Shopify
``inventorySetQuantities`` for all their SKUs, and each job still records its own outcome
(real PostgreSQL and Redis; Shopify's GraphQL API answered in process)."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select, update

from hub.orders import stock
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import tables as t
from hub.sync import failures, jobs
from tests.sync.conftest import CONFIG, drain, open_hub

_TERM = re.compile(r'sku:"((?:[^"\\]|\\.)*)"')
SKUS = [f"SKU-{i:03d}" for i in range(30)]
START = 100  # on_hand of every SKU at each location before the changes


class MiniShopify:
    """Shopify's GraphQL Admin API as far as inventory goes: variants for every SKU, and
    ``inventorySetQuantities`` applied all or nothing (a refused quantity refuses the call)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.available: dict[str, int] = {}
        self.quantities_per_call: list[int] = []
        self.throttle = 0  # mutations still to answer THROTTLED
        self.refuse: set[str] = set()  # SKUs whose inventory item Shopify no longer knows

    def __call__(self, request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        variables = doc["variables"]
        cost = {"requestedQueryCost": 10, "throttleStatus": {"currentlyAvailable": 1990, "restoreRate": 100.0}}
        if "productVariants" in doc["query"]:
            self._count("productVariants")
            nodes = [
                {"id": f"gid://shopify/ProductVariant/{s}", "sku": s, "inventoryItem": {"id": self.item(s)}}
                for s in _TERM.findall(variables["query"])
            ]
            data: dict[str, Any] = {"productVariants": {"nodes": nodes, "pageInfo": {"hasNextPage": False}}}
            return httpx.Response(200, json={"data": data, "extensions": {"cost": cost}})
        self._count("inventorySetQuantities")
        quantities = variables["input"]["quantities"]
        self.quantities_per_call.append(len(quantities))
        if self.throttle:
            self.throttle -= 1
            errors = [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]
            return httpx.Response(200, json={"errors": errors, "extensions": {"cost": cost}})
        user_errors = [
            {
                "code": "INVALID_INVENTORY_ITEM",
                "field": ["input", "quantities", str(i), "inventoryItemId"],
                "message": "The specified inventory item could not be found.",
            }
            for i, q in enumerate(quantities)
            if self.sku(q["inventoryItemId"]) in self.refuse
        ]
        if not user_errors:
            for q in quantities:
                self.available[self.sku(q["inventoryItemId"])] = q["quantity"]
        group = None if user_errors else {"id": "gid://shopify/InventoryAdjustmentGroup/1", "changes": []}
        result = {"inventoryAdjustmentGroup": group, "userErrors": user_errors}
        return httpx.Response(200, json={"data": {"inventorySetQuantities": result}, "extensions": {"cost": cost}})

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    @staticmethod
    def item(sku: str) -> str:
        return f"gid://shopify/InventoryItem/{sku}"

    @staticmethod
    def sku(item: str) -> str:
        return item.rsplit("/", 1)[1]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "BASE_DELAY", 0.01)


@pytest.fixture
def shopify() -> MiniShopify:
    return MiniShopify()


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str, shopify: MiniShopify) -> AsyncIterator[Hub]:
    """A hub whose channel 'shop' is a Shopify connection selling the stock of two locations."""
    config = copy.deepcopy(CONFIG)
    config["locations"].append({**config["locations"][0], "id": "w2", "name": "Hamburg", "priority": 2})
    config["connections"][0] = {
        "id": "shop",
        "connector": "shopify",
        "settings": {
            "shop_domain": "mini-shop.myshopify.com",
            "access_token": "shpat_mini",
            "client_secret": "shpss_mini",
            "location_map": {"w1": "655441491"},
        },
        "rate_per_second": 1000,
    }
    router = respx.Router(assert_all_called=False)
    router.post(url__regex=r"https://mini-shop\.myshopify\.com/admin/api/.*/graphql\.json$").mock(side_effect=shopify)
    h = await open_hub(pg_url, redis_url, redis_prefix, config, router)
    async with h.store.begin() as conn:
        for sku in SKUS:
            for loc in ("w1", "w2"):
                await inv.adjust(conn, sku, loc, START, cause="receipt")
    yield h
    await h.close()


async def _changes(h: Hub, n: int, skus: list[str], seed: int) -> dict[str, int]:
    """``n`` stock changes on ``skus`` at random locations (50 per transaction); the ATP each SKU should end at."""
    rng = random.Random(seed)
    async with h.store.connect() as conn:
        levels = await inv.levels(conn, SKUS)
    atp = {sku: 0 for sku in SKUS}
    for lvl in levels:
        atp[lvl.sku] += lvl.on_hand - lvl.reserved
    for start in range(0, n, 50):
        async with h.store.begin() as conn:
            for _ in range(min(50, n - start)):
                sku, loc, delta = rng.choice(skus), rng.choice(("w1", "w2")), rng.choice((-2, -1, 1, 2, 3))
                await inv.adjust(conn, sku, loc, delta, cause="adjustment")
                await stock.stock_changed(h, conn, [sku], cause="adjustment")
                atp[sku] += delta
    return atp


async def _due_now(h: Hub) -> None:
    """Skip the push delay and the wait of scheduled retries (the clock moves on)."""
    async with h.store.begin() as c:
        await c.execute(update(t.sync_jobs).where(t.sync_jobs.c.status == "pending").values(next_run_at=func.now()))


async def _pushes(h: Hub) -> list[Any]:
    async with h.store.connect() as c:
        q = select(t.sync_jobs).where(t.sync_jobs.c.operation == "push_inventory").order_by(t.sync_jobs.c.object_id)
        return list((await c.execute(q)).all())


async def test_300_changes_on_30_skus_are_one_channel_call_ending_at_every_skus_atp(
    hub: Hub, shopify: MiniShopify
) -> None:
    atp = await _changes(hub, 300, SKUS, seed=1)
    assert len(await _pushes(hub)) == 30  # one coalesced job per SKU
    await _due_now(hub)
    await drain(hub)
    assert shopify.calls == {"productVariants": 1, "inventorySetQuantities": 1}
    assert shopify.quantities_per_call == [30]
    assert shopify.available == atp
    pushes = await _pushes(hub)
    assert {p.status for p in pushes} == {"done"}
    assert {p.object_id: p.result["quantity"] for p in pushes} == atp
    # a second burst on a third of the SKUs: one more call with those SKUs, their items already known
    atp = await _changes(hub, 100, SKUS[:10], seed=2)
    await _due_now(hub)
    await drain(hub)
    assert shopify.calls == {"productVariants": 1, "inventorySetQuantities": 2}
    assert shopify.quantities_per_call == [30, 10]
    assert shopify.available == atp


async def test_a_throttled_call_retries_every_job_of_it_then_they_all_land(hub: Hub, shopify: MiniShopify) -> None:
    atp = await _changes(hub, 300, SKUS, seed=3)
    shopify.throttle = 1
    await _due_now(hub)
    await jobs.run_batch(hub)
    pushes = await _pushes(hub)
    assert len(pushes) == 30 and {(p.status, p.attempts) for p in pushes} == {("pending", 1)}
    assert all("throttled" in p.errors[-1]["error"] for p in pushes)
    assert shopify.available == {}
    await _due_now(hub)
    await drain(hub)
    assert shopify.quantities_per_call == [30, 30]
    assert shopify.available == atp
    pushes = await _pushes(hub)
    assert {(p.status, p.attempts) for p in pushes} == {("done", 2)}
    async with hub.store.connect() as c:
        items, _ = await failures.list_failures(c, failures.FailureFilter(operation="push_inventory"))
    assert items == []


async def test_a_sku_shopify_refuses_is_dead_lettered_alone(hub: Hub, shopify: MiniShopify) -> None:
    atp = await _changes(hub, 300, SKUS, seed=4)
    shopify.refuse = {"SKU-007"}
    await _due_now(hub)
    await drain(hub)
    # refused all or nothing, so the 29 others went again without it
    assert shopify.quantities_per_call == [30, 29]
    assert shopify.available == {sku: q for sku, q in atp.items() if sku != "SKU-007"}
    status = {p.object_id: (p.status, p.attempts) for p in await _pushes(hub)}
    assert status.pop("SKU-007") == ("failed", 1)
    assert set(status.values()) == {("done", 1)}
    async with hub.store.connect() as c:
        items, _ = await failures.list_failures(c, failures.FailureFilter(operation="push_inventory"))
    assert [(f["object_id"], f["connection"], f["attempts"]) for f in items] == [("SKU-007", "shop", 1)]
    assert "SKU 'SKU-007'" in items[0]["last_error"] and "inventory item could not be found" in items[0]["last_error"]
