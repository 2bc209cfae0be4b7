"""On a burst, order intake goes first: while the inbox is behind, a worker's drain defers the
outbound sync jobs (3PL submissions, channel pushes) until the inbox is empty, unless a due job
has already waited ``[queue] outbound_max_lag_seconds`` (real PostgreSQL and Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import respx
from sqlalchemy import func, select, update

from hub.clock import now
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import tables as t
from hub.sync import inbox, jobs, worker
from tests.sync import toy
from tests.sync.conftest import CONFIG, open_hub, webhook


async def _hub(pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router, **queue: Any) -> Hub:
    config = {**CONFIG, "queue": {**CONFIG["queue"], **queue}}
    h = await open_hub(pg_url, redis_url, redis_prefix, config, router)
    async with h.store.begin() as conn:
        await inv.adjust(conn, "SKU-1", "w1", 1000, cause="receipt")
    return h


@pytest.fixture
async def hub(pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router) -> AsyncIterator[Hub]:
    h = await _hub(pg_url, redis_url, redis_prefix, router)
    yield h
    await h.close()


async def _orders(h: Hub, prefix: str, n: int, *, received_ago: float | None = None) -> None:
    for i in range(n):
        headers, body = webhook({"id": f"evt-{prefix}{i}", "order": toy.order_doc(f"{prefix}{i}")})
        await inbox.accept(h, "shop", headers, body)
    if received_ago is not None:
        async with h.store.begin() as c:
            await c.execute(
                update(t.inbox)
                .where(t.inbox.c.status == "pending")
                .values(received_at=now() - timedelta(seconds=received_ago))
            )


async def _due_submissions(h: Hub, n: int, *, due_ago: float = 0.0) -> None:
    """``n`` orders processed, their 3PL submissions due (``due_ago`` seconds ago)."""
    await _orders(h, "early", n)
    while await inbox.process_batch(h):
        pass
    async with h.store.begin() as c:
        await c.execute(update(t.sync_jobs).values(next_run_at=now() - timedelta(seconds=due_ago)))


async def _inbox_left(h: Hub) -> int:
    async with h.store.connect() as c:
        return int(
            (
                await c.execute(
                    select(func.count()).select_from(t.inbox).where(t.inbox.c.status.in_(("pending", "processing")))
                )
            ).scalar_one()
        )


def _spy_jobs(h: Hub, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The inbox items still waiting each time the drain ran a batch of outbound jobs."""
    seen: list[int] = []
    real = jobs.run_batch

    async def spy(hub: Hub, limit: int = 100) -> int:
        seen.append(await _inbox_left(hub))
        return await real(hub, limit)

    monkeypatch.setattr(jobs, "run_batch", spy)
    monkeypatch.setattr(worker, "_BATCH", 2)  # the inbox takes several rounds
    return seen


async def _submitted(h: Hub) -> int:
    async with h.store.connect() as c:
        j = t.sync_jobs
        q = select(func.count()).where(j.c.operation == "submit_fulfillment", j.c.status == "done")
        return int((await c.execute(q)).scalar_one())


async def test_a_behind_inbox_runs_before_any_outbound_job(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    await _due_submissions(hub, 3)
    await _orders(hub, "burst", 6, received_ago=1.0)  # waited 1 s: far behind the 50 ms target
    seen = _spy_jobs(hub, monkeypatch)
    await worker.drain({"hub": hub})
    assert seen and seen[0] == 0  # the first jobs batch ran once the inbox was empty
    assert await _inbox_left(hub) == 0 and await _submitted(hub) == 9  # and everything was done


async def test_an_inbox_that_keeps_up_leaves_the_jobs_their_turn(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    await _due_submissions(hub, 3)
    await _orders(hub, "fresh", 6, received_ago=0.0)  # just received: the inbox is not behind
    seen = _spy_jobs(hub, monkeypatch)
    await worker.drain({"hub": hub})
    assert seen[0] == 4  # jobs ran after the first inbox batch of 2, as before
    assert await _submitted(hub) == 9


async def test_a_job_overdue_beyond_the_bound_is_not_deferred(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    await _due_submissions(hub, 3, due_ago=45.0)  # due 45 s ago: past the 30 s bound
    await _orders(hub, "burst", 6, received_ago=1.0)
    seen = _spy_jobs(hub, monkeypatch)
    await worker.drain({"hub": hub})
    assert seen[0] == 4
    assert await _submitted(hub) == 9


async def test_priority_off_with_a_zero_bound(
    pg_url: str, redis_url: str, redis_prefix: str, router: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await _hub(pg_url, redis_url, redis_prefix, router, outbound_max_lag_seconds=0)
    try:
        await _due_submissions(h, 3)
        await _orders(h, "burst", 6, received_ago=1.0)
        seen = _spy_jobs(h, monkeypatch)
        await worker.drain({"hub": h})
        assert seen[0] == 4
    finally:
        await h.close()


async def test_the_waited_time_of_a_batch_is_its_oldest_first_attempt(hub: Hub) -> None:
    await _orders(hub, "old", 2, received_ago=3.0)
    await _orders(hub, "new", 2)
    n, waited = await inbox.process_batch_waited(hub)
    assert n == 4 and 2.9 < waited < 10
    assert await inbox.process_batch_waited(hub) == (0, 0.0)


async def test_overdue_seconds(hub: Hub) -> None:
    async with hub.store.connect() as c:
        assert await jobs.overdue_seconds(c) == 0.0  # nothing pending
    await _due_submissions(hub, 2, due_ago=12.0)
    async with hub.store.connect() as c:
        assert 11.5 < await jobs.overdue_seconds(c) < 30


class _Queue:
    """What the worker's drain queues (arq in production)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, str | None]] = []

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> bool:
        self.jobs.append((function, job_id))
        return True


async def test_a_drain_whose_budget_runs_out_queues_the_next_one(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    await _orders(hub, "cont", 4)
    queue = _Queue()
    hub.state["queue"] = queue
    monkeypatch.setattr(worker, "_BATCH", 1)
    clock = iter([0.0, 0.0])  # the deadline, then one round; after it the budget is spent
    monkeypatch.setattr(worker, "_clock", lambda: next(clock, 10.0))
    assert await worker.drain({"hub": hub}) >= 1
    assert await _inbox_left(hub) == 3
    assert [f for f, _ in queue.jobs] == ["drain"]  # work is left: the next drain is queued at once


async def test_a_drain_that_finishes_the_work_queues_nothing(hub: Hub) -> None:
    await _orders(hub, "done", 3)
    queue = _Queue()
    hub.state["queue"] = queue
    await worker.drain({"hub": hub})
    assert queue.jobs == [] and await _inbox_left(hub) == 0
    assert await worker.drain({"hub": hub}, budget_s=0.0) == 0 and queue.jobs == []  # no round, no work seen


async def test_open_rows_counts_each_status_and_finds_the_oldest(hub: Hub) -> None:
    from hub.sync.stats import depth, open_rows

    await _orders(hub, "a", 2, received_ago=5.0)
    await _orders(hub, "b", 3)
    async with hub.store.begin() as c:  # one item taken by a worker: processing
        first = (await c.execute(select(t.inbox.c.id).order_by(t.inbox.c.received_at).limit(1))).scalar_one()
        await c.execute(update(t.inbox).where(t.inbox.c.id == first).values(status="processing"))
    async with hub.store.connect() as c:
        n, oldest = await open_rows(c, t.inbox, ("pending", "processing"), t.inbox.c.received_at)
        assert n == 5 and oldest is not None and (now() - oldest).total_seconds() > 4.5
        assert (await open_rows(c, t.inbox, ("processing",), t.inbox.c.received_at))[0] == 1
        assert await inbox.pending_count(c) == 5
    d = await depth(hub)
    assert d.inbox == 5 and d.inbox_oldest_s > 4.5


async def test_switching_near_the_target_logs_one_line_a_minute(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="hub.worker")
    for _ in range(5):  # behind, caught up, behind... as a busy worker near the target
        assert await worker.intake_first(hub, 1.0) is True
        assert await worker.intake_first(hub, 0.0) is False
    behind = [r for r in caplog.records if "inbox behind" in r.getMessage()]
    caught_up = [r for r in caplog.records if "caught up" in r.getMessage()]
    assert len(behind) == 1 and caught_up == []
