"""Jobs with a batch form (submit_fulfillment) run many per batch: each 3PL call once, each
outcome recorded on its own job, a refused request dead-lettered alone (real PostgreSQL, Redis)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import event, func, select, update

from hub.clock import now
from hub.runtime import Hub
from hub.store import tables as t
from hub.sync import inbox, jobs
from tests.sync import toy
from tests.sync.conftest import webhook


@pytest.fixture(autouse=True)
def queued(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests drive the claimed path: the inbox leaves its fulfilment requests to the job queue
    (sending them straight after the commit is tests/sync/test_inline_submit.py)."""
    monkeypatch.setattr(hub.config.queue, "submit_inline", False)


async def _orders(h: Hub, n: int) -> None:
    for i in range(n):
        headers, body = webhook({"id": f"evt-b{i}", "order": toy.order_doc(f"b{i}")})
        await inbox.accept(h, "shop", headers, body)
    while await inbox.process_batch(h, 50):
        pass
    async with h.store.begin() as c:
        await c.execute(update(t.sync_jobs).values(next_run_at=now()))


async def test_forty_submissions_run_as_one_batch_each_call_once(hub: Hub, router: respx.Router) -> None:
    calls: list[str] = []

    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["reference"]
        calls.append(ref)
        return httpx.Response(201, json={"id": f"WMS-{ref}"})

    router.routes["wms_orders"].side_effect = create
    await _orders(hub, 40)
    commits: list[int] = []
    updates: list[str] = []

    def seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if sql.startswith("UPDATE"):
            updates.append(
                sql.split(" SET")[0] + (" (executemany)" if many else "") + (" (arrays)" if "unnest" in sql else "")
            )

    event.listen(hub.store.engine.sync_engine, "commit", lambda _c: commits.append(1))
    event.listen(hub.store.engine.sync_engine, "before_cursor_execute", seen)
    await jobs.run_batch(hub, 100)
    event.remove(hub.store.engine.sync_engine, "before_cursor_execute", seen)
    # PostgreSQL: the external ids and the outcomes each written by one statement (UPDATE ... FROM
    # unnest), not by an execution per row
    assert updates[-2:] == ["UPDATE fulfillments (arrays)", "UPDATE sync_jobs (arrays)"], updates
    assert not [u for u in updates if "executemany" in u], updates
    async with hub.store.connect() as c:
        subs = (await c.execute(select(t.sync_jobs).where(t.sync_jobs.c.operation == "submit_fulfillment"))).all()
        fuls = (await c.execute(select(t.fulfillments))).all()
    assert len(subs) == 40 and {j.status for j in subs} == {"done"}
    assert sorted(calls) == sorted(f.id for f in fuls) and len(set(calls)) == 40  # once each
    assert all(f.external_id == f"WMS-{f.id}" and f.status == "submitted" for f in fuls)
    assert all(j.result["external_id"] == f"WMS-{j.object_id}" for j in subs)
    assert len(commits) < 12  # claim, fencing, one write of the requests, one of the outcomes (+ the pushes)


async def test_a_refused_request_is_dead_lettered_alone(hub: Hub, router: respx.Router) -> None:
    await _orders(hub, 5)
    async with hub.store.connect() as c:
        bad = (await c.execute(select(t.fulfillments.c.id).limit(1))).scalar_one()

    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["reference"]
        if ref == bad:
            return httpx.Response(422, json={"error": "invalid address"})
        return httpx.Response(201, json={"id": f"WMS-{ref}"})

    router.routes["wms_orders"].side_effect = create
    await jobs.run_batch(hub, 100)
    async with hub.store.connect() as c:
        rows = {
            j.object_id: j.status
            for j in (await c.execute(select(t.sync_jobs).where(t.sync_jobs.c.operation == "submit_fulfillment"))).all()
        }
        failures = (await c.execute(select(t.sync_failures))).all()
        still_pending = (
            await c.execute(
                select(func.count()).select_from(t.fulfillments).where(t.fulfillments.c.status == "pending")
            )
        ).scalar_one()
    assert rows.pop(bad) == "failed" and set(rows.values()) == {"done"}
    assert [f.object_id for f in failures] == [bad] and still_pending == 1


async def test_a_batch_whose_lease_was_taken_calls_nothing(
    hub: Hub, router: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    router.routes["wms_orders"].side_effect = lambda r: seen.append(r) or httpx.Response(201, json={"id": "W"})
    await _orders(hub, 3)
    claimed = [j for j in await jobs.claim(hub, 100) if j.operation == "submit_fulfillment"]
    # the batch waited past its lease (here: 90 s later by the worker's clock), which expired and
    # another worker took
    later = now() + timedelta(seconds=90)
    monkeypatch.setattr(jobs, "now", lambda: later)
    async with hub.store.begin() as c:
        await c.execute(update(t.sync_jobs).values(lease_until=later))
    await jobs.run_batched(hub, claimed)
    assert seen == []


async def test_a_batch_run_straight_after_its_claim_renews_no_lease(hub: Hub, router: respx.Router) -> None:
    router.routes["wms_orders"].side_effect = lambda r: httpx.Response(201, json={"id": "W"})
    await _orders(hub, 3)
    claimed = [j for j in await jobs.claim(hub, 100) if j.operation == "submit_fulfillment"]
    renewals: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE sync_jobs SET lease_until"):
            renewals.append(statement)

    event.listen(hub.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await jobs.run_batched(hub, claimed)
    finally:
        event.remove(hub.store.engine.sync_engine, "before_cursor_execute", count)
    assert renewals == []
    async with hub.store.begin() as c:
        statuses = (
            await c.execute(select(t.sync_jobs.c.status).where(t.sync_jobs.c.operation == "submit_fulfillment"))
        ).scalars()
        assert set(statuses) == {"done"}


async def test_a_push_being_made_carries_the_changes_still_waiting_for_their_delay(hub: Hub) -> None:
    async with hub.store.begin() as c:
        for i in range(3):
            await jobs.enqueue(c, "shop", "push_inventory", f"SKU-{i}", {}, coalesce=True)  # due now
        for i in range(3, 6):
            await jobs.enqueue(c, "shop", "push_inventory", f"SKU-{i}", {}, coalesce=True, delay=60)  # not yet
        await jobs.enqueue(c, "wms", "cancel_fulfillment", "ful_x", {}, delay=60)  # other work keeps its time
    await jobs.run_batch(hub, 100)
    async with hub.store.connect() as c:
        rows = {(j.operation, j.object_id): j.status for j in (await c.execute(select(t.sync_jobs))).all()}
    assert {k: v for k, v in rows.items() if k[0] == "push_inventory"} == {
        ("push_inventory", f"SKU-{i}"): "done" for i in range(6)
    }
    assert rows[("cancel_fulfillment", "ful_x")] == "pending"


async def test_a_request_confirmed_while_its_call_was_in_flight_keeps_its_status(
    hub: Hub, router: respx.Router
) -> None:
    """The 3PL's id is written on every request of the batch, but only a pending one becomes
    submitted: a shipment confirmed meanwhile (by a 3PL webhook) is not turned back."""
    await _orders(hub, 3)
    async with hub.store.connect() as c:
        shipped = (await c.execute(select(t.fulfillments.c.id).order_by(t.fulfillments.c.id).limit(1))).scalar_one()

    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["reference"]
        return httpx.Response(201, json={"id": f"WMS-{ref}"})

    async def confirm_then_create(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["reference"] == shipped:
            async with hub.store.begin() as c:
                await c.execute(update(t.fulfillments).where(t.fulfillments.c.id == shipped).values(status="shipped"))
        return create(request)

    router.routes["wms_orders"].side_effect = confirm_then_create
    await jobs.run_batch(hub, 100)
    async with hub.store.connect() as c:
        fuls = {f.id: f for f in (await c.execute(select(t.fulfillments))).all()}
    assert {f.external_id for f in fuls.values()} == {f"WMS-{i}" for i in fuls}
    assert fuls[shipped].status == "shipped"
    assert {f.status for i, f in fuls.items() if i != shipped} == {"submitted"}
