"""Partner webhook endpoints and the delivery log: create, list, delete, rotate, replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import clock
from hub.errors import Conflict, InputError, NotFound
from hub.events._hub import HubLike
from hub.events._models import (
    ALL_EVENTS,
    Attempt,
    Delivery,
    DeliveryDetail,
    Endpoint,
    EndpointIn,
    EndpointWithSecret,
    ReplayResult,
)
from hub.events._ssrf import check_target
from hub.logging import get_logger
from hub.model import new_id
from hub.signing import new_secret
from hub.store import tables as t
from hub.store._upsert import insert_ignore

log = get_logger("hub.events")

#: How long the previous secret keeps signing after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
MAX_LIMIT = 500
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed")

E = t.webhook_endpoints
D = t.webhook_deliveries


def _endpoint(row: Row[Any]) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        events=list(row.events),
        connection=row.connection,
        description=row.description,
        status=row.status,
        failing_since=row.failing_since,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        object_id=row.object_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _audit(
    conn: AsyncConnection, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    await conn.execute(
        t.audit_log.insert().values(at=clock.now(), actor=actor, action=action, target=target, detail=detail)
    )


def matches(events: list[str], connection: str | None, event_type: str, event_connection: str | None) -> bool:
    """Whether an endpoint subscribed to ``events`` (and ``connection``, if set) receives this event."""
    if ALL_EVENTS not in events and event_type not in events:
        return False
    return connection is None or connection == event_connection


def check_limit(limit: int | None) -> int:
    """A page size between 1 and 500 (default 50)."""
    if limit is None:
        return 50
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
    return limit


async def create_endpoint(hub: HubLike, body: EndpointIn, *, actor: str = "-") -> EndpointWithSecret:
    """Register an endpoint after the SSRF check; the answer holds the new ``whsec_`` secret (shown once)."""
    await check_target(body.url, allow_private=hub.config.webhooks.allow_private_targets)
    if body.connection is not None and body.connection not in {c.id for c in hub.config.connections}:
        raise InputError(
            f"connection {body.connection!r} is not configured; use one of the [[connections]] ids of orderhub.toml",
            field="connection",
        )
    ts = clock.now()
    secret = new_secret()
    endpoint_id = new_id("whe")
    async with hub.store.begin() as conn:
        await conn.execute(
            E.insert().values(
                id=endpoint_id,
                url=body.url,
                events=body.events,
                connection=body.connection,
                secret=secret,
                status="active",
                description=body.description,
                created_at=ts,
                updated_at=ts,
            )
        )
        await _audit(conn, actor, "webhook_endpoint.create", endpoint_id, {"events": body.events})
        row = (await conn.execute(select(E).where(E.c.id == endpoint_id))).one()
    log.info("webhook endpoint created", extra={"fields": {"endpoint_id": endpoint_id, "events": body.events}})
    return EndpointWithSecret(**_endpoint(row).model_dump(), secret=secret)


async def _get_row(conn: AsyncConnection, endpoint_id: str, *, lock: bool = False) -> Row[Any]:
    q = select(E).where(E.c.id == endpoint_id, E.c.status != "deleted")
    if lock:
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    if row is None:
        raise NotFound(
            f"no webhook endpoint {endpoint_id!r}; list them with GET /api/v1/webhook-endpoints",
            endpoint_id=endpoint_id,
        )
    return row


async def get_endpoint(hub: HubLike, endpoint_id: str) -> Endpoint:
    """One endpoint (not deleted)."""
    async with hub.store.connect() as conn:
        return _endpoint(await _get_row(conn, endpoint_id))


async def list_endpoints(
    hub: HubLike, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Endpoint], str | None]:
    """Endpoints that are not deleted, oldest first; returns (page, next cursor)."""
    n = check_limit(limit)
    q = select(E).where(E.c.status != "deleted").order_by(E.c.id).limit(n + 1)
    if cursor:
        q = q.where(E.c.id > cursor)
    async with hub.store.connect() as conn:
        rows = (await conn.execute(q)).all()
    page = [_endpoint(r) for r in rows[:n]]
    return page, (page[-1].id if len(rows) > n else None)


async def delete_endpoint(hub: HubLike, endpoint_id: str, *, actor: str = "-") -> None:
    """Stop delivering to an endpoint; its delivery log is kept, its pending deliveries end as failed."""
    ts = clock.now()
    async with hub.store.begin() as conn:
        await _get_row(conn, endpoint_id, lock=True)
        await conn.execute(update(E).where(E.c.id == endpoint_id).values(status="deleted", updated_at=ts))
        await conn.execute(
            update(D)
            .where(D.c.endpoint_id == endpoint_id, D.c.status == "pending")
            .values(status="failed", next_attempt_at=None, updated_at=ts)
        )
        await _audit(conn, actor, "webhook_endpoint.delete", endpoint_id)
    log.info("webhook endpoint deleted", extra={"fields": {"endpoint_id": endpoint_id}})


async def rotate_secret(hub: HubLike, endpoint_id: str, *, actor: str = "-") -> EndpointWithSecret:
    """A new secret; the old one keeps signing too (both in ``webhook-signature``) for 24 hours."""
    ts = clock.now()
    secret = new_secret()
    async with hub.store.begin() as conn:
        row = await _get_row(conn, endpoint_id, lock=True)
        await conn.execute(
            update(E)
            .where(E.c.id == endpoint_id)
            .values(
                secret=secret,
                previous_secret=row.secret,
                previous_secret_expires_at=ts + ROTATION_OVERLAP,
                updated_at=ts,
            )
        )
        await _audit(conn, actor, "webhook_endpoint.rotate_secret", endpoint_id)
        row = await _get_row(conn, endpoint_id)
    log.info("webhook endpoint secret rotated", extra={"fields": {"endpoint_id": endpoint_id}})
    return EndpointWithSecret(**_endpoint(row).model_dump(), secret=secret)


async def list_deliveries(
    hub: HubLike,
    *,
    endpoint_id: str | None = None,
    status: str | None = None,
    event_type: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[list[Delivery], str | None]:
    """The delivery log, newest first, filtered by endpoint, status and event type."""
    n = check_limit(limit)
    if status is not None and status not in DELIVERY_STATUSES:
        raise InputError(f"status must be one of {list(DELIVERY_STATUSES)}, got {status!r}", field="status")
    q = select(D).order_by(D.c.id.desc()).limit(n + 1)
    if endpoint_id:
        q = q.where(D.c.endpoint_id == endpoint_id)
    if status:
        q = q.where(D.c.status == status)
    if event_type:
        q = q.where(D.c.event_type == event_type)
    if cursor:
        q = q.where(D.c.id < cursor)
    async with hub.store.connect() as conn:
        rows = (await conn.execute(q)).all()
    page = [_delivery(r) for r in rows[:n]]
    return page, (page[-1].id if len(rows) > n else None)


async def get_delivery(hub: HubLike, delivery_id: str) -> DeliveryDetail:
    """One delivery with every attempt (status, latency, response snippet, error)."""
    a = t.delivery_attempts
    async with hub.store.connect() as conn:
        row = (await conn.execute(select(D).where(D.c.id == delivery_id))).first()
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id!r}", delivery_id=delivery_id)
        attempts = (await conn.execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id))).all()
    return DeliveryDetail(
        **_delivery(row).model_dump(),
        log=[
            Attempt(
                at=x.at,
                status_code=x.status_code,
                latency_ms=x.latency_ms,
                response_snippet=x.response_snippet,
                error=x.error,
            )
            for x in attempts
        ],
    )


async def replay_delivery(hub: HubLike, delivery_id: str, *, actor: str = "-") -> Delivery:
    """Send a delivery again (failed or delivered) with a fresh retry schedule and the same webhook-id."""
    ts = clock.now()
    async with hub.store.begin() as conn:
        row = (await conn.execute(select(D).where(D.c.id == delivery_id).with_for_update())).first()
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id!r}", delivery_id=delivery_id)
        ep = (await conn.execute(select(E.c.status).where(E.c.id == row.endpoint_id))).one()
        if ep.status == "deleted":
            raise Conflict(
                f"delivery {delivery_id} belongs to deleted endpoint {row.endpoint_id}; nothing to replay to"
            )
        if ep.status == "disabled":
            raise Conflict(
                f"endpoint {row.endpoint_id} is disabled; replay it with POST /api/v1/webhook-endpoints/"
                f"{row.endpoint_id}/replay, which re-enables it and resends its failed deliveries"
            )
        if row.status in ("pending", "delivering"):
            raise Conflict(f"delivery {delivery_id} is already {row.status}; it will be sent without a replay")
        await conn.execute(
            update(D)
            .where(D.c.id == delivery_id)
            .values(status="pending", attempts=0, next_attempt_at=ts, lease_until=None, updated_at=ts)
        )
        await _audit(conn, actor, "webhook_delivery.replay", delivery_id)
        row = (await conn.execute(select(D).where(D.c.id == delivery_id))).one()
    log.info("webhook delivery replayed", extra={"fields": {"delivery_id": delivery_id}})
    return _delivery(row)


async def replay_endpoint(hub: HubLike, endpoint_id: str, since: datetime, *, actor: str = "-") -> ReplayResult:
    """Re-enable a disabled endpoint, queue its failed deliveries since ``since`` again, and queue the
    events it never received since then (while it was disabled), from the outbox."""
    ts = clock.now()
    o = t.outbox
    async with hub.store.begin() as conn:
        ep = await _get_row(conn, endpoint_id, lock=True)
        reenabled = ep.status == "disabled"
        if reenabled:
            await conn.execute(
                update(E).where(E.c.id == endpoint_id).values(status="active", failing_since=None, updated_at=ts)
            )
        res = await conn.execute(
            update(D)
            .where(D.c.endpoint_id == endpoint_id, D.c.status == "failed", D.c.created_at >= since)
            .values(status="pending", attempts=0, next_attempt_at=ts, lease_until=None, updated_at=ts)
        )
        replayed = res.rowcount or 0
        start = max(since, ep.created_at)
        q = select(o.c.seq, o.c.id, o.c.type, o.c.object_id, o.c.connection).where(
            # fanned out already (an event still listed to fan out reaches the endpoint that way)
            and_(o.c.created_at >= start, ~exists().where(t.outbox_pending.c.seq == o.c.seq))
        )
        if ALL_EVENTS not in ep.events:
            q = q.where(o.c.type.in_(list(ep.events)))
        if ep.connection is not None:
            q = q.where(o.c.connection == ep.connection)
        existing = select(D.c.event_id).where(D.c.endpoint_id == endpoint_id)
        missed = (await conn.execute(q.where(o.c.id.not_in(existing)).order_by(o.c.seq))).all()
        if missed:
            await conn.execute(
                insert_ignore(conn, D, ["endpoint_id", "event_id"]),
                [_new_delivery(endpoint_id, r, ts) for r in missed],
            )
        await _audit(
            conn,
            actor,
            "webhook_endpoint.replay",
            endpoint_id,
            {"since": since.isoformat(), "replayed": replayed, "backfilled": len(missed), "reenabled": reenabled},
        )
    log.info(
        "webhook endpoint replayed",
        extra={
            "fields": {
                "endpoint_id": endpoint_id,
                "replayed": replayed,
                "backfilled": len(missed),
                "reenabled": reenabled,
            }
        },
    )
    return ReplayResult(endpoint_id=endpoint_id, replayed=replayed, backfilled=len(missed), reenabled=reenabled)


def _new_delivery(endpoint_id: str, event: Any, ts: datetime) -> dict[str, Any]:
    return {
        "id": new_id("dlv"),
        "endpoint_id": endpoint_id,
        "event_id": event.id,
        "event_type": event.type,
        "object_id": event.object_id,
        "event_seq": event.seq,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": ts,
        "created_at": ts,
        "updated_at": ts,
    }
