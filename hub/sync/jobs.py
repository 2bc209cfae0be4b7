"""Outbound sync jobs: one row per (connection, operation, object), written in the same
transaction as the change that needs it, run by the worker with retries and backoff.

- Idempotent by construction: the row's ``idempotency_key`` is unique, so writing the same
  job twice (a replayed inbox item, a re-run) creates one job; connectors pass hub ids as
  the external system's reference so a retried call creates nothing twice remotely.
- Coalescing: a job enqueued with ``coalesce=True`` while an identical one is still pending
  is absorbed by it (the job reads the latest state when it runs).
- Ordering: a job does not start while an older job for the same (connection, object) is
  unfinished, so a backlog drains in order per object.
- Batching: the claimed ``push_inventory`` jobs of a connection run as one push of all their SKUs
  (``ChannelConnector.push_inventory_many``); each job still records its own outcome.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, Select, and_, bindparam, case, exists, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from hub import metrics
from hub.clock import now
from hub.errors import ConnectorError, FatalError, OrderhubError, RetriableError
from hub.logging import bind, get_logger, unbind
from hub.model import new_id
from hub.store import tables as t
from hub.store._any import constant, one_of
from hub.store._claim import Claim
from hub.store._combined import ArrayUpdate
from hub.store._pending import pending, write
from hub.store._upsert import dialect_insert, insert_ignore
from hub.sync.stats import open_rows

if TYPE_CHECKING:
    from hub.runtime import Hub

log = get_logger("hub.sync.jobs")
J = t.sync_jobs
BASE_DELAY = 2.0
MAX_DELAY = 1800.0
#: The operation whose claimed jobs of a connection run as one batch (one channel call for many SKUs).


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random, so the schedule keeps its
    length: 12 tries span about half an hour at least); a server's Retry-After is a floor."""
    cap: float = min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempt - 1))
    delay = cap / 2 + random.uniform(0, cap / 2)
    return max(delay, retry_after or 0.0)


async def enqueue(
    conn: AsyncConnection,
    connection: str,
    operation: str,
    object_id: str | None,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    coalesce: bool = False,
    delay: float = 0.0,
) -> None:
    """Write a sync job in the caller's transaction (once: an identical job already there absorbs it).

    Inside ``Store.begin`` the row is written with the transaction's other jobs just before the
    commit (one statement for all of them)."""
    ident = key or f"{connection}:{operation}:{object_id}"
    if coalesce:
        ident = f"coalesce:{ident}"
    ts = now()
    values: dict[str, Any] = {
        "id": new_id("job"),
        "idempotency_key": ident,
        "connection": connection,
        "operation": operation,
        "object_id": object_id,
        "payload": payload or {},
        "status": "pending",
        "attempts": 0,
        "errors": [],
        "next_run_at": ts + timedelta(seconds=delay),
        "lease_until": None,
        "created_at": ts,
        "updated_at": ts,
    }
    buf = pending(conn)
    inline: Inline | None = buf.facts.get(_INLINE) if buf is not None and operation in INLINE else None
    if inline is not None and not coalesce and delay <= 0:
        # leased to this worker from the commit: it runs the job straight after (run_inline); if it
        # dies first, the lease expires and any worker's claim takes the job as a crashed one's
        values["status"] = "running"
        values["lease_until"] = ts + timedelta(seconds=inline.lease_seconds)
        inline.jobs.append(values)
    if coalesce:
        # absorbed by the pending job, whose row we now lock until commit: a worker cannot claim it
        # (SKIP LOCKED) before this change is visible, so the push it makes reads the latest state
        await write(conn, _statement(conn, "coalesce"), values, variant="coalesce", prepare=_by_key, late=True)
        return
    await write(conn, _statement(conn, "ignore"), values, variant="ignore")


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(conn: AsyncConnection, kind: str) -> Any:
    """The job INSERT of ``kind`` for the connection's dialect, built once (statements are immutable)."""
    key = (conn.dialect.name, kind)
    if key not in _STATEMENTS:
        if kind == "coalesce":
            ins = dialect_insert(conn, J)
            # DO UPDATE with a false WHERE: PostgreSQL locks the pending job's row until our commit
            # and writes nothing (an update of updated_at wrote a new row version, and its index
            # entries, for every SKU of every order); SQLite's one writer needs no row lock
            _STATEMENTS[key] = ins.on_conflict_do_update(
                index_elements=["idempotency_key"], set_={"updated_at": ins.excluded.updated_at}, where=false()
            )
        else:
            _STATEMENTS[key] = insert_ignore(conn, J, ["idempotency_key"])
    return _STATEMENTS[key]


def _by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key, in key order: two transactions lock shared job rows in the same order."""
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        first.setdefault(r["idempotency_key"], r)
    return [first[k] for k in sorted(first)]


#: Operations that a worker may run straight after the transaction that writes them (:func:`collect_inline`).
INLINE = frozenset({"submit_fulfillment"})
_INLINE = "inline_jobs"


class Inline:
    """The jobs of :data:`INLINE` operations that one transaction writes, leased to the worker that
    writes them, and what it knows of their objects already (``preloaded``: object id -> data the
    operation would otherwise read back; see :func:`run_inline`)."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.jobs: list[dict[str, Any]] = []
        self.preloaded: dict[str, Any] = {}


def collect_inline(conn: AsyncConnection, lease_seconds: float) -> Inline | None:
    """Have the jobs of :data:`INLINE` operations that this transaction (``Store.begin``) writes from
    now on written as running, leased to this worker, and collected: after the commit the caller runs
    them with :func:`run_inline` (no claim, no wait for a worker's next round). None outside
    ``Store.begin``."""
    buf = pending(conn)
    if buf is None:
        return None
    inline = Inline(lease_seconds)
    buf.facts[_INLINE] = inline
    return inline


@dataclass(slots=True)
class _InlineJob:
    """A job row written by this worker's own transaction (the columns the runners read)."""

    id: str
    idempotency_key: str
    connection: str
    operation: str
    object_id: str | None
    payload: dict[str, Any]
    attempts: int
    errors: list[Any]
    lease_until: datetime | None
    created_at: datetime
    preloaded: Any = None


_COLUMNS = tuple(f.name for f in fields(_InlineJob) if f.name != "preloaded")


async def run_inline(hub: Hub, inline: list[Inline]) -> int:
    """Run the jobs that committed transactions collected (:func:`collect_inline`), as a claimed batch
    runs (:func:`_run_group`): batched per connection and operation (every :data:`INLINE` operation
    has a batch form), bounded per connection, each outcome recorded (a failure is retried with
    backoff or dead-lettered like any job's)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for batch in inline:
        for values in batch.jobs:
            job = _InlineJob(**{k: values[k] for k in _COLUMNS}, preloaded=batch.preloaded.get(values["object_id"]))
            groups.setdefault((job.connection, job.operation), []).append(job)
    await asyncio.gather(*(_run_group(hub, g) for g in groups.values()))
    return sum(len(g) for g in groups.values())


async def _run_group(hub: Hub, group: list[Any]) -> None:
    """Jobs of one connection and one operation with a batch form, through :func:`run_batched`,
    within the connection's concurrency limit (shared by claimed and inline jobs)."""
    limits: _Limits = hub.state.setdefault("job_limits", _Limits())
    async with limits.for_connection(hub, group[0].connection):
        await run_batched(hub, group)


# Operations whose batch form sends one call for many objects: when such a call is made, the
# connection's other pending jobs of the operation join it even before their coalescing delay
# ([queue] inventory_push_delay_seconds) is up; they would only wait to be sent by a later call.
EARLY = frozenset({"push_inventory"})
EARLY_LIMIT = 250  # Shopify's inventorySetQuantities takes 250 quantities


def _claim_scans() -> dict[str, list[Select[Any]]]:
    older = aliased(J)
    blocked = exists().where(
        and_(
            older.c.connection == J.c.connection,
            older.c.object_id == J.c.object_id,
            older.c.status.in_((constant("pending"), constant("running"))),  # literals: the partial index
            older.c.created_at < J.c.created_at,
            older.c.id != J.c.id,
        )
    )
    now_: BindParameter[Any] = bindparam("b_now")
    pick = select(J.c.id, J.c.idempotency_key)
    # due jobs, then jobs whose lease expired: two index-ordered scans of partial indexes (see
    # inbox.claim: an OR made a bitmap scan over every dead entry of a busy table, 64 ms per claim)
    due = [
        pick.where(and_(J.c.status == constant("pending"), J.c.next_run_at <= now_, ~blocked)).order_by(
            J.c.next_run_at
        ),
        pick.where(and_(J.c.status == constant("running"), J.c.lease_until < now_, ~blocked)).order_by(J.c.lease_until),
    ]
    early = [
        pick.where(
            and_(
                J.c.status == constant("pending"),
                J.c.connection == bindparam("b_connection"),
                J.c.operation == bindparam("b_operation"),
                ~blocked,
            )
        ).order_by(J.c.next_run_at)
    ]
    return {"due": due, "early": early}


_SCANS = _claim_scans()
# a running coalesced job frees its key, so a change during the run queues a fresh push
_TAKE = {
    "status": "running",
    "lease_until": bindparam("b_lease"),
    "idempotency_key": case(
        (J.c.idempotency_key.like("coalesce:%"), J.c.idempotency_key + ":" + J.c.id), else_=J.c.idempotency_key
    ),
    "updated_at": bindparam("b_now"),
}
_CLAIMS = {kind: Claim(J, scans, _TAKE, order=J.c.created_at) for kind, scans in _SCANS.items()}


async def claim(hub: Hub, limit: int = 100, *, early: tuple[str, str] | None = None) -> list[Any]:
    """Due jobs whose object has no older unfinished job, leased to this worker.

    ``early=(connection, operation)`` takes that connection's pending jobs of that operation whether
    due or not (see :data:`EARLY`)."""
    ts = now()
    params: dict[str, Any] = {"b_now": ts, "b_lease": ts + timedelta(seconds=hub.config.queue.lease_seconds)}
    if early is not None:
        params.update(b_connection=early[0], b_operation=early[1])
    return await _CLAIMS["due" if early is None else "early"].run(hub.store, params, limit)


class _Limits:
    def __init__(self) -> None:
        self.sems: dict[str, asyncio.Semaphore] = {}

    def for_connection(self, hub: Hub, connection: str) -> asyncio.Semaphore:
        if connection not in self.sems:
            try:
                cfg = hub.config.connection(connection)
                n = cfg.max_concurrency or hub.connector(connection).max_concurrency
            except Exception:
                n = 4
            self.sems[connection] = asyncio.Semaphore(n)
        return self.sems[connection]


async def run_batch(hub: Hub, limit: int = 100) -> int:
    """Claim and run one batch of due jobs, bounded per connection. Jobs of an operation with a batch
    form (``push_inventory``: one channel call for many SKUs; ``submit_fulfillment``: one load, one
    write for many requests) run together per connection (:func:`run_batched`)."""
    from hub.sync.operations import BATCH_OPERATIONS

    jobs = await claim(hub, limit)
    if not jobs:
        return 0
    for connection, operation in sorted({(j.connection, j.operation) for j in jobs if j.operation in EARLY}):
        # the call being made anyway carries every change waiting for it, due or not
        jobs += await claim(hub, EARLY_LIMIT, early=(connection, operation))
    limits: _Limits = hub.state.setdefault("job_limits", _Limits())

    async def one(job: Any) -> None:
        async with limits.for_connection(hub, job.connection):
            await run_job(hub, job)

    # jobs of one object run one after the other, in creation order (a claim holds at most one job
    # per object: a newer job waits for the older one, so batching never reorders an object's jobs)
    by_obj: dict[tuple[str, str | None], list[Any]] = {}
    by_op: dict[tuple[str, str], list[Any]] = {}
    for j in jobs:
        if j.operation in BATCH_OPERATIONS:
            by_op.setdefault((j.connection, j.operation), []).append(j)
        else:
            by_obj.setdefault((j.connection, j.object_id or j.id), []).append(j)

    async def chain(items: list[Any]) -> None:
        for j in items:
            await one(j)

    await asyncio.gather(*(chain(v) for v in by_obj.values()), *(_run_group(hub, v) for v in by_op.values()))
    return len(jobs)


# A lease this young was set by this worker's own claim a moment ago: only an expired lease is ever
# taken by another worker, so it is still ours and renewing it would buy under this many seconds.
FRESH_LEASE_SECONDS = 2.0


def _fresh(hub: Hub, job: Any) -> bool:
    """Whether ``job``'s lease was set less than :data:`FRESH_LEASE_SECONDS` ago (by our claim)."""
    left = (job.lease_until - now()).total_seconds()
    return bool(left > hub.config.queue.lease_seconds - FRESH_LEASE_SECONDS)


async def _take(hub: Hub, job: Any) -> bool:
    """Fencing: renew the lease only if it is still the one we claimed with (a job run straight
    after its claim keeps the claim's lease: no statement)."""
    if job.lease_until is None or _fresh(hub, job):
        return True
    async with hub.store.begin() as conn:
        res = await conn.execute(
            update(J)
            .where(and_(J.c.id == job.id, J.c.status == "running", J.c.lease_until == job.lease_until))
            .values(lease_until=now() + timedelta(seconds=hub.config.queue.lease_seconds))
        )
    return bool(res.rowcount == 1)


async def run_job(hub: Hub, job: Any) -> None:
    """Run one job through the operation registry; record the outcome."""
    token = bind(job_id=job.id, connection=job.connection, operation=job.operation, object_id=job.object_id)
    try:
        await _run_job(hub, job)
    finally:
        unbind(token)


async def _run_job(hub: Hub, job: Any) -> None:
    from hub.sync.operations import OPERATIONS

    started = asyncio.get_running_loop().time()
    if not await _take(hub, job):
        return  # our lease expired while the job waited here and another worker took it
    try:
        op = OPERATIONS.get(job.operation)
        outcome: dict[str, Any] | Exception
        try:
            if op is None:
                raise FatalError(f"unknown sync operation {job.operation!r}", connection=job.connection)
            outcome = await op(hub, job)
        except Exception as exc:
            outcome = exc
        await _record(hub, job, outcome)
    finally:
        metrics.job_latency.labels(job.operation).observe(asyncio.get_running_loop().time() - started)


async def _take_many(hub: Hub, jobs: list[Any]) -> list[Any]:
    """:func:`_take` for many jobs in one statement per lease value (none for fresh leases): the
    jobs still ours."""
    by_lease: dict[Any, list[Any]] = {}
    kept: set[str] = set()
    for job in jobs:
        if job.lease_until is None or _fresh(hub, job):
            kept.add(job.id)
        else:
            by_lease.setdefault(job.lease_until, []).append(job)
    if not by_lease:
        return [j for j in jobs if j.id in kept]
    renewed = now() + timedelta(seconds=hub.config.queue.lease_seconds)
    async with hub.store.begin() as conn:
        for lease, group in by_lease.items():
            ids = [j.id for j in group]
            res = await conn.execute(
                update(J)
                .where(and_(one_of(conn, J.c.id, ids), J.c.status == "running", J.c.lease_until == lease))
                .values(lease_until=renewed)
                .returning(J.c.id)
            )
            kept.update(r.id for r in res.all())
    return [j for j in jobs if j.id in kept]


async def run_batched(hub: Hub, jobs: list[Any]) -> None:
    """Run jobs of one connection and one operation through the operation's batch form
    (``hub.sync.operations.BATCH_OPERATIONS``); record each job's outcome as :func:`run_job` does,
    the successes in one transaction."""
    from hub.sync.operations import BATCH_OPERATIONS

    loop = asyncio.get_running_loop()
    started = loop.time()
    operation = jobs[0].operation
    token = bind(connection=jobs[0].connection, operation=operation)
    try:
        taken = await _take_many(hub, jobs)  # fencing
        if not taken:
            return
        outcomes: dict[str, dict[str, Any] | Exception]
        try:
            outcomes = await BATCH_OPERATIONS[operation](hub, taken)
        except Exception as exc:  # nothing was done (e.g. the state could not be read): every job
            outcomes = dict.fromkeys((job.id for job in taken), exc)
        done: list[tuple[Any, dict[str, Any]]] = []
        for job in taken:
            outcome = outcomes.get(job.id)
            if outcome is None:
                outcome = RuntimeError(f"the batched {operation} returned no outcome for job {job.id}")
            if isinstance(outcome, Exception):
                job_token = bind(job_id=job.id, object_id=job.object_id)
                try:
                    await _record_failure(hub, job, outcome)
                finally:
                    unbind(job_token)
            else:
                done.append((job, outcome))
        if done:
            try:
                await _record_done_many(hub, done)
            except Exception as exc:
                for job, _ in done:
                    await _record_failure(hub, job, exc)
        elapsed = loop.time() - started
        for job in taken:
            metrics.job_latency.labels(job.operation).observe(elapsed)
    finally:
        unbind(token)


_DONE = (
    update(J)
    .where(J.c.id == bindparam("b_id"))
    .values(
        status="done",
        attempts=bindparam("b_attempts"),
        result=bindparam("b_result"),
        lease_until=None,
        updated_at=bindparam("b_ts"),
    )
)


# PostgreSQL: a batch's outcomes in one statement
_DONE_MANY = ArrayUpdate(
    J,
    ["id", "attempts", "result"],
    "status = 'done', attempts = u.attempts, result = u.result, lease_until = NULL, updated_at = :b_ts",
)


async def _record_done_many(hub: Hub, done: list[tuple[Any, dict[str, Any]]]) -> None:
    from hub.sync.failures import resolve_failures

    ts = now()
    async with hub.store.begin() as conn:
        if conn.dialect.name == "postgresql":
            rows = [{"id": j.id, "attempts": j.attempts + 1, "result": r or {}} for j, r in done]
            await conn.execute(*_DONE_MANY.statement(conn.dialect, rows, b_ts=ts))
        else:
            await conn.execute(
                _DONE,
                [{"b_id": j.id, "b_attempts": j.attempts + 1, "b_result": r or {}, "b_ts": ts} for j, r in done],
            )
        # a dead-lettered job always has errors (written with its failure): one that never failed has
        # no failure to close, and the batches of fresh jobs skip the statement
        await resolve_failures(conn, "job", [j.id for j, _ in done if j.errors])
    for j, _ in done:
        metrics.jobs_total.labels(j.operation, "done").inc()


async def _record(hub: Hub, job: Any, outcome: dict[str, Any] | Exception) -> None:
    """Store a run's outcome: done with its result, or (an exception) a retry with backoff or, when it is
    permanent or the last try, a dead letter (``failed`` and a sync failure). A failure to store "done"
    counts as a failed run."""
    if not isinstance(outcome, Exception):
        try:
            await _record_done(hub, job, outcome)
            return
        except Exception as exc:
            outcome = exc
    await _record_failure(hub, job, outcome)


async def _record_done(hub: Hub, job: Any, result: dict[str, Any]) -> None:
    from hub.sync.failures import resolve_failures

    async with hub.store.begin() as conn:
        await conn.execute(
            update(J)
            .where(J.c.id == job.id)
            .values(status="done", attempts=job.attempts + 1, result=result or {}, lease_until=None, updated_at=now())
        )
        if job.errors:  # see _record_done_many
            await resolve_failures(conn, "job", job.id)
    metrics.jobs_total.labels(job.operation, "done").inc()


async def _record_failure(hub: Hub, job: Any, exc: Exception) -> None:
    from hub.sync.failures import record_failure

    attempt = job.attempts + 1
    error = f"{type(exc).__name__}: {getattr(exc, 'detail', None) or exc}"
    errors = [*list(job.errors or []), {"at": now().isoformat(), "attempt": attempt, "error": error[:1000]}][-20:]
    retriable = isinstance(exc, RetriableError) or not isinstance(exc, (OrderhubError,))
    if isinstance(exc, FatalError):
        retriable = False
    final = not retriable or attempt >= hub.config.queue.max_tries
    async with hub.store.begin() as conn:
        if final:
            await conn.execute(
                update(J)
                .where(J.c.id == job.id)
                .values(status="failed", attempts=attempt, errors=errors, lease_until=None, updated_at=now())
            )
            req = exc.request if isinstance(exc, ConnectorError) else None
            resp = exc.response if isinstance(exc, ConnectorError) else None
            await record_failure(
                conn,
                source="job",
                source_id=job.id,
                connection=job.connection,
                operation=job.operation,
                object_id=job.object_id,
                attempts=attempt,
                error=error,
                errors=errors,
                request=req or {"payload": job.payload},
                response=resp,
            )
            metrics.sync_failures.labels(job.connection, job.operation).inc()
        else:
            delay = backoff(attempt, getattr(exc, "retry_after", None))
            await conn.execute(
                update(J)
                .where(J.c.id == job.id)
                .values(
                    status="pending",
                    attempts=attempt,
                    errors=errors,
                    lease_until=None,
                    next_run_at=now() + timedelta(seconds=delay),
                    updated_at=now(),
                )
            )
            metrics.sync_retries.labels(job.connection, job.operation).inc()
    metrics.jobs_total.labels(job.operation, "failed" if final else "retry").inc()
    log.warning(
        "sync job failed",
        extra={
            "fields": {
                "job_id": job.id,
                "connection": job.connection,
                "operation": job.operation,
                "attempt": attempt,
                "final": final,
                "error": error[:300],
            }
        },
    )


async def pending_count(conn: AsyncConnection) -> int:
    """Jobs waiting or running."""
    return (await open_rows(conn, J, ("pending", "running"), J.c.created_at))[0]


async def _first_due(conn: AsyncConnection) -> float | None:
    """Seconds from now to the earliest pending job's due time (negative once it is due; None: no job)."""
    row = (await conn.execute(select(func.min(J.c.next_run_at)).where(J.c.status == "pending"))).scalar_one_or_none()
    return None if row is None else float((row - now()).total_seconds())


async def next_due_in(conn: AsyncConnection) -> float | None:
    """Seconds until the next pending job is due (None when there is none)."""
    due = await _first_due(conn)
    return None if due is None else max(0.0, due)


async def overdue_seconds(conn: AsyncConnection) -> float:
    """How long the longest-waiting due job has been due, in seconds (0.0 when none is due)."""
    due = await _first_due(conn)
    return 0.0 if due is None else max(0.0, -due)
