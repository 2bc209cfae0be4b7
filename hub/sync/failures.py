"""Dead-lettered syncs: record, list, inspect and replay (with an audit row per replay).

A failure is either an inbound item that could not be applied (``source = inbox``) or an
outbound job that exhausted its attempts or was refused (``source = job``). Replay runs the
*current* code and mappings, so a mapping fix followed by a replay repairs the data, and a
replay of a failure that is already resolved changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import NotFound
from hub.logging import redact
from hub.model import SyncFailed, new_id
from hub.store import outbox
from hub.store import tables as t
from hub.store._upsert import dialect_insert
from hub.store.orders import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from hub.runtime import Hub

F = t.sync_failures


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


async def resolve_failures(conn: AsyncConnection, source: str, source_id: str) -> None:
    await conn.execute(
        update(F)
        .where(and_(F.c.source == source, F.c.source_id == source_id, F.c.status != "resolved"))
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


@dataclass
class ReplayResult:
    failure_id: str
    result: str  # resolved, failed, already_resolved, would_replay
    detail: str | None = None


async def _audit(hub: Hub, failure_id: str, actor: str, dry_run: bool, result: str, detail: str | None) -> None:
    async with hub.store.begin() as conn:
        await conn.execute(
            insert(t.replays).values(
                failure_id=failure_id, actor=actor, at=now(), dry_run=dry_run, result=result, detail=detail
            )
        )


async def replay_one(hub: Hub, failure_id: str, *, actor: str, dry_run: bool = False) -> ReplayResult:
    """Run the failed inbox item or job again, now, with the current code and mappings."""
    from hub.sync import inbox, jobs

    async with hub.store.connect() as conn:
        f = (await conn.execute(select(F).where(F.c.id == failure_id))).first()
    if f is None:
        raise NotFound(f"sync failure {failure_id} does not exist", failure_id=failure_id)
    if f.status == "resolved":
        res = ReplayResult(failure_id, "already_resolved")
    elif dry_run:
        res = ReplayResult(failure_id, "would_replay", f"{f.source} {f.source_id}: {f.operation} on {f.connection}")
    else:
        ok = False
        # the replay holds the item itself for a lease, so no worker takes it meanwhile
        lease = now() + timedelta(seconds=hub.config.queue.lease_seconds)
        if f.source == "inbox":
            async with hub.store.begin() as conn:
                await conn.execute(
                    update(t.inbox)
                    .where(t.inbox.c.id == f.source_id)
                    .values(status="processing", attempts=0, lease_until=lease)
                )
                row = (await conn.execute(select(t.inbox).where(t.inbox.c.id == f.source_id))).one()
            ok = await inbox.process_item(hub, row)
        else:
            async with hub.store.begin() as conn:
                await conn.execute(
                    update(t.sync_jobs)
                    .where(t.sync_jobs.c.id == f.source_id)
                    .values(status="running", attempts=0, lease_until=lease, next_run_at=now())
                )
                row = (await conn.execute(select(t.sync_jobs).where(t.sync_jobs.c.id == f.source_id))).one()
            await jobs.run_job(hub, row)
            async with hub.store.connect() as conn:
                status = (
                    await conn.execute(select(t.sync_jobs.c.status).where(t.sync_jobs.c.id == f.source_id))
                ).scalar_one()
            ok = status == "done"
        async with hub.store.connect() as conn:
            latest = (await conn.execute(select(F.c.last_error).where(F.c.id == failure_id))).scalar_one()
        res = ReplayResult(failure_id, "resolved" if ok else "failed", None if ok else latest)
    await _audit(hub, failure_id, actor, dry_run, res.result, res.detail)
    return res


async def replay_matching(
    hub: Hub,
    flt: FailureFilter,
    *,
    actor: str,
    dry_run: bool = False,
    ids: list[str] | None = None,
    progress: Callable[[ReplayResult], None] | None = None,
    limit: int = 100_000,
) -> list[ReplayResult]:
    """Replay the given failures, or every failure matching ``flt``, oldest first."""
    if ids is None:
        async with hub.store.connect() as conn:
            q = select(F.c.id).order_by(F.c.id).limit(limit)
            w = flt.where()
            if w is not None:
                q = q.where(w)
            ids = [r.id for r in (await conn.execute(q)).all()]
    out = []
    for fid in ids:
        r = await replay_one(hub, fid, actor=actor, dry_run=dry_run)
        out.append(r)
        if progress:
            progress(r)
    return out
