"""Claims of the inbox and of sync jobs: which rows, in what order, and (PostgreSQL) in one statement."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event, insert, select

from hub.clock import now
from hub.store import Store
from hub.store import tables as t
from hub.sync import inbox, jobs


def _hub(store: Store) -> Any:
    return SimpleNamespace(store=store, config=SimpleNamespace(queue=SimpleNamespace(lease_seconds=30)))


class _Statements:
    """The SQL a store sends while the block runs."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine.sync_engine
        self.sql: list[str] = []

    def _seen(self, _c: Any, _cur: Any, sql: str, *_a: Any) -> None:
        self.sql.append(sql)

    def __enter__(self) -> _Statements:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def _inbox_rows(store: Store) -> None:
    ts = now()
    rows = [
        {"id": f"ib{i}", "status": "pending", "received_at": ts - timedelta(seconds=10 - i), "lease_until": None}
        for i in range(5)
    ]
    rows.append({"id": "expired", "status": "processing", "received_at": ts, "lease_until": ts - timedelta(seconds=1)})
    rows.append({"id": "held", "status": "processing", "received_at": ts, "lease_until": ts + timedelta(minutes=5)})
    async with store.begin() as conn:
        for r in rows:
            await conn.execute(
                insert(t.inbox).values(
                    connection="shop",
                    event_id=r["id"],
                    headers={},
                    body=b"{}",
                    attempts=1 if r["lease_until"] else 0,
                    **r,
                )
            )


async def test_inbox_claim_takes_pending_oldest_first_then_expired_leases_never_held_ones(store: Store) -> None:
    await _inbox_rows(store)
    hub = _hub(store)
    with _Statements(store) as sent:
        first = await inbox.claim(hub, 4)
    assert [r.id for r in first] == ["ib0", "ib1", "ib2", "ib3"]
    assert {(r.status, r.attempts) for r in first} == {("processing", 1)}
    assert all(r.lease_until > now() for r in first)
    if store.dialect == "postgresql":  # one round trip: no BEGIN, no COMMIT, no second scan or read back
        assert len(sent.sql) == 1, sent.sql
    second = await inbox.claim(hub, 4)
    assert {r.id for r in second} == {"ib4", "expired"}
    assert next(r for r in second if r.id == "expired").attempts == 2
    assert await inbox.claim(hub, 4) == []
    async with store.connect() as conn:
        held = (await conn.execute(select(t.inbox.c.status, t.inbox.c.attempts).where(t.inbox.c.id == "held"))).one()
    assert tuple(held) == ("processing", 1)


async def test_job_claim_takes_due_jobs_once_in_creation_order(store: Store) -> None:
    ts = now()
    async with store.begin() as conn:
        for i, due in enumerate([-3, -2, -1, 60]):
            await conn.execute(
                insert(t.sync_jobs).values(
                    id=f"job{i}",
                    idempotency_key=f"coalesce:k{i}",
                    connection="wms",
                    operation="submit_fulfillment",
                    object_id=f"ful{i}",
                    payload={},
                    status="pending",
                    attempts=0,
                    errors=[],
                    next_run_at=ts + timedelta(seconds=due),
                    created_at=ts + timedelta(milliseconds=i),
                    updated_at=ts,
                )
            )
    hub = _hub(store)
    with _Statements(store) as sent:
        claimed = await jobs.claim(hub, 10)
    assert [j.id for j in claimed] == ["job0", "job1", "job2"]  # job3 is not due
    assert {j.status for j in claimed} == {"running"}
    # a running coalesced job frees its key, so a change during the run queues a fresh push
    assert [j.idempotency_key for j in claimed] == [f"coalesce:k{i}:job{i}" for i in range(3)]
    if store.dialect == "postgresql":
        assert len(sent.sql) == 1, sent.sql
    assert await jobs.claim(hub, 10) == []


async def test_postgresql_job_claim_generic_plan_reads_open_jobs_by_their_partial_index(pg_store: Store) -> None:
    """asyncpg prepares the claim once and PostgreSQL soon keeps a generic plan for it: the statuses
    are written into the SQL text, so that the "older unfinished job of the object" check reads the
    partial index of open jobs, not every job the object ever had (1.7 ms a claim measured at 150
    orders/s on a slow VM, most of it that check)."""
    sent: list[tuple[str, Any]] = []

    def seen(_c: Any, _cur: Any, sql: str, params: Any, *_a: Any) -> None:
        sent.append((sql, params))

    engine = pg_store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await jobs.claim(_hub(pg_store), 10)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    ((sql, params),) = sent
    assert "IN ('pending', 'running')" in sql
    args = ", ".join("NULL" if p is None else f"'{p}'" for p in params)
    async with pg_store.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
        try:
            await raw.execute(f"PREPARE claim AS {sql}")
            plan = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN EXECUTE claim({args})"))
        finally:
            await raw.execute("DEALLOCATE ALL; RESET plan_cache_mode; RESET enable_seqscan")
    assert plan.count("ix_sync_jobs_open_by_object") == 2, plan  # the check of each scan
