import asyncio

import pytest
from sqlalchemy import func, select

from hub.errors import InsufficientStock
from hub.store import Store
from hub.store import inventory as inv
from hub.store import tables as t
from hub.store.inventory import Reservation


async def test_reservation_refused_beyond_available(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "SKU", "w1", 5, cause="receipt")
        await inv.set_safety_stock(c, "SKU", "w1", 1)
    async with store.begin() as c:
        assert await inv.reserve(c, "SKU", "w1", 4, "ord_a")
        assert not await inv.reserve(c, "SKU", "w1", 1, "ord_b")
        lvl = await inv.get_level(c, "SKU", "w1")
    assert (lvl.on_hand, lvl.reserved, lvl.safety_stock, lvl.available) == (5, 4, 1, 0)


async def test_every_change_is_a_ledger_row_with_its_cause(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "SKU", "w1", 10, cause="receipt", ref="po_1", reason="PO 1")
        await inv.reserve(c, "SKU", "w1", 3, "ord_1")
        await inv.ship(c, "SKU", "w1", 2, "ord_1")
        await inv.release(c, "SKU", "w1", 1, "ord_1")
        rows = await inv.ledger(c, "SKU", "w1")
        lvl = await inv.get_level(c, "SKU", "w1")
    assert [(r.cause, r.delta_on_hand, r.delta_reserved) for r in rows] == [
        ("receipt", 10, 0),
        ("reservation", 0, 3),
        ("shipment", -2, -2),
        ("release", 0, -1),
    ]
    assert sum(r.delta_on_hand for r in rows) == lvl.on_hand == 8
    assert sum(r.delta_reserved for r in rows) == lvl.reserved == 0


async def test_adjustment_cannot_take_on_hand_below_reserved(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "SKU", "w1", 5)
        await inv.reserve(c, "SKU", "w1", 4, "o")
    with pytest.raises(InsufficientStock, match="below the 4 reserved"):
        async with store.begin() as c:
            await inv.adjust(c, "SKU", "w1", -2)
    async with store.connect() as c:
        assert (await inv.get_level(c, "SKU", "w1")).on_hand == 5


async def test_plan_is_reserved_all_or_nothing(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
        await inv.adjust(c, "B", "w2", 1)
    with pytest.raises(InsufficientStock, match="2 x B at w2"):
        async with store.begin() as c:
            await inv.reserve_all(c, [Reservation("A", "w1", 3), Reservation("B", "w2", 2)], "o1")
    async with store.begin() as c:
        assert (await inv.get_level(c, "A", "w1")).reserved == 0
        await inv.reserve_all(c, [Reservation("A", "w1", 3), Reservation("B", "w2", 1)], "o2")
        assert (await inv.get_level(c, "A", "w1")).reserved == 3


async def test_concurrent_reservations_never_oversell(store: Store) -> None:
    """200 concurrent tasks each reserve 1 of a SKU stocked with 50: 50 win, 150 are refused."""
    async with store.begin() as c:
        await inv.adjust(c, "HOT", "w1", 50, cause="receipt")

    async def one(i: int) -> bool:
        async with store.begin() as c:
            return await inv.reserve(c, "HOT", "w1", 1, f"ord_{i}")

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert results.count(True) == 50
    assert results.count(False) == 150
    async with store.connect() as c:
        lvl = await inv.get_level(c, "HOT", "w1")
        n_ledger = (
            await c.execute(
                select(func.count()).select_from(t.inventory_ledger).where(t.inventory_ledger.c.cause == "reservation")
            )
        ).scalar_one()
    assert (lvl.on_hand, lvl.reserved, lvl.available) == (50, 50, 0)
    assert n_ledger == 50


async def test_concurrent_multi_line_plans_do_not_deadlock_or_oversell(store: Store) -> None:
    async with store.begin() as c:
        for sku in ("A", "B", "C"):
            await inv.adjust(c, sku, "w1", 30)

    async def one(i: int) -> bool:
        skus = ["A", "B", "C"] if i % 2 else ["C", "B", "A"]
        try:
            async with store.begin() as c:
                await inv.reserve_all(c, [Reservation(s, "w1", 1) for s in skus], f"o{i}")
            return True
        except InsufficientStock:
            return False

    results = await asyncio.gather(*(one(i) for i in range(60)))
    assert results.count(True) == 30
    async with store.connect() as c:
        assert [lv.reserved for lv in await inv.levels(c, ["A", "B", "C"])] == [30, 30, 30]
