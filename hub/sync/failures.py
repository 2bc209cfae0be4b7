"""Dead-lettered syncs: record, list, inspect and replay (with an audit row per replay).

A failure is either an inbound item that could not be applied (``source = inbox``) or an
outbound job that exhausted its attempts or was refused (``source = job``). Replay runs the
*current* code and mappings, so a mapping fix followed by a replay repairs the data, and a
replay of a failure that is already resolved changes nothing.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import InputError, NotFound
from hub.logging import get_logger, redact
from hub.model import SyncFailed, new_id
from hub.store import outbox
from hub.store import tables as t
from hub.store._any import one_of
from hub.store._upsert import dialect_insert
from hub.store.orders import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from hub.runtime import Hub
    from hub.sync.jobs import _Limits

log = get_logger("hub.sync.failures")
_BATCH = 100  # jobs replayed per batch (operations with a batch form)
F = t.sync_failures
J = t.sync_jobs
_INSERT_REPLAY = insert(t.replays)  # built once: one audit row per replayed failure
IB = t.inbox


async def record_failure(
    conn: AsyncConnection,
    *,
    source: str,
    source_id: str,
    connection: str,
    operation: str,
    object_id: str | None,
    attempts: int,
    error: str,
    errors: list[dict[str, Any]] | None = None,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
) -> str:
    """Create (or re-open) the failure of one inbox item or job, and emit ``sync.failed``."""
    ts = now()
    fid = new_id("fail")
    ins = dialect_insert(conn, F).values(
        id=fid,
        source=source,
        source_id=source_id,
        connection=connection,
        operation=operation,
        object_id=object_id,
        attempts=attempts,
        errors=errors or [{"at": ts.isoformat(), "attempt": attempts, "error": error[:1000]}],
        last_error=error[:2000],
        request=redact(request) if request else None,
        response=redact(response) if response else None,
        status="open",
        created_at=ts,
        updated_at=ts,
    )
    await conn.execute(
        ins.on_conflict_do_update(
            index_elements=["source", "source_id"],
            set_={
                "attempts": ins.excluded.attempts,
                "errors": ins.excluded.errors,
                "last_error": ins.excluded.last_error,
                "response": ins.excluded.response,
                "status": "open",
                "updated_at": ts,
            },
        )
    )
    row = (await conn.execute(select(F.c.id).where(and_(F.c.source == source, F.c.source_id == source_id)))).one()
    await outbox.emit(
        conn,
        "sync.failed",
        SyncFailed(
            failure_id=row.id, connection=connection, operation=operation, object_id=object_id, error=error[:500]
        ),
        object_id=row.id,
        connection=connection,
    )
    return str(row.id)


async def resolve_failures(conn: AsyncConnection, source: str, source_id: str | list[str]) -> None:
    """Close the open failures of a job or inbox item (or of several: one statement) that is now done."""
    ids = [source_id] if isinstance(source_id, str) else source_id
    if not ids:
        return
    await conn.execute(
        update(F)
        .where(and_(F.c.source == source, one_of(conn, F.c.source_id, ids), F.c.status != "resolved"))
        .values(status="resolved", updated_at=now())
    )


@dataclass
class FailureFilter:
    connection: str | None = None
    operation: str | None = None
    error: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = "open"

    def where(self) -> Any:
        conds = []
        if self.connection:
            conds.append(F.c.connection == self.connection)
        if self.operation:
            conds.append(F.c.operation == self.operation)
        if self.error:
            conds.append(F.c.last_error.ilike(f"%{self.error}%"))
        if self.since:
            conds.append(F.c.created_at >= self.since)
        if self.until:
            conds.append(F.c.created_at < self.until)
        if self.status and self.status != "all":
            conds.append(F.c.status == self.status)
        return and_(*conds) if conds else None


def _public(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "source_id": r.source_id,
        "connection": r.connection,
        "operation": r.operation,
        "object_id": r.object_id,
        "attempts": r.attempts,
        "status": r.status,
        "last_error": r.last_error,
        "errors": r.errors,
        "request": r.request,
        "response": r.response,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


async def list_failures(
    conn: AsyncConnection, flt: FailureFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    q = select(F).order_by(F.c.id.desc()).limit(limit + 1)
    w = flt.where()
    if w is not None:
        q = q.where(w)
    if cursor:
        q = q.where(F.c.id < decode_cursor(cursor))
    rows = (await conn.execute(q)).all()
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return [_public(r) for r in rows[:limit]], nxt


async def get_failure(conn: AsyncConnection, failure_id: str) -> dict[str, Any]:
    row = (await conn.execute(select(F).where(F.c.id == failure_id))).first()
    if row is None:
        raise NotFound(f"sync failure {failure_id} does not exist", failure_id=failure_id)
    out = _public(row)
    out["replays"] = [
        {"at": r.at.isoformat(), "actor": r.actor, "dry_run": r.dry_run, "result": r.result, "detail": r.detail}
        for r in (
            await conn.execute(select(t.replays).where(t.replays.c.failure_id == failure_id).order_by(t.replays.c.id))
        ).all()
    ]
    return out


#: Failures replayed at once unless told otherwise; a connection's ``max_concurrency`` still caps its jobs.
DEFAULT_CONCURRENCY = 32
#: A page (loaded, leased, read back and audited together) holds this many failures per concurrency slot.
PAGE_PER_SLOT = 4
#: Ids per ``IN (...)`` when a list of failure ids is looked up.
_IDS_PER_QUERY = 1000
#: What a page needs of a failure (not its request and response snapshots).
_COLS = (F.c.id, F.c.source, F.c.source_id, F.c.connection, F.c.operation, F.c.object_id, F.c.status)


@dataclass
class ReplayResult:
    failure_id: str
    result: str  # resolved, failed, already_resolved, would_replay, in_progress
    detail: str | None = None


async def replay_one(hub: Hub, failure_id: str, *, actor: str, dry_run: bool = False) -> ReplayResult:
    """Run the failed inbox item or job again, now, with the current code and mappings."""
    flt = FailureFilter(status=None)
    return (await replay_matching(hub, flt, actor=actor, dry_run=dry_run, ids=[failure_id], concurrency=1))[0]


async def count_failures(conn: AsyncConnection, flt: FailureFilter) -> int:
    """How many failures match ``flt``."""
    q = select(func.count()).select_from(F)
    w = flt.where()
    if w is not None:
        q = q.where(w)
    return int((await conn.execute(q)).scalar_one())


async def replay_matching(
    hub: Hub,
    flt: FailureFilter,
    *,
    actor: str,
    dry_run: bool = False,
    ids: list[str] | None = None,
    progress: Callable[[ReplayResult], None] | None = None,
    limit: int = 100_000,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ReplayResult]:
    """Replay the given failures (reported in the given order), or up to ``limit`` failures matching
    ``flt``, oldest first.

    Up to ``concurrency`` run at once, and a connection's ``max_concurrency`` caps its jobs as in the
    worker; the failures of one (connection, object) run one after the other in creation order. Work
    goes by pages of ``PAGE_PER_SLOT * concurrency`` failures: one query loads a page, one statement
    per source kind leases and reads back its jobs and inbox items, one query reads the outcomes and
    one transaction writes the audit rows. Only a job or item that nobody holds is leased, so a
    failure is never run twice at once (its result is then ``in_progress``). Unknown ids raise
    NotFound before anything runs.
    """
    if concurrency < 1:
        raise InputError(f"replay concurrency must be 1 or more (got {concurrency})", concurrency=concurrency)
    replay = _Replay(hub, actor=actor, dry_run=dry_run, concurrency=concurrency)
    size = PAGE_PER_SLOT * concurrency
    out: dict[str, ReplayResult] = {}
    pages = _pages_of(hub, ids, size) if ids is not None else _pages_matching(hub, flt, size, limit)
    async for page in pages:
        for r in await replay.page(page):
            out[r.failure_id] = r
            if progress:
                progress(r)
    if ids is None:
        return list(out.values())
    return [out[i] for i in dict.fromkeys(ids)]


async def shard_matching(
    hub: Hub, flt: FailureFilter, shards: int, *, ids: list[str] | None = None, limit: int = 100_000
) -> list[list[str]]:
    """The failures :func:`replay_matching` would take (``ids``, or up to ``limit`` matching ``flt``),
    split into ``shards`` lists of ids for as many replaying processes. The failures of one
    (connection, object) are always in the same list, in creation order, so each process keeps the
    per-object order that one process keeps. Unknown ids raise NotFound."""
    out: list[list[str]] = [[] for _ in range(max(1, shards))]
    pages = _pages_of(hub, ids, _IDS_PER_QUERY) if ids is not None else _pages_matching(hub, flt, 1000, limit)
    async for page in pages:
        for r in page:
            key = f"{r.connection}\x00{r.object_id if r.object_id is not None else r.id}"
            out[zlib.crc32(key.encode()) % len(out)].append(r.id)
    return out


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _pages_of(hub: Hub, ids: list[str], size: int) -> AsyncIterator[list[Any]]:
    """The failures named by ``ids`` in creation order, by pages; NotFound (before the first page) if one is unknown."""
    wanted = list(dict.fromkeys(ids))
    rows: list[Any] = []
    async with hub.store.connect() as conn:
        for chunk in _chunks(wanted, _IDS_PER_QUERY):
            rows += (await conn.execute(select(*_COLS).where(one_of(conn, F.c.id, chunk)))).all()
    missing = sorted(set(wanted) - {r.id for r in rows})
    if len(missing) == 1:
        raise NotFound(f"sync failure {missing[0]} does not exist", failure_id=missing[0])
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise NotFound(
            f"sync failures {', '.join(missing[:5])}{more} do not exist; nothing was replayed", failure_ids=missing
        )
    rows.sort(key=lambda r: r.id)  # ids are time-ordered: creation order
    for page in _chunks(rows, size):
        yield page


async def _pages_matching(hub: Hub, flt: FailureFilter, size: int, limit: int) -> AsyncIterator[list[Any]]:
    """Up to ``limit`` failures matching ``flt`` in creation order, one query per page (keyset on the id)."""
    w = flt.where()
    after: str | None = None
    left = limit
    while left > 0:
        q = select(*_COLS).order_by(F.c.id).limit(min(size, left))
        if w is not None:
            q = q.where(w)
        if after is not None:
            q = q.where(F.c.id > after)
        async with hub.store.connect() as conn:
            rows = list((await conn.execute(q)).all())
        if not rows:
            return
        yield rows
        left -= len(rows)
        after = rows[-1].id


def _connection_limit(hub: Hub, connection: str) -> int:
    """The jobs of ``connection`` that may run at once (as ``jobs.run_batch`` caps them)."""
    try:
        return int(hub.config.connection(connection).max_concurrency or hub.connector(connection).max_concurrency)
    except (KeyError, NotFound):
        return 4


class _Replay:
    """One replay run: the shared concurrency slots, and the work of one page."""

    def __init__(self, hub: Hub, *, actor: str, dry_run: bool, concurrency: int) -> None:
        from hub.sync import jobs

        self.hub = hub
        self.actor = actor
        self.dry_run = dry_run
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        # the worker's per-connection semaphores: replays and jobs of this process share them
        self.limits: _Limits = hub.state.setdefault("job_limits", jobs._Limits())

    async def page(self, rows: list[Any]) -> list[ReplayResult]:
        """Replay one page of failures (creation order) and audit each; the results in the same order."""
        results: dict[str, ReplayResult] = {
            f.id: ReplayResult(f.id, "already_resolved") for f in rows if f.status == "resolved"
        }
        todo = [f for f in rows if f.id not in results]
        new_errors: dict[str, str] = {}
        if self.dry_run:
            for f in todo:
                results[f.id] = ReplayResult(
                    f.id, "would_replay", f"{f.source} {f.source_id}: {f.operation} on {f.connection}"
                )
        elif todo:
            leased = await self._lease(todo)
            crashed = await self._run(todo, leased)
            outcomes, new_errors = await self._outcomes(todo, leased, crashed)
            results.update(outcomes)
        ordered = [results[f.id] for f in rows]
        resolve = [f.id for f in todo if results[f.id].result == "already_resolved"]
        await self._record(ordered, new_errors, resolve)
        return ordered

    def _lease_seconds(self, todo: list[Any]) -> float:
        """Long enough for the last failure of the page to start, if each run takes up to one lease."""
        slots = self.concurrency
        for c in {f.connection for f in todo if f.source == "job"}:
            slots = min(slots, _connection_limit(self.hub, c))
        chains: dict[tuple[str, str], int] = {}
        for f in todo:
            key = (f.connection, f.object_id or f.id)
            chains[key] = chains.get(key, 0) + 1
        waves = max(-(-len(todo) // slots), max(chains.values()))
        return float(self.hub.config.queue.lease_seconds * waves)

    async def _lease(self, todo: list[Any]) -> dict[tuple[str, str], Any]:
        """Lease the page's jobs and inbox items that nobody holds (one UPDATE ... RETURNING per kind), so no
        worker or other replay runs them meanwhile; ``{(source, source_id): row as leased}``."""
        ts = now()
        lease = ts + timedelta(seconds=self._lease_seconds(todo))
        job_ids = [f.source_id for f in todo if f.source == "job"]
        item_ids = [f.source_id for f in todo if f.source == "inbox"]
        out: dict[tuple[str, str], Any] = {}
        async with self.hub.store.begin() as conn:
            if job_ids:
                free = or_(J.c.status.in_(("failed", "pending")), and_(J.c.status == "running", J.c.lease_until < ts))
                stmt = (
                    update(J)
                    .where(one_of(conn, J.c.id, job_ids), free)
                    .values(status="running", attempts=0, lease_until=lease, next_run_at=ts, updated_at=ts)
                    .returning(*J.c)
                )
                out.update({("job", r.id): r for r in (await conn.execute(stmt)).all()})
            if item_ids:
                free = or_(
                    IB.c.status.in_(("failed", "pending")), and_(IB.c.status == "processing", IB.c.lease_until < ts)
                )
                stmt = (
                    update(IB)
                    .where(one_of(conn, IB.c.id, item_ids), free)
                    .values(status="processing", attempts=0, lease_until=lease)
                    .returning(*IB.c)
                )
                out.update({("inbox", r.id): r for r in (await conn.execute(stmt)).all()})
        return out

    async def _run(self, todo: list[Any], leased: dict[tuple[str, str], Any]) -> dict[str, str]:
        """Run the leased jobs and items: one object's in order, different objects concurrently; the
        errors of runs that raised (by failure id)."""
        from hub.sync.operations import BATCH_OPERATIONS

        chains: dict[tuple[str, str], list[Any]] = {}
        for f in todo:
            if (f.source, f.source_id) in leased:
                chains.setdefault((f.connection, f.object_id or f.id), []).append(f)
        crashed: dict[str, str] = {}

        async def single(f: Any) -> None:
            error = await self._run_one(f, leased[(f.source, f.source_id)])
            if error is not None:
                crashed[f.id] = error

        # wave k holds the k-th failure of every object, so an object's failures still replay in order;
        # within a wave, jobs whose operation has a batch form run as batches (one load, one write)
        for k in range(max((len(c) for c in chains.values()), default=0)):
            wave = [c[k] for c in chains.values() if len(c) > k]
            batches: dict[tuple[str, str], list[Any]] = {}
            singles: list[Any] = []
            for f in wave:
                if f.source == "job" and f.operation in BATCH_OPERATIONS:
                    batches.setdefault((f.connection, f.operation), []).append(f)
                else:
                    singles.append(f)
            parts = [b[i : i + _BATCH] for b in batches.values() for i in range(0, len(b), _BATCH)]
            await asyncio.gather(*(self._run_batch(p, leased, crashed) for p in parts), *(single(f) for f in singles))
        return crashed

    async def _run_batch(
        self, failures: list[Any], leased: dict[tuple[str, str], Any], crashed: dict[str, str]
    ) -> None:
        """Run the leased jobs of several failures (one connection, one operation) as one batch."""
        from hub.sync import jobs

        try:
            async with self.limits.for_connection(self.hub, failures[0].connection), self.slots:
                await jobs.run_batched(self.hub, [leased[(f.source, f.source_id)] for f in failures])
        except Exception as exc:  # reported as failed, like a single run that raised
            log.exception("batched replay of %d failures raised", len(failures))
            for f in failures:
                crashed[f.id] = f"{type(exc).__name__}: {exc}"

    async def _run_one(self, f: Any, source: Any) -> str | None:
        """Run one leased job (within its connection's limit) or inbox item; the error if it raised."""
        from hub.sync import inbox, jobs

        try:
            if f.source == "inbox":
                async with self.slots:
                    await inbox.process_item(self.hub, source)
            else:
                async with self.limits.for_connection(self.hub, f.connection), self.slots:
                    await jobs.run_job(self.hub, source)
        except Exception as exc:  # one broken run must not stop the others; it is reported as failed
            log.exception("replay of %s raised", f.id)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _outcomes(
        self, todo: list[Any], leased: dict[tuple[str, str], Any], crashed: dict[str, str]
    ) -> tuple[dict[str, ReplayResult], dict[str, str]]:
        """Each failure's result from what the run left in its job or item (one query for the page), and
        the new errors of runs that will be retried (by failure id)."""
        q = (
            select(
                F.c.id,
                F.c.last_error,
                J.c.status.label("job_status"),
                J.c.errors.label("job_errors"),
                IB.c.status.label("inbox_status"),
                IB.c.error.label("inbox_error"),
            )
            .select_from(
                F.outerjoin(J, and_(F.c.source == "job", J.c.id == F.c.source_id)).outerjoin(
                    IB, and_(F.c.source == "inbox", IB.c.id == F.c.source_id)
                )
            )
            .where(one_of(self.hub.store.dialect, F.c.id, [f.id for f in todo]))
        )
        async with self.hub.store.connect() as conn:
            after = {r.id: r for r in (await conn.execute(q)).all()}
        results: dict[str, ReplayResult] = {}
        new_errors: dict[str, str] = {}
        for f in todo:
            if f.id in crashed:
                results[f.id] = ReplayResult(f.id, "failed", crashed[f.id])
                continue
            res, retry_error = _outcome(f, after[f.id], ran=(f.source, f.source_id) in leased)
            results[f.id] = res
            if retry_error is not None:
                new_errors[f.id] = retry_error
        return results, new_errors

    async def _record(self, results: list[ReplayResult], new_errors: dict[str, str], resolve: list[str]) -> None:
        """One audit row per replay (one multi-row insert); the new error of failures whose run will be
        retried; failures whose job or item was already done are resolved."""
        ts = now()
        async with self.hub.store.begin() as conn:
            await conn.execute(  # executemany of one cached statement (a multi-VALUES insert compiled per page)
                _INSERT_REPLAY,
                [
                    {
                        "failure_id": r.failure_id,
                        "actor": self.actor,
                        "at": ts,
                        "dry_run": self.dry_run,
                        "result": r.result,
                        "detail": r.detail,
                    }
                    for r in results
                ],
            )
            if new_errors:
                await conn.execute(
                    update(F)
                    .where(F.c.id == bindparam("b_id"), F.c.status == "open")
                    .values(last_error=bindparam("b_error"), updated_at=ts),
                    [{"b_id": k, "b_error": v[:2000]} for k, v in new_errors.items()],
                )
            if resolve:
                await conn.execute(
                    update(F)
                    .where(one_of(conn, F.c.id, resolve), F.c.status != "resolved")
                    .values(status="resolved", updated_at=ts)
                )


def _outcome(f: Any, after: Any, *, ran: bool) -> tuple[ReplayResult, str | None]:
    """The result of one failure from the status its job or item has now; and, when a run failed in a
    way that will be retried, its error (the failure keeps it as its latest)."""
    kind, status = ("job", after.job_status) if f.source == "job" else ("inbox item", after.inbox_status)
    what = f"{kind} {f.source_id}"
    if status is None:
        return ReplayResult(f.id, "failed", f"{what} no longer exists: nothing to replay"), None
    if status == "done":
        return ReplayResult(f.id, "resolved" if ran else "already_resolved"), None
    if not ran:
        detail = f"{what} is {status}: a worker or another replay holds it, so it was not run again"
        return ReplayResult(f.id, "in_progress", detail), None
    if status == "failed":  # dead-lettered again: record_failure re-opened the failure with the new error
        return ReplayResult(f.id, "failed", after.last_error), None
    if kind == "job" and status == "running":  # our lease ran out before the job started; a worker has it
        detail = f"{what} was taken over by a worker before the replay ran it"
        return ReplayResult(f.id, "in_progress", detail), None
    # failed again in a transient way: the worker retries it; the failure is open with the new error
    newest = (after.job_errors or [{}])[-1].get("error") if kind == "job" else after.inbox_error
    error = str(newest or after.last_error)
    return ReplayResult(f.id, "failed", error), error
