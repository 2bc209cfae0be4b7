"""The transaction's write-behind buffer (hub.store._pending): fewer statements, same results."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, insert, select, text

from hub.errors import InsufficientStock
from hub.store import Store
from hub.store import inventory as inv
from hub.store import tables as t
from hub.store._pending import flush_pending, write
from hub.store.inventory import Reservation
from hub.sync import jobs


def _count_statements(store: Store) -> list[str]:
    seen: list[str] = []

    def hook(_c: object, _cur: object, statement: str, *_a: object) -> None:
        seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", hook)
    return seen


def _ledger_row(n: int) -> dict[str, object]:
    from hub.clock import now

    return {
        "sku": f"S{n}",
        "location": "w1",
        "delta_on_hand": n,
        "delta_reserved": 0,
        "cause": "test",
        "ref": None,
        "reason": None,
        "at": now(),
    }


async def test_buffered_rows_are_written_in_one_statement_at_commit(store: Store) -> None:
    seen = _count_statements(store)
    async with store.begin() as c:
        for n in range(20):
            await write(c, insert(t.inventory_ledger), _ledger_row(n))
        assert not [s for s in seen if "inventory_ledger" in s]  # nothing sent yet
    assert len([s for s in seen if "inventory_ledger" in s]) == 1
    async with store.connect() as c:
        rows = (await c.execute(select(t.inventory_ledger.c.sku).order_by(t.inventory_ledger.c.id))).all()
    assert [r.sku for r in rows] == [f"S{n}" for n in range(20)]  # once each, in the order written


async def test_a_read_of_a_buffered_table_sees_the_buffered_rows(store: Store) -> None:
    async with store.begin() as c:
        await write(c, insert(t.inventory_ledger), _ledger_row(1))
        n = (await c.execute(select(func.count()).select_from(t.inventory_ledger))).scalar_one()
        assert n == 1  # flushed before the read
        await write(c, insert(t.inventory_ledger), _ledger_row(2))
        n = (await c.execute(text("SELECT count(*) FROM inventory_ledger"))).scalar_one()
        assert n == 2  # textual SQL cannot be analysed: it flushes too
    async with store.connect() as c:
        assert (await c.execute(select(func.count()).select_from(t.inventory_ledger))).scalar_one() == 2


async def test_buffered_rows_of_a_failed_transaction_are_never_written(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.begin() as c:
            await write(c, insert(t.inventory_ledger), _ledger_row(1))
            raise RuntimeError("boom")
    async with store.connect() as c:
        assert (await c.execute(select(func.count()).select_from(t.inventory_ledger))).scalar_one() == 0


async def test_a_failed_plan_in_a_continuing_transaction_leaves_no_reservation_and_no_ledger_row(
    store: Store,
) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
        await inv.adjust(c, "B", "w2", 1)
    async with store.begin() as c:
        with pytest.raises(InsufficientStock, match="2 x B at w2"):
            await inv.reserve_all(c, [Reservation("A", "w1", 3), Reservation("B", "w2", 2)], "o1")
        # the transaction goes on (allocation plans again) and commits
        assert (await inv.get_level(c, "A", "w1")).reserved == 0
        await inv.reserve_all(c, [Reservation("A", "w1", 2), Reservation("B", "w2", 1)], "o2")
    async with store.connect() as c:
        assert (await inv.get_level(c, "A", "w1")).reserved == 2
        assert (await inv.get_level(c, "B", "w2")).reserved == 1
        refs = [(r.ref, r.delta_reserved) for r in await inv.ledger(c, "A") if r.cause == "reservation"]
    assert refs == [("o2", 2)]


async def test_jobs_written_twice_in_one_transaction_are_one_job(store: Store) -> None:
    async with store.begin() as c:
        for _ in range(3):
            await jobs.enqueue(c, "shop", "push_inventory", "SKU-9", {}, coalesce=True)
            await jobs.enqueue(c, "wms", "submit_fulfillment", "ful_1", {}, key="submit:ful_1")
    async with store.connect() as c:
        keys = sorted(r.idempotency_key for r in (await c.execute(select(t.sync_jobs))).all())
    assert keys == ["coalesce:shop:push_inventory:SKU-9", "submit:ful_1"]


async def test_locked_levels_are_answered_from_memory_and_forgotten_when_another_write_comes(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
        await inv.adjust(c, "A", "w2", 2)
    seen = _count_statements(store)
    async with store.begin() as c:
        await inv.know_levels(c, ["A"])
        before = len(seen)
        assert [(lv.location, lv.available) for lv in await inv.levels(c, ["A"])] == [("w1", 5), ("w2", 2)]
        assert await inv.reserve(c, "A", "w1", 3, "o1")
        assert [(lv.location, lv.reserved) for lv in await inv.levels(c, ["A"])] == [("w1", 3), ("w2", 0)]
        assert not [s for s in seen[before:] if s.lstrip().upper().startswith("SELECT")]  # from memory
        await inv.adjust(c, "A", "w2", 4)  # any other write of a level: the known levels are dropped
        after = len(seen)
        assert [(lv.location, lv.on_hand, lv.reserved) for lv in await inv.levels(c, ["A"])] == [
            ("w1", 5, 3),
            ("w2", 6, 0),
        ]
        assert [s for s in seen[after:] if s.lstrip().upper().startswith("SELECT")]  # read again


async def test_known_levels_answer_each_order_for_its_own_skus_in_sku_and_location_order(store: Store) -> None:
    """A chunk knows the levels of all its orders' SKUs; each order gets its own SKUs' rows, sorted,
    with the chunk's reservations so far."""
    async with store.begin() as c:
        for sku, loc, qty in [("B", "w2", 1), ("A", "w2", 2), ("C", "w1", 3), ("B", "w1", 4), ("A", "w1", 5)]:
            await inv.adjust(c, sku, loc, qty)
    async with store.begin() as c:
        await inv.know_levels(c, ["C", "A", "B"])
        assert await inv.reserve(c, "B", "w1", 1, "o1")
        got = [(lv.sku, lv.location, lv.available) for lv in await inv.levels(c, ["C", "B"])]
        assert got == [("B", "w1", 3), ("B", "w2", 1), ("C", "w1", 3)]
        assert [(lv.sku, lv.location) for lv in await inv.levels(c, ["A"])] == [("A", "w1"), ("A", "w2")]


async def test_reservations_made_in_memory_are_still_checked_by_the_database(store: Store) -> None:
    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
    seen = _count_statements(store)
    async with store.begin() as c:
        await inv.know_levels(c, ["A"])
        before = len(seen)
        assert await inv.reserve(c, "A", "w1", 3, "o1")
        assert not await inv.reserve(c, "A", "w1", 3, "o2")  # refused in memory: 2 left
        assert len(seen) == before  # nothing sent: written at the flush
    async with store.connect() as c:
        assert (await inv.get_level(c, "A", "w1")).reserved == 3
    # another transaction takes the last 2 units after ours read the levels: the flush refuses ours
    with pytest.raises(inv.StockMoved, match="no longer fit"):
        async with store.begin() as c:
            await inv.know_levels(c, ["A"])
            if store.dialect == "postgresql":  # (SQLite has one writer: nobody can come in between)
                async with store.begin() as other:
                    assert await inv.reserve(other, "A", "w1", 2, "o-other")
            else:
                known = inv._known(c)
                assert known is not None
                known.rows[("A", "w1")][1] -= 3  # a stale view, made by hand: 5 available instead of 2
            assert await inv.reserve(c, "A", "w1", 2 if store.dialect == "postgresql" else 3, "o3")  # fits what it read
    async with store.connect() as c:
        lvl = await inv.get_level(c, "A", "w1")
        refs = [r.ref for r in await inv.ledger(c, "A") if r.cause == "reservation"]
    if store.dialect == "postgresql":
        assert (lvl.on_hand, lvl.reserved) == (5, 5) and refs == ["o1", "o-other"]
    else:
        assert (lvl.on_hand, lvl.reserved) == (5, 3) and refs == ["o1"]


@pytest.mark.parametrize("other_takes, ours_fit", [(4, False), (1, True)])
async def test_a_flush_that_waits_for_the_stock_rows_checks_what_their_holder_committed(
    pg_store: Store, other_takes: int, ours_fit: bool
) -> None:
    """The flush locks the rows and updates them in one statement: when another transaction holds
    them, it waits, then checks its reservations against the row that transaction committed
    (PostgreSQL: SQLite has one writer, so no transaction holds rows while another flushes)."""
    import asyncio

    store = pg_store
    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
    other = store.begin()
    oc = await other.__aenter__()
    assert await inv.reserve(oc, "A", "w1", other_takes, "o-other")
    await oc.execute(text("SELECT 1"))  # the reservation is sent: the row is locked until the commit

    async def ours() -> None:
        async with store.begin() as c:
            await inv.know_levels(c, ["A"])  # 5 available when read
            assert await inv.reserve(c, "A", "w1", 3, "o-ours")

    task = asyncio.create_task(ours())
    await asyncio.sleep(0.3)
    assert not task.done()  # waiting for the row the other transaction holds
    await other.__aexit__(None, None, None)  # it commits
    if ours_fit:
        await task
    else:
        with pytest.raises(inv.StockMoved):
            await task
    async with store.connect() as c:
        lvl = await inv.get_level(c, "A", "w1")
    assert lvl.reserved == other_takes + (3 if ours_fit else 0) <= lvl.on_hand


async def test_the_stock_rows_are_locked_by_the_last_deferred_write_of_the_flush(store: Store) -> None:
    from hub.store import outbox

    async with store.begin() as c:
        await inv.adjust(c, "A", "w1", 5)
    seen = _count_statements(store)
    async with store.begin() as c:
        await inv.know_levels(c, ["A"])
        start = len(seen)
        assert await inv.reserve(c, "A", "w1", 1, "o1")  # the reservation is deferred first...
        await outbox.emit(c, "order.allocated", {"id": "o1"}, object_id="o1")  # ...the event list after it
    flushed = [s for s in seen[start:] if "inventory_levels" in s or "outbox_pending" in s]
    assert "outbox_pending" in flushed[0] and "inventory_levels" in flushed[-1]


async def test_postgresql_writes_a_flushs_inserts_into_several_tables_in_one_statement(pg_store: Store) -> None:
    """Orders, their lines (a foreign key to orders), events and jobs (ON CONFLICT DO NOTHING) of one
    flush: one statement, every row as executemany would write it, in the order written."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from hub.store import outbox

    store = pg_store
    ts = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    seen = _count_statements(store)
    async with store.begin() as c:
        for n in range(3):
            order = {
                "id": f"ord_{n}",
                "connection": "shop",
                "external_id": f"e{n}",
                "status": "received",
                "currency": "EUR",
                "total": Decimal("12.34"),
                "email_hash": None,
                "placed_at": ts,
                "source_updated_at": None,
                "data": {"id": f"ord_{n}", "note": 'é "quoted" back\\slash'},
                "updated_at": ts,
            }
            await write(c, insert(t.orders), {**order, "created_at": ts})
            line = {"order_id": f"ord_{n}", "line_no": 1, "sku": "A", "quantity": 2, "unit_price": Decimal("6.17")}
            await write(c, insert(t.order_lines), {**line, "currency": "EUR"})
            await outbox.emit(c, "order.created", {"id": f"ord_{n}"}, object_id=f"ord_{n}")
            await jobs.enqueue(c, "wms", "submit_fulfillment", f"ful_{n}", {"n": n}, key="submit:same")
        start = len(seen)
    flush = seen[start:]
    inserts = [s for s in flush if "INSERT INTO" in s and "outbox_pending" not in s]  # (+ the events' list)
    assert len(inserts) == 1 and inserts[0].startswith("WITH")
    async with store.connect() as c:
        orders = (await c.execute(select(t.orders).order_by(t.orders.c.id))).all()
        lines = (await c.execute(select(t.order_lines))).all()
        events = (await c.execute(select(t.outbox.c.object_id).order_by(t.outbox.c.seq))).all()
        job_rows = (await c.execute(select(t.sync_jobs))).all()
        listed = (await c.execute(select(func.count()).select_from(t.outbox_pending))).scalar_one()
    assert [o.id for o in orders] == ["ord_0", "ord_1", "ord_2"]
    assert orders[0].data == {"id": "ord_0", "note": 'é "quoted" back\\slash'} and orders[0].total == Decimal("12.34")
    assert orders[0].placed_at == ts and orders[0].version == 1  # a server default still applies
    assert len(lines) == 3 and lines[0].unit_price == Decimal("6.17") and lines[0].cancelled_quantity == 0
    assert [e.object_id for e in events] == ["ord_0", "ord_1", "ord_2"]  # seq in the order written
    assert len(job_rows) == 1 and job_rows[0].payload == {"n": 0}  # the first one: the others do nothing
    assert listed == 3


async def test_postgresql_writes_a_flushs_coalesced_jobs_in_one_statement_that_locks_the_pending_ones(
    pg_store: Store,
) -> None:
    """The coalesced pushes of a flush (ON CONFLICT ... DO UPDATE ... WHERE false): one statement, not
    one execution per SKU; a pending push is absorbed (no new row, not rewritten) and stays locked
    until the commit."""
    store = pg_store
    async with store.begin() as c:
        await jobs.enqueue(c, "shop", "push_inventory", "SKU-1", {}, coalesce=True)
    version = text("SELECT xmin::text FROM sync_jobs WHERE object_id = 'SKU-1'")
    async with store.connect() as c:
        before = (await c.execute(version)).scalar_one()
    seen = _count_statements(store)
    async with store.begin() as c:
        for sku in ("SKU-3", "SKU-1", "SKU-2", "SKU-3"):
            await jobs.enqueue(c, "shop", "push_inventory", sku, {}, coalesce=True)
        start = len(seen)
        await flush_pending(c)
        async with store.connect() as other:  # another transaction cannot take the absorbing row
            locked = text("SELECT object_id FROM sync_jobs WHERE status = 'pending' FOR UPDATE SKIP LOCKED")
            assert (await other.execute(locked)).scalars().all() == []
    upserts = [s for s in seen[start:] if "INSERT INTO sync_jobs" in s]
    assert len(upserts) == 1 and "unnest" in upserts[0] and "WHERE false" in upserts[0]
    async with store.connect() as c:
        rows = (await c.execute(select(t.sync_jobs.c.object_id).order_by(t.sync_jobs.c.object_id))).scalars().all()
        assert rows == ["SKU-1", "SKU-2", "SKU-3"]
        assert (await c.execute(version)).scalar_one() == before  # absorbed, not rewritten


async def test_postgresql_a_combined_flush_that_breaks_a_foreign_key_writes_nothing(pg_store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    store = pg_store
    with pytest.raises(IntegrityError, match="fk_order_lines_order_id_orders"):
        async with store.begin() as c:
            await write(c, insert(t.inventory_ledger), _ledger_row(1))
            await write(
                c,
                insert(t.order_lines),
                {
                    "order_id": "ord_missing",
                    "line_no": 1,
                    "sku": "A",
                    "quantity": 1,
                    "unit_price": 1,
                    "currency": "EUR",
                },
            )
    async with store.connect() as c:
        assert (await c.execute(select(func.count()).select_from(t.inventory_ledger))).scalar_one() == 0
