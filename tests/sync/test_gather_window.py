"""Gather windows (``[queue] inbox_gather_ms``): a webhook's nudge queues its window's drain at the
window's end; that drain takes the window's orders together and leaves what arrives meanwhile to
the next window's drain, unless its claims are full (a backlog: it goes on as ``drain`` does)
(real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.runtime import Hub
from hub.store import tables as t
from hub.sync import inbox, worker
from hub.sync.queue import ArqQueue
from tests.sync import toy
from tests.sync.conftest import burst_worker, webhook


async def _accept(h: Hub, prefix: str, n: int) -> None:
    for i in range(n):
        headers, body = webhook({"id": f"evt-{prefix}{i}", "order": toy.order_doc(f"{prefix}{i}")})
        await inbox.accept(h, "shop", headers, body)


async def _pending(h: Hub) -> int:
    async with h.store.connect() as c:
        q = select(func.count()).select_from(t.inbox).where(t.inbox.c.status == "pending")
        return int((await c.execute(q)).scalar_one())


class _Queue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, str | None, float | None]] = []

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> bool:
        self.jobs.append((function, job_id, defer_by))
        return True

    async def close(self) -> None:
        return None


def _arrivals_during_the_first_round(h: Hub, monkeypatch: pytest.MonkeyPatch, n: int) -> list[int]:
    """Claims made (their sizes); ``n`` orders arrive while the first one is applied."""
    sizes: list[int] = []
    real = inbox.process_batch_waited

    async def spy(hub: Hub, limit: int = 100, *a: Any, **kw: Any) -> tuple[int, float]:
        out = await real(hub, limit, *a, **kw)
        sizes.append(out[0])
        if len(sizes) == 1:
            await _accept(hub, "late", n)
        return out

    monkeypatch.setattr(inbox, "process_batch_waited", spy)
    return sizes


async def test_a_window_drain_leaves_later_arrivals_to_the_next_windows_drain(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _Queue()
    await _accept(hub, "w", 5)
    hub.state["queue"] = queue
    sizes = _arrivals_during_the_first_round(hub, monkeypatch, 3)
    assert await worker.drain_window({"hub": hub}) == 5
    assert sizes == [5]  # one claim: the window's five orders
    assert await _pending(hub) == 3  # the three that came meanwhile wait for their window...
    for task in list(hub.state.get("nudges", ())):
        await task
    # ...queued (two windows' drains if the arrivals straddled two windows)
    assert 1 <= len(queue.jobs) <= 2 and all(f == "drain_window" and d and 0 < d <= 0.05 for f, _, d in queue.jobs)
    assert await worker.drain_window({"hub": hub}) == 3
    assert await _pending(hub) == 0


async def test_the_tick_like_a_window_stops_after_a_round_that_was_not_full(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a steady rate a tick that drained until empty would claim the few orders that arrived
    meanwhile, round after round, for its whole budget (and queue a drain to go on after it)."""
    queue = _Queue()
    await _accept(hub, "w", 5)
    hub.state["queue"] = queue
    sizes = _arrivals_during_the_first_round(hub, monkeypatch, 3)
    assert await worker.tick({"hub": hub}) == 5
    assert sizes == [5] and await _pending(hub) == 3
    assert [f for f, _, _ in queue.jobs if f != "drain_window"] == []  # no drain queued to go on
    monkeypatch.setattr(hub.config.queue, "inbox_gather_ms", 0.0)  # without windows: until nothing is left
    await worker.tick({"hub": hub})
    assert sizes[1] == 3 and len(sizes) > 2 and await _pending(hub) == 0  # rounds until an empty one


async def test_drain_goes_on_until_nothing_is_left(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    await _accept(hub, "w", 5)
    sizes = _arrivals_during_the_first_round(hub, monkeypatch, 3)
    assert await worker.drain({"hub": hub}) == 8
    assert sizes == [5, 3, 0] and await _pending(hub) == 0


async def test_a_window_drain_goes_on_while_its_claims_are_full(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = _Queue()
    hub.state["queue"] = queue
    monkeypatch.setattr(worker, "_BATCH", 2)  # a backlog: every claim takes as many as it may
    await _accept(hub, "w", 5)
    sizes = _arrivals_during_the_first_round(hub, monkeypatch, 0)
    assert await worker.drain_window({"hub": hub}) == 5
    assert sizes == [2, 2, 1] and await _pending(hub) == 0
    assert [f for f, _, _ in queue.jobs if f == "drain"] == []  # it stopped within its budget: nothing queued


async def test_the_window_is_allowed_for_in_the_intake_lag(hub: Hub) -> None:
    q = hub.config.queue
    assert (q.inbox_gather_ms, q.intake_lag_target_ms) == (50.0, 50.0)
    assert inbox.keeping_up(hub, 0.090)  # waited its window and 40 ms more
    assert not inbox.keeping_up(hub, 0.110)


async def test_without_a_window_the_nudge_queues_a_drain_at_once(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.config.queue, "inbox_gather_ms", 0.0)
    queue = _Queue()
    hub.state["queue"] = queue
    await _accept(hub, "w", 2)
    for task in list(hub.state.get("nudges", ())):
        await task
    assert 1 <= len(queue.jobs) <= 2 and {(f, d) for f, _, d in queue.jobs} == {("drain", None)}
    assert not inbox.keeping_up(hub, 0.060)


# arq's Worker.close() calls redis-py's deprecated close(): arq's code, not the hub's
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_through_arq_the_windows_drain_runs_at_its_end_and_takes_its_orders_together(
    hub: Hub, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub.config.queue, "inbox_gather_ms", 300.0)  # wide, so that the test's own pace fits in
    window = 0.3
    await asyncio.sleep(window - time.time() % window)  # start at the beginning of a window
    sizes = _arrivals_during_the_first_round(hub, monkeypatch, 0)
    claimed_at: list[float] = []
    counted = inbox.process_batch_waited

    async def timed(h: Hub, limit: int = 100, *a: Any, **kw: Any) -> tuple[int, float]:
        claimed_at.append(time.time())
        return await counted(h, limit, *a, **kw)

    monkeypatch.setattr(inbox, "process_batch_waited", timed)
    hub.state["queue"] = queue = await ArqQueue.connect(redis_url, redis_prefix)
    arq = burst_worker([worker.drain_window], redis_url, redis_prefix, ctx={"hub": hub}, poll_delay=0.02)
    try:
        first = time.time()
        await _accept(hub, "w", 4)
        for task in list(hub.state.get("nudges", ())):
            await task
        await asyncio.wait_for(arq.main(), 20)
    finally:
        await arq.close()
        await queue.close()
    assert await _pending(hub) == 0
    # one claim took the four (two if the test was slow enough for them to straddle two windows),
    # not before the end of the first one's window
    assert sum(sizes) == 4 and len(sizes) <= 2, sizes
    assert claimed_at[0] >= (int(first / window) + 1) * window
