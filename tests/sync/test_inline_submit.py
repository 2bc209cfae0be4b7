"""A worker that allocates orders sends their fulfilment requests to the 3PL straight after the
commit ([queue] submit_inline), while the inbox is not behind: each request once, recorded as a
job like any other (retried, dead-lettered, taken over by another worker if this one dies)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import event, select, update

from hub.clock import now
from hub.runtime import Hub
from hub.store import tables as t
from hub.sync import inbox, jobs
from tests.sync import toy
from tests.sync.conftest import webhook


@pytest.fixture
def calls(router: respx.Router) -> list[str]:
    seen: list[str] = []

    def create(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["reference"]
        seen.append(ref)
        return httpx.Response(201, json={"id": f"WMS-{ref}"})

    router.routes["wms_orders"].side_effect = create
    return seen


async def _accept(h: Hub, n: int, prefix: str = "i") -> None:
    for i in range(n):
        headers, body = webhook({"id": f"evt-{prefix}{i}", "order": toy.order_doc(f"{prefix}{i}")})
        await inbox.accept(h, "shop", headers, body)


async def _submit_jobs(h: Hub) -> list[Any]:
    async with h.store.connect() as c:
        q = select(t.sync_jobs).where(t.sync_jobs.c.operation == "submit_fulfillment")
        return list((await c.execute(q)).all())


async def test_the_allocating_round_sends_each_request_once_without_reading_it_back(
    hub: Hub, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "intake_lag_target_ms", 60_000.0)  # never "behind" here
    await _accept(hub, 6)
    reads: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM fulfillments" in statement:
            reads.append(statement)

    event.listen(hub.store.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await inbox.process_batch(hub) == 6
    finally:
        event.remove(hub.store.engine.sync_engine, "before_cursor_execute", count)
    subs = await _submit_jobs(hub)
    async with hub.store.connect() as c:
        fuls = (await c.execute(select(t.fulfillments))).all()
    assert sorted(calls) == sorted(f.id for f in fuls) and len(set(calls)) == 6  # in the same round, once each
    assert {(j.status, j.attempts, j.lease_until) for j in subs} == {("done", 1, None)}
    assert all(f.status == "submitted" and f.external_id == f"WMS-{f.id}" for f in fuls)
    assert reads == []  # the requests and orders were kept from the allocating transaction
    await jobs.run_batch(hub)  # nothing left for the queue
    assert len(calls) == 6


async def test_a_behind_inbox_leaves_the_requests_to_the_queue(
    hub: Hub, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "intake_lag_target_ms", 0.0)  # every item "waited too long"
    monkeypatch.setattr(hub.config.queue, "inbox_gather_ms", 0.0)
    await _accept(hub, 3)
    await inbox.process_batch(hub)
    assert calls == [] and {j.status for j in await _submit_jobs(hub)} == {"pending"}
    async with hub.store.begin() as c:
        await c.execute(update(t.sync_jobs).values(next_run_at=now()))
    await jobs.run_batch(hub)
    assert len(calls) == 3 and {j.status for j in await _submit_jobs(hub)} == {"done"}


async def test_switched_off_the_requests_go_through_the_queue(
    hub: Hub, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "intake_lag_target_ms", 60_000.0)
    monkeypatch.setattr(hub.config.queue, "submit_inline", False)
    await _accept(hub, 2)
    await inbox.process_batch(hub)
    assert calls == [] and {j.status for j in await _submit_jobs(hub)} == {"pending"}


async def test_a_refused_inline_request_is_retried_by_the_queue(
    hub: Hub, router: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "intake_lag_target_ms", 60_000.0)
    monkeypatch.setattr(jobs, "BASE_DELAY", 0.01)
    down = {"on": True}
    router.routes["wms_orders"].side_effect = lambda r: (
        httpx.Response(503, json={"error": "maintenance"}) if down["on"] else httpx.Response(201, json={"id": "W"})
    )
    await _accept(hub, 1)
    await inbox.process_batch(hub)
    down["on"] = False
    [job] = await _submit_jobs(hub)
    assert (job.status, job.attempts, job.lease_until) == ("pending", 1, None) and "503" in job.errors[0]["error"]
    async with hub.store.begin() as c:
        await c.execute(update(t.sync_jobs).values(next_run_at=now()))
    await jobs.run_batch(hub)
    [job] = await _submit_jobs(hub)
    assert (job.status, job.attempts) == ("done", 2)


async def test_a_worker_that_dies_before_the_call_leaves_the_job_to_any_worker(
    hub: Hub, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "intake_lag_target_ms", 60_000.0)

    async def dies(_hub: Hub, _inline: Any) -> int:  # the commit happened; the process ends before the calls
        return 0

    monkeypatch.setattr(jobs, "run_inline", dies)
    await _accept(hub, 2)
    await inbox.process_batch(hub)
    subs = await _submit_jobs(hub)
    assert calls == [] and {j.status for j in subs} == {"running"}
    assert all(j.lease_until > now() for j in subs)  # leased: no other worker takes them meanwhile
    assert await jobs.claim(hub) == []
    async with hub.store.begin() as c:  # the lease runs out
        await c.execute(update(t.sync_jobs).values(lease_until=now() - timedelta(seconds=1)))
    await jobs.run_batch(hub)
    assert len(calls) == 2 and len(set(calls)) == 2
    assert {(j.status, j.attempts) for j in await _submit_jobs(hub)} == {("done", 1)}


def test_every_inline_operation_has_a_batch_form() -> None:
    from hub.sync.operations import BATCH_OPERATIONS

    assert jobs.INLINE.issubset(BATCH_OPERATIONS)  # run_inline runs them through run_batched only
