"""Orders applied in chunks (several inbox items per transaction): same results as one by one,
a bad item does not hold the others, concurrent chunks never oversell (real PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from sqlalchemy import event, func, select, update

from hub.plugins import hookimpl
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import tables as t
from hub.sync import inbox
from tests.sync import toy
from tests.sync.conftest import drain, webhook


async def _accept_orders(h: Hub, exts: list[str], qty: int = 1) -> None:
    for ext in exts:
        headers, body = webhook({"id": f"evt-{ext}", "order": toy.order_doc(ext, qty=qty)})
        await inbox.accept(h, "shop", headers, body)


async def _scalar(h: Hub, q: Any) -> Any:
    async with h.store.connect() as c:
        return (await c.execute(q)).scalar_one()


async def test_fifty_orders_take_a_few_transactions_and_each_is_complete(hub: Hub) -> None:
    await _accept_orders(hub, [f"c{i}" for i in range(50)])
    commits: list[str] = []

    def on_commit(_conn: Any) -> None:
        commits.append("commit")

    event.listen(hub.store.engine.sync_engine, "commit", on_commit)
    n = await inbox.process_batch(hub, 50)
    event.remove(hub.store.engine.sync_engine, "commit", on_commit)
    assert n == 50
    assert len(commits) <= 4  # the claim and two chunks of 25, not one transaction per order
    assert await _scalar(hub, select(func.count()).select_from(t.orders).where(t.orders.c.status == "released")) == 50
    assert await _scalar(hub, select(func.count()).select_from(t.fulfillments)) == 50
    assert await _scalar(hub, select(func.count()).select_from(t.kpi_facts)) == 50
    assert (
        await _scalar(
            hub, select(func.count()).select_from(t.sync_jobs).where(t.sync_jobs.c.operation == "submit_fulfillment")
        )
        == 50
    )
    assert await _scalar(hub, select(func.count()).select_from(t.inbox).where(t.inbox.c.status == "done")) == 50
    async with hub.store.connect() as c:
        assert (await inv.get_level(c, "SKU-1", "w1")).reserved == 50
        ledger = [r for r in await inv.ledger(c, "SKU-1", "w1") if r.cause == "reservation"]
    assert len(ledger) == 50 and len({r.ref for r in ledger}) == 50


class _Explodes:
    """A fraud screen that fails on one order, as a buggy plugin would."""

    @hookimpl(tryfirst=True)
    def orderhub_screen_fraud(self, order: Any, context: Any, config: Any) -> Any:
        if order.external_id == "bad":
            raise RuntimeError("plugin bug")
        return None


async def test_one_failing_item_does_not_hold_the_rest_of_its_chunk(hub: Hub) -> None:
    hub.pm.register(_Explodes())
    await _accept_orders(hub, ["g1", "g2", "bad", "g3", "g4"])
    await drain(hub)
    async with hub.store.connect() as c:
        rows = {r.event_id: r for r in (await c.execute(select(t.inbox))).all()}
    assert {k for k, r in rows.items() if r.status == "done"} == {"evt-g1", "evt-g2", "evt-g3", "evt-g4"}
    assert rows["evt-bad"].status == "processing" and "plugin bug" in rows["evt-bad"].error  # retried later
    assert await _scalar(hub, select(func.count()).select_from(t.orders)) == 4
    async with hub.store.connect() as c:
        assert (await inv.get_level(c, "SKU-1", "w1")).reserved == 4


async def test_concurrent_chunks_on_one_sku_never_oversell(hub: Hub) -> None:
    # SKU-1 has 100 units at w1; 150 one-unit orders, three "workers" draining at once
    await _accept_orders(hub, [f"f{i}" for i in range(150)])

    async def worker() -> None:
        while await inbox.process_batch(hub, 20):
            pass

    await asyncio.gather(worker(), worker(), worker())
    assert await _scalar(hub, select(func.count()).select_from(t.inbox).where(t.inbox.c.status != "done")) == 0
    async with hub.store.connect() as c:
        lvl = await inv.get_level(c, "SKU-1", "w1")
        reserved_in_ledger = sum(r.delta_reserved for r in await inv.ledger(c, "SKU-1", "w1", limit=10_000))
    assert lvl.reserved == 100 and lvl.on_hand == 100 and reserved_in_ledger == 100
    assert await _scalar(hub, select(func.count()).select_from(t.orders)) == 150
    assert await _scalar(hub, select(func.count()).select_from(t.backorders)) == 50
    assert await _scalar(hub, select(func.coalesce(func.sum(t.allocations.c.quantity), 0))) == 100


async def test_a_chunk_whose_lease_was_taken_applies_nothing(hub: Hub) -> None:
    await _accept_orders(hub, ["l1", "l2", "l3"])
    items = await inbox.claim(hub, 10)
    async with hub.store.begin() as c:  # the lease expired and another worker took the items
        await c.execute(update(t.inbox).values(lease_until=func.now()))
    parsed = [inbox._parse_for_chunk(hub, r) for r in items]
    assert all(p is not None for p in parsed)
    assert await inbox._apply_chunk(hub, [p for p in parsed if p is not None]) is False
    assert await _scalar(hub, select(func.count()).select_from(t.orders)) == 0
    async with hub.store.connect() as c:
        assert (await inv.get_level(c, "SKU-1", "w1")).reserved == 0


async def test_velocity_counts_within_a_chunk_are_those_of_one_by_one(hub: Hub) -> None:
    # fraud_velocity_per_email_per_day = 5: the sixth order of one email today is held
    for i in range(8):
        doc = toy.order_doc(f"v{i}")
        doc["customer"]["email"] = "same@example.com"
        headers, body = webhook({"id": f"evt-v{i}", "order": doc})
        await inbox.accept(hub, "shop", headers, body)
    await drain(hub)
    async with hub.store.connect() as c:
        rows = (await c.execute(select(t.orders.c.external_id, t.orders.c.status))).all()
    status = {r.external_id: r.status for r in rows}
    assert [status[f"v{i}"] for i in range(8)] == ["released"] * 5 + ["on_hold"] * 3


async def test_an_order_created_and_updated_in_one_chunk_ends_in_its_newest_state(hub: Hub) -> None:
    first = toy.order_doc("u1", updated="2026-01-01T00:00:00+00:00")
    second = toy.order_doc("u1", updated="2026-01-02T00:00:00+00:00", price="12.00")
    for evt, doc in (("evt-u1a", first), ("evt-u1b", second)):
        headers, body = webhook({"id": evt, "order": doc})
        await inbox.accept(hub, "shop", headers, body)
    await inbox.process_batch(hub, 10)
    async with hub.store.connect() as c:
        rows = (await c.execute(select(t.orders))).all()
        events = [r.type for r in (await c.execute(select(t.outbox.c.type).order_by(t.outbox.c.seq))).all()]
    assert len(rows) == 1 and rows[0].status == "released"
    assert rows[0].data["totals"]["total"]["amount"] in ("12.00", "12")
    assert events.count("order.created") == 1 and events.count("order.updated") == 1
    assert await _scalar(hub, select(func.count()).select_from(t.kpi_facts)) == 1
    assert await _scalar(hub, select(func.count()).select_from(t.order_lines)) == 1


async def test_a_chunk_lets_the_event_loop_turn_between_its_orders(hub: Hub, monkeypatch: Any) -> None:
    """Applying an order waits on no I/O (its writes are buffered): a chunk that did not yield would
    keep the process's other chunks, one of them perhaps holding stock rows until its COMMIT, waiting
    for all its orders."""
    from hub.orders import service

    await _accept_orders(hub, [f"y{i}" for i in range(5)])
    items = await inbox.claim(hub, 10)
    parsed = [p for p in (inbox._parse_for_chunk(hub, r) for r in items) if p is not None]
    trace: list[str] = []
    real = service.apply_messages

    async def traced(*args: Any, **kwargs: Any) -> Any:
        trace.append("order")
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "apply_messages", traced)
    stop = False

    async def other_task() -> None:
        while not stop:
            if trace and trace[-1] == "order":
                trace.append("turn")
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    assert await inbox._apply_chunk(hub, parsed) is True
    stop = True
    await ticker
    orders = [i for i, x in enumerate(trace) if x == "order"]
    assert len(orders) == 5
    assert all("turn" in trace[a:b] for a, b in itertools.pairwise(orders))
