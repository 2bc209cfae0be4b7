"""Group commit of webhook intake (``hub.sync._intake``): concurrent deliveries share a transaction,
every caller is answered after the commit holding its row, a failed batch stores nothing and
refuses every caller in it. Real PostgreSQL and Redis (the ``hub`` fixture), and SQLite."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import respx
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, func, select, text

from hub.api import make_app
from hub.config import HubConfig, Settings
from hub.model import new_id
from hub.runtime import Hub
from hub.store import Store
from hub.store import tables as t
from hub.sync import _intake, inbox
from hub.sync._intake import IntakeUnavailable
from tests.sync import toy
from tests.sync.conftest import CONFIG, webhook


async def _rows(h: Hub) -> int:
    async with h.store.connect() as c:
        return int((await c.execute(select(func.count()).select_from(t.inbox))).scalar_one())


@contextmanager
def _counting(h: Hub) -> Iterator[dict[str, int]]:
    """Commits, and statements that write the inbox through SQLAlchemy, on the hub's engine while the
    block runs, and the batches the intake wrote (on PostgreSQL each is one autocommit INSERT sent
    through the driver: SQLAlchemy sees neither statement nor commit)."""
    seen = {"commits": 0, "inbox_inserts": 0, "batches": 0}
    batcher = inbox._batcher(h)
    before = batcher.flushes

    def on_commit(_conn: Any) -> None:
        seen["commits"] += 1

    def on_execute(_conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOX"):
            seen["inbox_inserts"] += 1

    engine = h.store.engine.sync_engine
    event.listen(engine, "commit", on_commit)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_execute)
        seen["batches"] = batcher.flushes - before


def _delivery(event_id: str) -> tuple[dict[str, str], bytes]:
    return webhook({"id": event_id, "order": toy.order_doc(event_id)})


async def _accept_all(h: Hub, deliveries: list[tuple[dict[str, str], bytes]]) -> list[Any]:
    """Every delivery at once; each result is an Accepted or the exception its caller got."""
    return await asyncio.gather(*(inbox.accept(h, "shop", hd, b) for hd, b in deliveries), return_exceptions=True)


# ----------------------------------------------------------------------------- shared checks
async def check_200_concurrent_deliveries_share_a_few_commits(h: Hub) -> None:
    deliveries = [_delivery(f"evt-{i}") for i in range(200)]
    with _counting(h) as seen:
        results = await _accept_all(h, deliveries)
    assert all(isinstance(r, inbox.Accepted) and not r.duplicate for r in results), results[:3]
    assert len({r.id for r in results}) == 200
    assert await _rows(h) == 200  # every caller was answered after the commit that holds its row
    assert 1 <= seen["batches"] <= 4, seen  # one transaction per batch, not one per webhook
    if h.store.dialect == "sqlite":
        assert seen["commits"] == seen["batches"], seen
    if h.store.dialect == "sqlite":  # (PostgreSQL's INSERT goes through the driver: SQLAlchemy sees no statement)
        # one multi-row INSERT per batch; SQLite < 3.35: row by row, inside the batch's transaction
        assert seen["inbox_inserts"] == (seen["commits"] if _intake.SQLITE_RETURNING else 200), seen


async def check_copies_in_one_batch(h: Hub) -> None:
    before = await inbox.accept(h, "shop", *_delivery("old"))
    results = await _accept_all(
        h, [_delivery("new"), _delivery("old"), _delivery("new"), _delivery("other"), _delivery("new")]
    )
    new1, old, new2, other, new3 = results
    assert not new1.duplicate and new2.duplicate and new3.duplicate
    assert new1.id == new2.id == new3.id
    assert old.duplicate and old.id == before.id
    assert not other.duplicate and other.id not in (new1.id, before.id)
    assert await _rows(h) == 3


async def check_failed_batch_refuses_everyone_and_stores_nothing(h: Hub, poison: str) -> None:
    """``poison`` (SQL) makes the database refuse the event id 'poison' while the batch is written."""
    kept = await inbox.accept(h, "shop", *_delivery("kept"))
    batch = [_delivery(f"b-{i}") for i in range(10)] + [_delivery("kept"), _delivery("poison"), _delivery("b-0")]
    async with h.store.begin() as c:
        await c.execute(text(poison))
    try:
        results = await _accept_all(h, batch)
        assert all(isinstance(r, IntakeUnavailable) for r in results), results
        assert all(r.status == 503 and "send it again" in r.detail for r in results)
        assert await _rows(h) == 1  # no part of the batch is stored: only the row from before
    finally:
        async with h.store.begin() as c:
            await c.execute(text(_UNDO[h.store.dialect]))
    retried = await _accept_all(h, batch)  # the senders retry once the database accepts the rows
    assert [r.duplicate for r in retried] == [False] * 10 + [True, False, True]
    assert retried[10].id == kept.id
    assert await _rows(h) == 12


_POISON = {
    "postgresql": "ALTER TABLE inbox ADD CONSTRAINT test_no_poison CHECK (event_id <> 'poison')",
    "sqlite": "CREATE TRIGGER test_no_poison BEFORE INSERT ON inbox WHEN NEW.event_id = 'poison' "
    "BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
}
_UNDO = {
    "postgresql": "ALTER TABLE inbox DROP CONSTRAINT IF EXISTS test_no_poison",
    "sqlite": "DROP TRIGGER IF EXISTS test_no_poison",
}


# ----------------------------------------------------------------------------- PostgreSQL
async def test_200_concurrent_deliveries_share_a_few_commits(hub: Hub) -> None:
    await check_200_concurrent_deliveries_share_a_few_commits(hub)


async def test_copies_of_one_event_in_a_batch_make_one_row(hub: Hub) -> None:
    await check_copies_in_one_batch(hub)


async def test_a_failed_batch_refuses_every_caller_and_stores_nothing(hub: Hub) -> None:
    await check_failed_batch_refuses_everyone_and_stores_nothing(hub, _POISON["postgresql"])


async def test_batches_are_capped_and_the_backlog_goes_in_the_next_ones(hub: Hub) -> None:
    batcher = _intake.Batcher(hub.store, max_batch=50)
    hub.state["intake"] = batcher
    with _counting(hub) as seen:
        results = await _accept_all(hub, [_delivery(f"cap-{i}") for i in range(120)])
    assert sum(not r.duplicate for r in results) == 120
    assert seen["batches"] == 3, seen  # 50 + 50 + 20: everything queued is taken, at most 50 at a time
    assert await _rows(hub) == 120


async def test_a_caller_that_gives_up_still_has_its_row_stored(hub: Hub) -> None:
    gone = asyncio.create_task(inbox.accept(hub, "shop", *_delivery("gone")))
    await asyncio.sleep(0)  # queued, waiting for the flush
    gone.cancel()
    stayed = await inbox.accept(hub, "shop", *_delivery("stayed"))
    assert (await asyncio.gather(gone, return_exceptions=True))[0].__class__ is asyncio.CancelledError
    assert not stayed.duplicate
    assert await _rows(hub) == 2
    again = await inbox.accept(hub, "shop", *_delivery("gone"))  # the sender retries: a duplicate
    assert again.duplicate


async def test_a_dead_database_connection_is_refused_once_and_never_reused(hub: Hub, pg_url: str) -> None:
    await inbox.accept(hub, "shop", *_delivery("before"))
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:  # every pooled connection of the hub dies (a PostgreSQL restart, a failover)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    outcomes = []
    for i in range(15):
        try:
            outcomes.append(await inbox.accept(hub, "shop", *_delivery(f"after-{i}")))
        except IntakeUnavailable:
            outcomes.append(None)
    refused = [i for i, o in enumerate(outcomes) if o is None]
    assert refused and refused == list(range(len(refused)))  # each dead connection fails one batch, then none
    assert len(refused) <= 12 and outcomes[-1] is not None  # (a pool holds at most 8 + 4)
    assert await _rows(hub) == 1 + len(outcomes) - len(refused)  # a refused delivery is not stored


async def test_an_unreachable_database_refuses_every_waiting_delivery() -> None:
    store = Store("postgresql+asyncpg://postgres@127.0.0.1:9/nothing-listens-here")
    try:
        batcher = _intake.Batcher(store)
        at = datetime.now(UTC)
        deliveries = [
            _intake.Delivery(new_id("inb"), "shop", f"e{i}", None, None, None, {}, b"{}", at) for i in range(3)
        ]
        results = await asyncio.gather(*(batcher.submit(d) for d in deliveries), return_exceptions=True)
    finally:
        await store.close()
    assert all(isinstance(r, IntakeUnavailable) and r.status == 503 for r in results), results
    assert batcher._flusher is None and not batcher._queue  # nothing left waiting, ready for the next


async def test_http_intake_answers_503_with_retry_after_when_the_batch_fails(hub: Hub) -> None:
    headers, body = _delivery("poison")
    async with hub.store.begin() as c:
        await c.execute(text(_POISON["postgresql"]))
    try:
        async with TestClient(TestServer(make_app(hub))) as client:
            r = await client.post("/webhooks/shop", data=body, headers=headers)
            assert r.status == 503
            assert r.headers["Retry-After"] == "1"
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert "nothing was acknowledged" in (await r.json())["detail"]
    finally:
        async with hub.store.begin() as c:
            await c.execute(text(_UNDO["postgresql"]))
    assert await _rows(hub) == 0


class _Queue:
    """A stand-in for the arq queue: records the nudges; ``fail`` makes every enqueue raise."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.jobs: list[tuple[str, str | None]] = []
        self.deferred: list[float | None] = []

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> bool:
        if self.fail:
            raise ConnectionError("redis is down")
        self.jobs.append((function, job_id))
        self.deferred.append(defer_by)
        return True

    async def close(self) -> None:
        return None


async def _nudges_done(h: Hub) -> None:
    await asyncio.gather(*h.state.get("nudges", set()))


async def test_a_batch_nudges_the_workers_once_per_bucket_and_duplicates_not_at_all(hub: Hub) -> None:
    queue = _Queue()
    hub.state["queue"] = queue
    await _accept_all(hub, [_delivery(f"n-{i}") for i in range(30)])
    await _nudges_done(hub)
    # 30 new deliveries in one batch: one drain job (two if the batch straddled a 50 ms gather window),
    # deferred to the end of its window ([queue] inbox_gather_ms)
    assert 1 <= len(queue.jobs) <= 2 and all(f == "drain_window" for f, _ in queue.jobs), queue.jobs
    assert all(d is not None and 0 < d <= 0.05 for d in queue.deferred), queue.deferred
    assert len({j for _, j in queue.jobs}) == len(queue.jobs)
    before = len(queue.jobs)
    hub.state.pop("last_nudge")
    await _accept_all(hub, [_delivery("n-1"), _delivery("n-2")])  # duplicates: no work, no nudge
    await _nudges_done(hub)
    assert len(queue.jobs) == before


async def test_a_failed_nudge_does_not_fail_the_stored_delivery(hub: Hub) -> None:
    hub.state["queue"] = _Queue(fail=True)
    accepted = await inbox.accept(hub, "shop", *_delivery("redis-down"))
    await _nudges_done(hub)
    assert not accepted.duplicate
    assert await _rows(hub) == 1  # stored and acknowledged; the workers' tick drains it


# ----------------------------------------------------------------------------- SQLite
@pytest.fixture(params=["returning", "row-by-row"])
async def sqlite_hub(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Hub]:
    """A hub on SQLite with the toy channel; with INSERT ... RETURNING, and as on SQLite < 3.35."""
    if request.param == "row-by-row":
        monkeypatch.setattr(_intake, "SQLITE_RETURNING", False)
    db = tmp_path / "hub.db"
    shutil.copy(sqlite_template, db)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        plugins="tests.sync.toy",
    )
    router = respx.Router(assert_all_called=False)
    h = await Hub.open(
        settings,
        HubConfig.model_validate(CONFIG),
        migrate=False,
        http_transport=httpx.MockTransport(router.async_handler),
    )
    yield h
    await h.close()


async def test_sqlite_200_concurrent_deliveries_share_a_few_commits(sqlite_hub: Hub) -> None:
    await check_200_concurrent_deliveries_share_a_few_commits(sqlite_hub)


async def test_sqlite_copies_of_one_event_in_a_batch_make_one_row(sqlite_hub: Hub) -> None:
    await check_copies_in_one_batch(sqlite_hub)


async def test_sqlite_a_failed_batch_refuses_every_caller_and_stores_nothing(sqlite_hub: Hub) -> None:
    await check_failed_batch_refuses_everyone_and_stores_nothing(sqlite_hub, _POISON["sqlite"])


async def test_deliveries_one_at_a_time_share_a_lingering_connection_that_then_goes_back(hub: Hub) -> None:
    batcher = _intake.Batcher(hub.store, linger=0.3)
    hub.state["intake"] = batcher
    pool = hub.store.engine.sync_engine.pool
    seen = {"checkout": 0, "checkin": 0}

    def on(kind: str) -> Any:
        def count(*_a: Any) -> None:
            seen[kind] += 1

        return count

    listeners = {kind: on(kind) for kind in seen}
    for kind, fn in listeners.items():
        event.listen(pool, kind, fn)
    try:
        for i in range(5):  # each waits for its own commit: five batches, one after the other
            assert not (await inbox.accept(hub, "shop", *_delivery(f"one-{i}"))).duplicate
        assert batcher.flushes == 5 and seen == {"checkout": 1, "checkin": 0}
        await asyncio.sleep(0.5)  # nothing more within the linger: the connection is given back
        assert seen == {"checkout": 1, "checkin": 1}
    finally:
        for kind, fn in listeners.items():
            event.remove(pool, kind, fn)
    assert await _rows(hub) == 5


async def test_closing_ends_a_lingering_busy_period_and_refuses_what_comes_after(hub: Hub) -> None:
    batcher = _intake.Batcher(hub.store, linger=60.0)
    hub.state["intake"] = batcher
    await inbox.accept(hub, "shop", *_delivery("before-close"))
    await asyncio.wait_for(batcher.close(), 5)  # not the 60 s of the linger
    with pytest.raises(_intake.IntakeUnavailable, match="shutting down"):
        await inbox.accept(hub, "shop", *_delivery("after-close"))
    assert await _rows(hub) == 1
