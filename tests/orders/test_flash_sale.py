"""Concurrency on PostgreSQL: never oversell, never promise a unit twice."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from hub.model import Order, new_id
from hub.orders import service, stock
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import tables as t
from tests.sync import toy


def _order(i: int) -> Order:
    return Order.model_validate({**toy.order_doc(f"fs{i:04d}", sku="HOT"), "id": new_id("ord"), "connection": "shop"})


async def test_flash_sale_of_500_orders_on_120_units_over_three_locations(net_hub: Hub) -> None:
    hub = net_hub
    async with hub.store.begin() as c:
        for loc, qty in (("berlin", 50), ("munich", 40), ("paris", 30)):
            await inv.adjust(c, "HOT", loc, qty, cause="receipt")
    orders = [_order(i) for i in range(500)]

    async def place(o: Order) -> Order:
        async with hub.store.begin() as c:
            return await service.ingest_order(hub, c, o)

    results = await asyncio.gather(*(place(o) for o in orders))
    allocated = [o for o in results if o.status == "released"]
    backordered = [o for o in results if o.status == "backordered"]
    assert len(allocated) == 120 and len(backordered) == 380
    async with hub.store.connect() as c:
        levels = await inv.levels(c, ["HOT"])
        n_alloc = (await c.execute(select(func.coalesce(func.sum(t.allocations.c.quantity), 0)))).scalar_one()
        n_back = (await c.execute(select(func.count()).select_from(t.backorders))).scalar_one()
    assert {lv.location: (lv.on_hand, lv.reserved, lv.available) for lv in levels} == {
        "berlin": (50, 50, 0),
        "munich": (40, 40, 0),
        "paris": (30, 30, 0),
    }
    assert n_alloc == 120 and n_back == 380

    # 50 more arrive: the 50 oldest backorders are allocated, the others still wait
    await stock.adjust(hub, "HOT", "munich", 50, reason="receipt PO-7", cause="receipt")
    by_time = sorted(backordered, key=lambda o: (o.placed_at, o.id))
    async with hub.store.connect() as c:
        rows = (
            await c.execute(
                select(t.orders.c.external_id, t.orders.c.status).where(
                    t.orders.c.external_id.in_([o.external_id for o in backordered])
                )
            )
        ).all()
    status = dict(rows)
    now_allocated = {ext for ext, s in status.items() if s == "released"}
    assert len(now_allocated) == 50
    oldest = {o.external_id for o in sorted(backordered, key=lambda o: o.id)[:50]}
    assert now_allocated == oldest, "backorders are served oldest first"
    assert len(by_time) == 380
    async with hub.store.connect() as c:
        lvl = await inv.get_level(c, "HOT", "munich")
    assert (lvl.on_hand, lvl.reserved) == (90, 90)
