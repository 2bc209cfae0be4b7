"""The delivery engine: outbox -> webhook_deliveries -> signed HTTP POSTs to partners.

``fan_out`` turns outbox events into one delivery per matching endpoint; ``deliver_due``
claims due deliveries with a lease and sends them; ``run_once`` does both. Any number of
workers may run them concurrently: claims are leased (a crashed worker's claims are taken
again when the lease expires), per-object order and per-endpoint concurrency are decided
inside the claim transaction (serialised by an advisory lock on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.resolver import ThreadedResolver
from sqlalchemy import and_, delete, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import clock, metrics, signing
from hub.events._endpoints import _new_delivery, matches
from hub.events._hub import HubLike
from hub.events._ssrf import BlockedTarget, PublicOnlyResolver, blocked_literal
from hub.logging import get_logger
from hub.model import Event, SyncFailed
from hub.store import outbox as outbox_store
from hub.store import tables as t
from hub.store._any import one_of
from hub.store._upsert import insert_ignore

log = get_logger("hub.events")

#: Bytes of a partner's response body that are read (and kept as the attempt's snippet).
RESPONSE_LIMIT = 4096
#: Longest Retry-After honoured, in seconds.
MAX_RETRY_AFTER = 24 * 3600
#: Extra lease time on top of the request timeout.
LEASE_MARGIN = 60.0
_SESSION = "hub.events.session"
_RECORD_SLOTS = "hub.events.record_slots"
#: Outcome-recording transactions at a time (per process).
RECORD_CONCURRENCY = 8
#: Pause after a delivery finishes before claiming again, so one claim fills several freed slots.
CLAIM_BATCH_WINDOW = 0.02
_LOCK_KEY = 0x0F_0B_E7_1A  # pg_advisory_xact_lock key of the claim step
USER_AGENT = "Orderhub-Webhooks/1"
#: Open connections of the shared delivery session, over all endpoints.
CONNECTION_LIMIT = 100

E = t.webhook_endpoints
D = t.webhook_deliveries
O = t.outbox  # noqa: E741
P = t.outbox_pending


# --------------------------------------------------------------------------- fan-out


async def fan_out(hub: HubLike, *, batch: int = 500, max_batches: int = 20) -> int:
    """Turn the events listed in ``outbox_pending`` (in ``seq`` order) into deliveries for every active
    endpoint that subscribes to them, and take them off the list; one transaction per batch, idempotent.
    Returns the number of deliveries scheduled."""
    total = 0
    for _ in range(max_batches):
        events, scheduled = await _fan_out_batch(hub, batch)
        total += scheduled
        if events < batch:
            break
    return total


async def _fan_out_batch(hub: HubLike, batch: int) -> tuple[int, int]:
    ts = clock.now()
    async with hub.store.begin() as conn:
        # the listed events in seq order, their rows in the same read (only the list is locked)
        rows = (
            await conn.execute(
                select(O.c.seq, O.c.id, O.c.type, O.c.object_id, O.c.connection)
                .join(P, P.c.seq == O.c.seq)
                .order_by(P.c.seq)
                .limit(batch)
                .with_for_update(skip_locked=True, of=P)
            )
        ).all()
        if not rows:
            return 0, 0
        endpoints = (await conn.execute(select(E.c.id, E.c.events, E.c.connection).where(E.c.status == "active"))).all()
        values = [
            _new_delivery(ep.id, ev, ts)
            for ev in rows
            for ep in endpoints
            if matches(list(ep.events), ep.connection, ev.type, ev.connection)
        ]
        if values:
            await conn.execute(insert_ignore(conn, D, ["endpoint_id", "event_id"]), values)
        await conn.execute(delete(P).where(one_of(conn, P.c.seq, [r.seq for r in rows])))
    return len(rows), len(values)


# --------------------------------------------------------------------------- claim


@dataclass
class _Claim:
    delivery_id: str
    endpoint_id: str
    event: Event
    attempts: int
    url: str
    secrets: list[str]
    lease_until: datetime


def _due(ts: datetime) -> Any:
    return or_(
        and_(D.c.status == "pending", D.c.next_attempt_at <= ts),
        and_(D.c.status == "delivering", D.c.lease_until < ts),
    )


async def _claim(hub: HubLike, limit: int, lease_seconds: float) -> list[_Claim]:
    cfg = hub.config.webhooks
    ts = clock.now()
    lease_until = ts + timedelta(seconds=lease_seconds)
    earlier = D.alias("earlier")
    blocked_by_earlier = exists().where(
        earlier.c.endpoint_id == D.c.endpoint_id,
        earlier.c.object_id == D.c.object_id,
        earlier.c.event_seq < D.c.event_seq,
        earlier.c.status.in_(("pending", "delivering")),
    )
    async with hub.store.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        inflight: dict[str, int] = dict(
            (
                await conn.execute(
                    select(D.c.endpoint_id, func.count())
                    .where(D.c.status == "delivering", D.c.lease_until >= ts)
                    .group_by(D.c.endpoint_id)
                )
            ).all()
        )
        active = (await conn.execute(select(E.c.id).where(E.c.status == "active"))).scalars().all()
        free = {e: cfg.max_concurrency_per_endpoint - inflight.get(e, 0) for e in active}
        open_endpoints = [e for e, n in free.items() if n > 0]
        if not open_endpoints:
            return []
        # a few candidates per free slot (some are skipped below when their endpoint fills up)
        want = min(limit, sum(free[e] for e in open_endpoints))
        candidates = (
            await conn.execute(
                select(D.c.id, D.c.endpoint_id)
                .where(one_of(conn, D.c.endpoint_id, open_endpoints), _due(ts), ~blocked_by_earlier)
                .order_by(D.c.event_seq)
                .limit(want * 4)
            )
        ).all()
        picked: list[str] = []
        for c in candidates:
            if len(picked) >= limit:
                break
            if inflight.get(c.endpoint_id, 0) >= cfg.max_concurrency_per_endpoint:
                continue
            inflight[c.endpoint_id] = inflight.get(c.endpoint_id, 0) + 1
            picked.append(c.id)
        if not picked:
            return []
        await conn.execute(
            update(D)
            .where(one_of(conn, D.c.id, picked))
            .values(status="delivering", lease_until=lease_until, updated_at=ts)
        )
        rows = (
            await conn.execute(
                select(
                    D.c.id,
                    D.c.endpoint_id,
                    D.c.attempts,
                    D.c.event_seq,
                    O.c.id.label("event_id"),
                    O.c.type,
                    O.c.object_id,
                    O.c.connection,
                    O.c.data,
                    O.c.created_at,
                    E.c.url,
                    E.c.secret,
                    E.c.previous_secret,
                    E.c.previous_secret_expires_at,
                )
                .join(O, O.c.id == D.c.event_id)
                .join(E, E.c.id == D.c.endpoint_id)
                .where(one_of(conn, D.c.id, picked))
                .order_by(D.c.event_seq)
            )
        ).all()
    claims = []
    for r in rows:
        secrets = [r.secret]
        if r.previous_secret and r.previous_secret_expires_at and r.previous_secret_expires_at > ts:
            secrets.append(r.previous_secret)
        event = Event(
            id=r.event_id,
            type=r.type,
            timestamp=r.created_at,
            object_id=r.object_id,
            connection=r.connection,
            data=r.data,
        )
        claims.append(_Claim(r.id, r.endpoint_id, event, r.attempts, r.url, secrets, lease_until))
    return claims


# --------------------------------------------------------------------------- send


@dataclass
class _Result:
    status_code: int | None = None
    latency_ms: int = 0
    snippet: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def session(hub: HubLike) -> aiohttp.ClientSession:
    """The hub's shared delivery session (bounded connector; public-only resolver unless private targets are allowed)."""
    s: aiohttp.ClientSession | None = hub.state.get(_SESSION)
    loop = asyncio.get_running_loop()
    if s is not None and not s.closed and s._loop is loop:
        return s
    cfg = hub.config.webhooks
    resolver = ThreadedResolver() if cfg.allow_private_targets else PublicOnlyResolver()
    # per-endpoint concurrency is bounded by the claim step; no per-host limit, so partners sharing a host
    # (a SaaS receiver) do not queue behind each other
    connector = aiohttp.TCPConnector(limit=CONNECTION_LIMIT, resolver=resolver)
    s = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=cfg.timeout_seconds),
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )
    hub.state[_SESSION] = s
    return s


async def close(hub: HubLike) -> None:
    """Close the shared delivery session (call at worker shutdown)."""
    s: aiohttp.ClientSession | None = hub.state.pop(_SESSION, None)
    if s is not None and not s.closed:
        await s.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - clock.now()).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the body; True when the whole body was read."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = await resp.content.read(limit - len(buf))
        if not chunk:
            return bytes(buf), True
        buf.extend(chunk)
    return bytes(buf), resp.content.at_eof()


async def _send(hub: HubLike, claim: _Claim) -> _Result:
    cfg = hub.config.webhooks
    body = orjson.dumps(claim.event.wire())
    hdrs = signing.headers(claim.secrets, claim.event.id, body)
    hdrs["Content-Type"] = "application/json"
    start = time.monotonic()
    res = _Result()
    host = urlsplit(claim.url).hostname or ""
    refused = None if cfg.allow_private_targets else blocked_literal(host)
    if refused:
        res.error = refused
        return res
    try:
        async with session(hub).post(claim.url, data=body, headers=hdrs, allow_redirects=False) as resp:
            res.status_code = resp.status
            res.retry_after = _retry_after(resp.headers.get("Retry-After"))
            raw, complete = await _read_limited(resp, RESPONSE_LIMIT)
            res.snippet = raw.decode("utf-8", "replace") or None
            if not complete:
                resp.close()  # do not read (or reuse a connection with) the rest of a large body
    except aiohttp.ClientConnectorError as exc:
        os_error = exc.os_error
        res.error = str(os_error) if isinstance(os_error, BlockedTarget) else f"cannot connect to {host}: {os_error}"
    except TimeoutError:
        res.error = f"no answer within {cfg.timeout_seconds:g} s"
    except aiohttp.ClientError as exc:
        res.error = f"{type(exc).__name__}: {exc}"[:500]
    res.latency_ms = int((time.monotonic() - start) * 1000)
    return res


# --------------------------------------------------------------------------- record


async def _record(hub: HubLike, claim: _Claim, res: _Result) -> str:
    """Store the attempt and decide what happens next; returns the delivery's new status."""
    cfg = hub.config.webhooks
    ts = clock.now()
    attempts = claim.attempts + 1
    async with hub.store.begin() as conn:
        await conn.execute(
            t.delivery_attempts.insert().values(
                delivery_id=claim.delivery_id,
                at=ts,
                status_code=res.status_code,
                latency_ms=res.latency_ms,
                response_snippet=res.snippet,
                error=res.error,
            )
        )
        if res.ok:
            status, next_at = "delivered", None
            await conn.execute(
                update(E)
                .where(E.c.id == claim.endpoint_id, E.c.failing_since.is_not(None))
                .values(failing_since=None, updated_at=ts)
            )
        else:
            ep = (await conn.execute(select(E).where(E.c.id == claim.endpoint_id).with_for_update())).one()
            status, next_at = "pending", None
            if attempts <= len(cfg.retry_schedule):
                delay = float(cfg.retry_schedule[attempts - 1])
                if res.status_code == 429 and res.retry_after is not None:
                    delay = res.retry_after
                next_at = ts + timedelta(seconds=delay)
            else:
                status = "failed"
            if ep.status == "active":
                reason = _disable_reason(ep, res, ts, cfg.disable_after_days)
                if reason:
                    await _disable(conn, ep.id, ep.url, reason, ts)
                elif ep.failing_since is None:
                    await conn.execute(update(E).where(E.c.id == ep.id).values(failing_since=ts, updated_at=ts))
            refreshed = (await conn.execute(select(E.c.status).where(E.c.id == claim.endpoint_id))).scalar_one()
            if refreshed != "active":
                status, next_at = "failed", None
        done = await conn.execute(
            update(D)
            .where(D.c.id == claim.delivery_id, D.c.status == "delivering", D.c.lease_until == claim.lease_until)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_at,
                lease_until=None,
                last_status_code=res.status_code,
                updated_at=ts,
            )
        )
        if not done.rowcount:
            # the lease expired and another worker took the delivery over: it owns the outcome
            status = "superseded"
    metrics.webhook_deliveries.labels(outcome=status).inc()
    log.info(
        "webhook delivery attempt",
        extra={
            "fields": {
                "delivery_id": claim.delivery_id,
                "endpoint_id": claim.endpoint_id,
                "event_id": claim.event.id,
                "event_type": claim.event.type,
                "http_status": res.status_code,
                "latency_ms": res.latency_ms,
                "error": res.error,
                "outcome": status,
                "attempt": attempts,
            }
        },
    )
    return status


def _disable_reason(ep: Any, res: _Result, ts: datetime, days: int) -> str | None:
    host = urlsplit(ep.url).hostname
    if res.status_code == 410:
        return f"partner webhook endpoint {ep.id} ({host}) answered 410 Gone and was disabled"
    if ep.failing_since is not None and ts - ep.failing_since >= timedelta(days=days):
        last = f"HTTP {res.status_code}" if res.status_code is not None else (res.error or "no answer")
        return (
            f"partner webhook endpoint {ep.id} ({host}) has failed every delivery since "
            f"{ep.failing_since.isoformat()} (more than {days} days; last: {last}) and was disabled; "
            f"fix the receiver, then POST /api/v1/webhook-endpoints/{ep.id}/replay to re-enable it"
        )
    return None


async def _disable(conn: AsyncConnection, endpoint_id: str, url: str, reason: str, ts: datetime) -> None:
    await conn.execute(update(E).where(E.c.id == endpoint_id).values(status="disabled", updated_at=ts))
    await conn.execute(
        update(D)
        .where(D.c.endpoint_id == endpoint_id, D.c.status == "pending")
        .values(status="failed", next_attempt_at=None, updated_at=ts)
    )
    await outbox_store.emit(
        conn,
        "sync.failed",
        SyncFailed(operation="partner_webhook.deliver", error=reason, endpoint_id=endpoint_id),
        object_id=endpoint_id,
    )
    log.warning("webhook endpoint disabled", extra={"fields": {"endpoint_id": endpoint_id, "reason": reason}})


def _record_slots(hub: HubLike) -> asyncio.Semaphore:
    """Bounds the transactions recording outcomes, so many deliveries finishing together queue here
    instead of overflowing the database pool."""
    sem: asyncio.Semaphore | None = hub.state.get(_RECORD_SLOTS)
    if sem is None:
        sem = hub.state[_RECORD_SLOTS] = asyncio.Semaphore(RECORD_CONCURRENCY)
    return sem


async def _deliver(hub: HubLike, claim: _Claim) -> str:
    try:
        res = await _send(hub, claim)
        async with _record_slots(hub):
            return await _record(hub, claim, res)
    except Exception:
        # e.g. the database went away: the lease expires and another run takes the delivery again
        log.exception("webhook delivery could not be recorded", extra={"fields": {"delivery_id": claim.delivery_id}})
        return "error"


async def deliver_due(hub: HubLike, *, limit: int = 100, lease_seconds: float | None = None) -> int:
    """Claim up to ``limit`` due deliveries (per-object order, per-endpoint concurrency), send them
    concurrently, record every attempt and schedule retries. Returns the number of attempts made."""
    lease = lease_seconds if lease_seconds is not None else hub.config.webhooks.timeout_seconds + LEASE_MARGIN
    claims = await _claim(hub, limit, lease)
    if claims:
        await asyncio.gather(*(_deliver(hub, c) for c in claims))
    return len(claims)


async def run_once(hub: HubLike, *, limit: int = 100) -> int:
    """``fan_out`` then ``deliver_due``; returns the number of delivery attempts made."""
    await fan_out(hub)
    return await deliver_due(hub, limit=limit)


async def serve(hub: HubLike, stop: asyncio.Event, *, limit: int = 100, poll_interval: float = 1.0) -> None:
    """Deliver continuously until ``stop`` is set: fan out, claim as many deliveries as there are free
    slots (at most ``limit`` in flight) and send them as tasks, so a slow partner only ever occupies its
    own ``max_concurrency_per_endpoint`` slots while the others keep flowing. Waits for the deliveries
    in flight before returning; closes nothing (call :func:`close` at shutdown)."""
    lease = hub.config.webhooks.timeout_seconds + LEASE_MARGIN
    inflight: set[asyncio.Task[str]] = set()
    stopping = asyncio.ensure_future(stop.wait())
    loop = asyncio.get_running_loop()
    last_fan_out = -poll_interval
    try:
        while not stop.is_set():
            claims: list[_Claim] = []
            try:
                if loop.time() - last_fan_out >= poll_interval:
                    await fan_out(hub)
                    last_fan_out = loop.time()
                if len(inflight) < limit:
                    claims = await _claim(hub, limit - len(inflight), lease)
            except Exception:
                log.exception("webhook delivery loop failed; retrying")
            for c in claims:
                task = asyncio.create_task(_deliver(hub, c))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if not claims:
                # nothing to claim: wait for a delivery to finish (it may unblock the next event of its
                # object), for stop, or for the poll interval
                done, _ = await asyncio.wait(
                    [stopping, *inflight], timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                if done and not stop.is_set():
                    await asyncio.sleep(CLAIM_BATCH_WINDOW)  # let a few more finish: one claim for several slots
    finally:
        stopping.cancel()
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
