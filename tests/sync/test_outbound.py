"""Outbound sync jobs: retries, dead-letter, coalescing, ordering (real PostgreSQL and Redis)."""

from __future__ import annotations

import httpx
import pytest
import respx
from sqlalchemy import func, select, update

from hub.orders import stock
from hub.runtime import Hub
from hub.store import tables as t
from hub.sync import failures, inbox, jobs
from tests.sync import toy
from tests.sync.conftest import drain, webhook


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "BASE_DELAY", 0.01)


async def _due_now(h: Hub) -> None:
    """Skip the wait of scheduled retries (the clock moves on)."""
    async with h.store.begin() as c:
        await c.execute(update(t.sync_jobs).where(t.sync_jobs.c.status == "pending").values(next_run_at=func.now()))


async def _orders(n: int, h: Hub) -> None:
    for i in range(n):
        hd, b = webhook({"id": f"e{i}", "order": toy.order_doc(f"o{i}")})
        await inbox.accept(h, "shop", hd, b)


async def test_3pl_down_then_up_drains_the_backlog_once_each(hub: Hub, router: respx.Router) -> None:
    created: list[str] = []
    state = {"down": True}

    def wms(request: httpx.Request) -> httpx.Response:
        if state["down"]:
            return httpx.Response(503, json={"error": "maintenance"})
        ref = __import__("json").loads(request.content)["reference"]
        created.append(ref)
        return httpx.Response(201, json={"id": f"W-{ref}"})

    router.routes["wms_orders"].side_effect = wms
    await _orders(5, hub)
    while await inbox.process_batch(hub):
        pass
    # the 3PL answers 503 to every attempt (the one made straight after the allocation's commit and
    # two retries, of max_tries 4): a backlog builds, nothing is dead-lettered
    for _ in range(2):
        await _due_now(hub)
        await jobs.run_batch(hub)
    async with hub.store.connect() as c:
        pending = (
            await c.execute(
                select(func.count())
                .select_from(t.sync_jobs)
                .where(t.sync_jobs.c.operation == "submit_fulfillment", t.sync_jobs.c.status == "pending")
            )
        ).scalar_one()
    assert pending == 5 and created == []  # a backlog, not failures
    state["down"] = False
    for _ in range(10):
        await _due_now(hub)
        await drain(hub)
    assert sorted(created) == sorted(set(created)) and len(created) == 5
    async with hub.store.connect() as c:
        statuses = {r.status for r in (await c.execute(select(t.fulfillments.c.status))).all()}
        ext = {r.external_id for r in (await c.execute(select(t.fulfillments.c.external_id))).all()}
    assert statuses == {"submitted"}
    assert all(e and e.startswith("W-ful_") for e in ext)


async def test_permanent_error_is_dead_lettered_at_once_with_request_and_response(
    hub: Hub, router: respx.Router
) -> None:
    router.routes["wms_orders"].respond(422, json={"error": "unknown SKU SKU-1"})
    await _orders(1, hub)
    await drain(hub)
    async with hub.store.connect() as c:
        items, _ = await failures.list_failures(c, failures.FailureFilter(operation="submit_fulfillment"))
    assert len(items) == 1
    f = items[0]
    assert f["attempts"] == 1 and f["connection"] == "wms"
    assert "422" in f["last_error"] or "unknown SKU" in f["last_error"]
    assert f["object_id"].startswith("ful_")


async def test_retries_then_dead_letter_after_max_tries(hub: Hub, router: respx.Router) -> None:
    router.routes["wms_orders"].respond(500)
    await _orders(1, hub)
    for _ in range(6):
        await _due_now(hub)
        await drain(hub)
    async with hub.store.connect() as c:
        job = (await c.execute(select(t.sync_jobs).where(t.sync_jobs.c.operation == "submit_fulfillment"))).one()
        items, _ = await failures.list_failures(c, failures.FailureFilter(connection="wms"))
    assert job.status == "failed" and job.attempts == 4  # max_tries in the test config
    assert len(job.errors) == 4
    assert len(items) == 1 and items[0]["attempts"] == 4
    # replay after the 3PL recovered: sent once, resolved; a second replay changes nothing
    router.routes["wms_orders"].respond(201, json={"id": "W-1"})
    calls_before = router.routes["wms_orders"].call_count
    r1 = await failures.replay_one(hub, items[0]["id"], actor="test")
    r2 = await failures.replay_one(hub, items[0]["id"], actor="test")
    assert (r1.result, r2.result) == ("resolved", "already_resolved")
    assert router.routes["wms_orders"].call_count == calls_before + 1


async def test_a_burst_of_1000_stock_changes_coalesces_to_a_handful_of_pushes(hub: Hub, router: respx.Router) -> None:
    route = router.routes["inventory"]
    async with hub.store.begin() as c:
        for _ in range(1000):
            await stock.stock_changed(hub, c, ["SKU-1"], cause="adjustment")
    await _due_now(hub)
    await drain(hub)
    assert 1 <= route.call_count <= 3
    last = __import__("json").loads(route.calls.last.request.content)
    assert last == {"sku": "SKU-1", "quantity": 100}


async def test_jobs_of_one_object_run_in_creation_order(hub: Hub) -> None:
    async with hub.store.begin() as c:
        for i in range(3):
            await jobs.enqueue(c, "shop", "push_cancellation", "ord_X", {"n": i}, key=f"k{i}")
    claimed = await jobs.claim(hub, 10)
    assert [j.payload["n"] for j in claimed] == [0]
