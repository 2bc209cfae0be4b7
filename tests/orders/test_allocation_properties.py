"""Property: through the real service and store (SQLite), for random stock and orders,
reserved never exceeds on_hand and every unit of every line is allocated or backordered, once."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.config import HubConfig, Settings
from hub.model import Order, new_id
from hub.orders import service
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import tables as t
from tests.orders.conftest import NETWORK
from tests.sync import toy

SKUS = ["A", "B", "C"]
LOCS = ["berlin", "munich", "paris"]

stock_st = st.dictionaries(st.tuples(st.sampled_from(SKUS), st.sampled_from(LOCS)), st.integers(0, 6), max_size=9)
line_st = st.tuples(st.sampled_from(SKUS), st.integers(1, 4))
orders_st = st.lists(st.lists(line_st, min_size=1, max_size=3, unique_by=lambda x: x[0]), min_size=1, max_size=12)
policy_st = st.sampled_from(["allow", "ship_complete", "max_splits"])
strategy_st = st.sampled_from(["priority", "nearest", "lowest_cost", "fewest_shipments"])


def _order(i: int, lines: list[tuple[str, int]]) -> Order:
    doc = toy.order_doc(f"p{i}")
    m = lambda a: {"amount": a, "currency": "EUR"}  # noqa: E731
    doc["lines"] = [
        {"line_no": n, "sku": s, "quantity": q, "unit_price": m("1.00")} for n, (s, q) in enumerate(lines, 1)
    ]
    total = f"{sum(q for _, q in lines)}.00"
    doc["totals"] = {"subtotal": m(total), "shipping": m("0"), "tax": m("0"), "discount": m("0"), "total": m(total)}
    return Order.model_validate({**doc, "id": new_id("ord"), "connection": "shop"})


async def _run(
    template: Path, redis_url: str, stock: dict[tuple[str, str], int], orders: list[Any], policy: str, strategy: str
) -> None:
    tmp = Path(tempfile.mkdtemp())
    db = tmp / "p.db"
    shutil.copy(template, db)
    cfg = HubConfig.model_validate(
        {**NETWORK, "allocation": {"split_policy": policy, "strategy": strategy, "max_splits": 2}}
    )
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        redis_url=redis_url,
        redis_prefix=f"prop:{db.name}",
        plugins="tests.sync.toy",
    )
    hub = await Hub.open(settings, cfg, migrate=False)
    try:
        async with hub.store.begin() as c:
            for (sku, loc), q in stock.items():
                if q:
                    await inv.adjust(c, sku, loc, q, cause="receipt")
        placed = []
        for i, lines in enumerate(orders):
            async with hub.store.begin() as c:
                placed.append(await service.ingest_order(hub, c, _order(i, lines)))
        async with hub.store.connect() as c:
            levels = await inv.levels(c, SKUS)
            allocs = (await c.execute(select(t.allocations))).all()
            backs = (await c.execute(select(t.backorders))).all()
        for lv in levels:
            assert 0 <= lv.reserved <= lv.on_hand
            assert lv.on_hand == stock.get((lv.sku, lv.location), 0)
        reserved_by_level = {(lv.sku, lv.location): lv.reserved for lv in levels}
        alloc_by_level: dict[tuple[str, str], int] = {}
        for a in allocs:
            alloc_by_level[(a.sku, a.location)] = alloc_by_level.get((a.sku, a.location), 0) + a.quantity
        assert {k: v for k, v in reserved_by_level.items() if v} == alloc_by_level
        for o in placed:
            for ln in o.lines:
                got = sum(a.quantity for a in allocs if a.order_id == o.id and a.line_no == ln.line_no)
                back = sum(b.quantity for b in backs if b.order_id == o.id and b.line_no == ln.line_no)
                assert got + back == ln.quantity, (o.external_id, ln.line_no, got, back)
            if policy == "ship_complete":
                assert len({a.location for a in allocs if a.order_id == o.id}) <= 1
    finally:
        await hub.close()
        shutil.rmtree(tmp, ignore_errors=True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(stock=stock_st, orders=orders_st, policy=policy_st, strategy=strategy_st)
def test_every_unit_is_allocated_or_backordered_and_nothing_is_oversold(
    sqlite_template: Path,
    redis_url: str,
    stock: dict[tuple[str, str], int],
    orders: list[Any],
    policy: str,
    strategy: str,
) -> None:
    asyncio.run(_run(sqlite_template, redis_url, stock, orders, policy, strategy))
