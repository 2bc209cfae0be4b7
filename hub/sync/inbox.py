"""Inbound deliveries: verified, persisted before the reply, processed by the worker.

``accept`` is what ``POST /webhooks/{connection_id}`` calls. ``process_batch`` is what the
worker runs: it claims pending items with a lease (a killed worker's items are taken
again when the lease expires), applies each in its own transaction, and turns an item
that keeps failing into a visible, replayable sync failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub import metrics
from hub.clock import now
from hub.errors import InputError, OrderhubError, RetriableError
from hub.logging import bind, get_logger, unbind
from hub.model import new_id
from hub.plugins import InboundEvent
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import tables as t
from hub.store._any import DIALECTS, constant, one_of_param
from hub.store._claim import Claim
from hub.sync import jobs
from hub.sync._intake import Batcher, Delivery
from hub.sync.stats import open_rows

if TYPE_CHECKING:
    from hub.runtime import Hub

log = get_logger("hub.sync.inbox")
I = t.inbox  # noqa: E741
SAFE_HEADERS = ("content-type", "user-agent")
MAX_ATTEMPTS = 5
CHUNK = 50  # order items applied per transaction
_PARSE_TURN = 8  # items parsed between two turns of the event loop (about 3 ms of CPU)
CHUNK_TRIES = 3  # plans of a chunk whose stock was taken meanwhile, before its items go one by one


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool


def _keep_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers worth keeping for replay: everything but credentials (signatures are kept: they are not secrets)."""
    drop = ("authorization", "cookie", "x-shopify-access-token")
    return {k.lower(): v for k, v in headers.items() if k.lower() not in drop}


async def accept(hub: Hub, connection_id: str, headers: Mapping[str, str], body: bytes) -> Accepted:
    """Verify (AuthError when it fails: nothing stored), persist, nudge the worker.

    The delivery is stored with the others arriving at the same time, in one transaction
    (``hub.sync._intake``: group commit); this returns after that commit.
    :class:`~hub.sync._intake.IntakeUnavailable` (503) when the transaction fails: nothing stored.
    Duplicates are recognised by the unique (connection, event_id) in the database.
    """
    connector = hub.connector(connection_id)
    connector.verify_webhook(headers, body)
    try:
        ev = connector.webhook_event(headers, body)
    except (InputError, ValueError, KeyError, TypeError) as exc:
        # authentic but unreadable: keep it under a content hash; processing will record the failure
        ev = InboundEvent(event_id="sha256:" + hashlib.sha256(body).hexdigest(), topic=headers.get("x-shopify-topic"))
        log.warning("unreadable webhook kept", extra={"fields": {"connection": connection_id, "error": str(exc)[:200]}})
    delivery = Delivery(
        id=new_id("inb"),
        connection=connection_id,
        event_id=ev.event_id,
        topic=ev.topic,
        object_key=ev.object_key,
        source_ts=ev.source_ts,
        headers=_keep_headers(headers),
        body=body,
        received_at=now(),
    )
    stored = await _batcher(hub).submit(delivery)
    accepted = Accepted(stored.id, stored.duplicate)
    metrics.webhooks_received.labels(connection_id, "duplicate" if accepted.duplicate else "accepted").inc()
    if not accepted.duplicate:
        await nudge(hub)
    return accepted


def _batcher(hub: Hub) -> Batcher:
    """This process's intake batcher for ``hub`` (one per event loop)."""
    b: Batcher | None = hub.state.get("intake")
    if b is None or b.loop is not asyncio.get_running_loop():
        b = hub.state["intake"] = Batcher(hub.store)
    return b


async def nudge(hub: Hub) -> None:
    """Tell the workers there is inbox work: one ``drain`` job per ``[queue] inbox_gather_ms`` window.

    The job is deferred to the window's end, so that it finds the window's items together: at a
    steady few hundred orders a second, one claim and one transaction for each window's orders
    instead of many of one or two (each round's claim, locks, flush and commit cost about as much
    as several orders). The enqueue runs in the background, so a webhook's answer never waits for
    Redis; a nudge that fails is logged and costs nothing but latency (each worker's tick drains the
    inbox every second).
    """
    queue = hub.state.get("queue")
    if queue is not None:
        job_id, defer = gather_window(hub)
        if hub.state.get("last_nudge") == job_id:
            return  # this window's drain is already queued: it serves every webhook of the window
        hub.state["last_nudge"] = job_id
        task = asyncio.create_task(_enqueue_drain(queue, job_id, defer))
        running: set[asyncio.Task[None]] = hub.state.setdefault("nudges", set())
        running.add(task)  # a reference until it ends (the loop keeps only weak ones)
        task.add_done_callback(running.discard)


def gather_window(hub: Hub) -> tuple[str, float | None]:
    """The ``drain`` job id of the current gather window and how long to defer it (to the window's
    end; None when ``inbox_gather_ms`` is 0: at once, one job per 50 ms)."""
    gather = hub.config.queue.inbox_gather_ms / 1000
    period = gather or 0.05
    t = time.time()
    window = int(t / period)
    job_id = f"{hub.key('drain')}:{window}"
    return job_id, ((window + 1) * period - t if gather else None)


async def _enqueue_drain(queue: Any, job_id: str, defer: float | None) -> None:
    try:
        await queue.enqueue("drain_window" if defer is not None else "drain", job_id=job_id, defer_by=defer)
    except Exception as exc:
        log.warning(
            "worker nudge failed; the inbox is drained at the workers' next tick",
            extra={"fields": {"job_id": job_id, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}},
        )


# two index-ordered scans (partial indexes on pending items and on leased ones), not one OR: a plain
# index scan skips the dead entries a busy queue leaves behind (and marks them so), where a bitmap scan
# over the OR visited tens of thousands of them per claim; the statuses in the SQL text
# (hub.store._any.constant), so that a generic plan uses those indexes
_SCANS = [
    select(I.c.id).where(I.c.status == constant("pending")).order_by(I.c.received_at),
    select(I.c.id)
    .where(and_(I.c.status == constant("processing"), I.c.lease_until < bindparam("b_now")))
    .order_by(I.c.lease_until),
]
_TAKE = {"status": "processing", "lease_until": bindparam("b_lease"), "attempts": I.c.attempts + 1}
_CLAIM = Claim(I, _SCANS, _TAKE, order=I.c.received_at)
# the items of a chunk applied, if this worker still holds their lease (built once per dialect)
_DONE = {
    d: update(I)
    .where(and_(one_of_param(I.c.id, "b_ids", d), I.c.status == "processing", I.c.lease_until == bindparam("b_lease")))
    .values(status="done", processed_at=bindparam("b_at"), lease_until=None, error=None)
    for d in DIALECTS
}


async def claim(hub: Hub, limit: int = 100) -> list[Any]:
    """Take up to ``limit`` pending items (or items whose lease expired) for this worker."""
    ts = now()
    return await _CLAIM.run(
        hub.store, {"b_now": ts, "b_lease": ts + timedelta(seconds=hub.config.queue.lease_seconds)}, limit
    )


async def process_batch(hub: Hub, limit: int = 100, concurrency: int = 16, chunk: int = CHUNK) -> int:
    """Claim and process one batch; items about the same entity run in order, others in parallel.

    Orders (items that only create or update orders, the bulk of the traffic) are applied
    ``chunk`` at a time, each chunk in one transaction (:func:`_apply_chunk`); everything else,
    and every item of a chunk that fails, is applied alone by :func:`process_item`.
    """
    return (await process_batch_waited(hub, limit, concurrency, chunk))[0]


async def process_batch_waited(
    hub: Hub, limit: int = 100, concurrency: int = 16, chunk: int = CHUNK
) -> tuple[int, float]:
    """:func:`process_batch`, and how long the oldest item of the batch had waited when it was
    claimed, in seconds (0.0 for an empty batch): how far behind the inbox is."""
    rows = await claim(hub, limit)
    if not rows:
        return 0, 0.0
    ts = now()
    # first attempts only: a retry's age says nothing about how far behind the inbox is
    waited = max(((ts - r.received_at).total_seconds() for r in rows if r.attempts == 1), default=0.0)
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r.object_key or r.id].append(r)
    sem = asyncio.Semaphore(concurrency)
    ordered = [sorted(g, key=lambda r: (r.source_ts or r.received_at, r.received_at)) for g in groups.values()]
    batched: list[list[_Parsed]] = []
    single: list[list[Any]] = []
    done_parsing = 0
    for items in ordered:
        parsed = [_parse_for_chunk(hub, item) for item in items] if chunk > 1 else [None]
        if all(p is not None for p in parsed):
            batched.append([p for p in parsed if p is not None])
        else:
            single.append(items)
        done_parsing += len(items)
        if done_parsing >= _PARSE_TURN:  # a turn of the event loop for this process's other chunks (see below)
            done_parsing = 0
            await asyncio.sleep(0)

    async def run_group(items: list[Any]) -> None:
        async with sem:
            for item in items:
                await process_item(hub, item)

    # while the inbox is not behind, the fulfilment requests of the orders allocated here go to the
    # 3PL straight after their commit (below), not through a claim in the worker's next round
    inline: list[jobs.Inline] | None = [] if hub.config.queue.submit_inline and keeping_up(hub, waited) else None

    async def run_chunk(groups_: list[list[_Parsed]]) -> None:
        async with sem:
            parts = [p for g in groups_ for p in g]
            if not await _apply_chunk(hub, parts, inline):
                for g in groups_:  # one bad item must not hold the others: apply each alone
                    for p in g:
                        await process_item(hub, p.item)

    chunks: list[list[list[_Parsed]]] = [[]]
    for g in batched:
        if chunks[-1] and sum(len(x) for x in chunks[-1]) + len(g) > chunk:
            chunks.append([])
        chunks[-1].append(g)
    await asyncio.gather(*(run_chunk(c) for c in chunks if c), *(run_group(g) for g in single))
    if inline:
        await jobs.run_inline(hub, inline)
    return len(rows), waited


def keeping_up(hub: Hub, waited: float) -> bool:
    """Whether outbound work may run beside the inbox: the oldest item of a batch waited no longer
    than ``[queue] intake_lag_target_ms`` (``waited``, seconds, from :func:`process_batch_waited`), or
    the intake priority is off (``outbound_max_lag_seconds = 0``)."""
    q = hub.config.queue
    return bool(q.outbound_max_lag_seconds <= 0 or waited * 1000 <= q.intake_lag_target_ms + q.inbox_gather_ms)


@dataclass
class _Parsed:
    item: Any
    messages: list[Any]


def _parse_for_chunk(hub: Hub, item: Any) -> _Parsed | None:
    """The item's messages when it may join a chunk (it parses and only upserts orders), else None."""
    from hub.plugins import OrderUpserted

    if item.attempts != 1:
        return None  # a retry or a replay goes alone: its failure record must be kept up to date
    try:
        connector = hub.connector(item.connection)
        ev = InboundEvent(
            event_id=item.event_id, topic=item.topic, object_key=item.object_key, source_ts=item.source_ts
        )
        messages = connector.parse_webhook(ev, dict(item.headers or {}), bytes(item.body))
    except Exception:
        return None  # process_item parses it again and records why it fails
    if not messages or not all(isinstance(m, OrderUpserted) for m in messages):
        return None
    return _Parsed(item, list(messages))


async def _lock_chunk(conn: AsyncConnection, parts: list[_Parsed]) -> None:
    """The chunk's entity locks, taken up front in one global order (by hash), and the stock levels
    of its SKUs read once: reservations are planned on them in memory and written at the flush by
    one conditional UPDATE that locks the rows in (sku, location) order only from the flush to the
    commit, so chunks with SKUs in common run side by side (``inventory.know_levels``)."""
    skus = {ln.sku for p in parts for m in p.messages for ln in m.order.lines}
    if conn.dialect.name != "postgresql":
        await inv.know_levels(conn, skus)  # SQLite: BEGIN IMMEDIATE already holds the only write lock
        return
    keys = sorted({p.item.object_key for p in parts if p.item.object_key})
    if keys:
        await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(h) FROM "
                "(SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS s"
            ),
            {"keys": keys},
        )
    await inv.know_levels(conn, skus)


async def _apply_chunk(hub: Hub, parts: list[_Parsed], inline: list[jobs.Inline] | None = None) -> bool:
    """Apply several order items in one transaction; False (and nothing applied) when any fails.
    A chunk whose reservations lost a race for stock (:class:`~hub.store.inventory.StockMoved`) is
    planned again on fresh levels, up to ``CHUNK_TRIES`` times. With ``inline``, the jobs that
    ``jobs.collect_inline`` collected in the committed transaction are appended to it."""
    for attempt in range(1, CHUNK_TRIES + 1):
        try:
            return await _apply_chunk_once(hub, parts, inline)
        except inv.StockMoved:
            log.info("chunk lost a race for stock; planned again", extra={"fields": {"attempt": attempt}})
    return False


async def _apply_chunk_once(hub: Hub, parts: list[_Parsed], inline: list[jobs.Inline] | None = None) -> bool:
    from hub.orders.service import apply_messages
    from hub.sync.operations import preload

    if not parts:
        return True
    started = asyncio.get_running_loop().time()
    collected: jobs.Inline | None = None
    try:
        async with hub.store.begin() as conn:
            if inline is not None:
                collected = jobs.collect_inline(conn, hub.config.queue.lease_seconds)
            await _lock_chunk(conn, parts)
            await repo.prefetch(conn, [m.order for p in parts for m in p.messages])
            for p in parts:
                token = bind(inbox_id=p.item.id, connection=p.item.connection, correlation_id=p.item.event_id)
                try:
                    await apply_messages(hub, conn, p.item.connection, p.messages, source=f"inbox:{p.item.id}")
                finally:
                    unbind(token)
                # an order's writes are buffered, so applying a chunk never waits on I/O: without a turn of
                # the event loop here, a chunk would hold the CPU for all its orders while another chunk of
                # this process, holding the stock rows it just locked, waits to send its COMMIT
                await asyncio.sleep(0)
            # fencing, as in _process_item: only the holders of the current leases may apply the items
            by_lease: dict[Any, list[str]] = defaultdict(list)
            for p in parts:
                by_lease[p.item.lease_until].append(p.item.id)
            for lease, ids in by_lease.items():
                res = await conn.execute(_DONE[conn.dialect.name], {"b_ids": ids, "b_lease": lease, "b_at": now()})
                if res.rowcount != len(ids):
                    raise _LeaseLost
            if collected is not None:
                preload(conn, collected)
    except _LeaseLost:
        return False
    except inv.StockMoved:
        raise
    except Exception as exc:
        log.info(
            "chunk rolled back; its items are applied one by one",
            extra={"fields": {"items": len(parts), "error": f"{type(exc).__name__}: {str(exc)[:200]}"}},
        )
        return False
    if collected is not None and inline is not None:
        inline.append(collected)
    elapsed = asyncio.get_running_loop().time() - started
    metrics.jobs_total.labels("inbox", "done").inc(len(parts))
    for _ in parts:
        metrics.job_latency.labels("inbox").observe(elapsed)
    return True


async def _entity_lock(conn: AsyncConnection, key: str | None) -> None:
    """Serialise work on one entity across workers (PostgreSQL advisory lock; SQLite has one writer)."""
    if key and conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


async def process_item(hub: Hub, item: Any) -> bool:
    """Parse and apply one inbox item in one transaction; True when done."""
    token = bind(inbox_id=item.id, connection=item.connection, correlation_id=item.event_id)
    try:
        return await _process_item(hub, item)
    finally:
        unbind(token)


async def _process_item(hub: Hub, item: Any) -> bool:
    from hub.orders.service import apply_messages
    from hub.sync.failures import record_failure, resolve_failures

    connector = hub.connector(item.connection)
    headers = dict(item.headers or {})
    ev = InboundEvent(event_id=item.event_id, topic=item.topic, object_key=item.object_key, source_ts=item.source_ts)
    started = asyncio.get_running_loop().time()
    try:
        try:
            messages = connector.parse_webhook(ev, headers, bytes(item.body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # an unreadable body is permanent: retrying the same bytes cannot help, a fixed mapping can
            raise InputError(
                f"{item.connection} delivery {item.event_id} cannot be parsed: {type(exc).__name__}: {exc}"
            ) from exc
        async with hub.store.begin() as conn:
            await _entity_lock(conn, item.object_key)
            await apply_messages(hub, conn, item.connection, messages, source=f"inbox:{item.id}")
            # fencing: only the holder of the current lease may apply the item; else undo everything
            done = update(I).where(I.c.id == item.id)
            if item.lease_until is not None:
                done = done.where(and_(I.c.status == "processing", I.c.lease_until == item.lease_until))
            res = await conn.execute(done.values(status="done", processed_at=now(), lease_until=None, error=None))
            if res.rowcount != 1:
                raise _LeaseLost
            if item.attempts != 1:  # a retry or a replay may close a failure
                await resolve_failures(conn, "inbox", item.id)
        metrics.jobs_total.labels("inbox", "done").inc()
        metrics.job_latency.labels("inbox").observe(asyncio.get_running_loop().time() - started)
        return True
    except _LeaseLost:
        return False  # another worker holds the item now; our transaction was rolled back
    except Exception as exc:
        transient = isinstance(exc, RetriableError) or not isinstance(exc, OrderhubError)
        error = _describe(exc)
        final = not transient or item.attempts >= MAX_ATTEMPTS
        async with hub.store.begin() as conn:
            if final:
                await conn.execute(
                    update(I).where(I.c.id == item.id).values(status="failed", lease_until=None, error=error)
                )
                await record_failure(
                    conn,
                    source="inbox",
                    source_id=item.id,
                    connection=item.connection,
                    operation=f"inbound:{item.topic or 'webhook'}",
                    object_id=item.object_key,
                    attempts=item.attempts,
                    error=error,
                    request={
                        "topic": item.topic,
                        "event_id": item.event_id,
                        "body": bytes(item.body)[:4096].decode("utf-8", "replace"),
                    },
                )
            else:
                backoff = min(60.0, 2.0**item.attempts)
                await conn.execute(
                    update(I)
                    .where(I.c.id == item.id)
                    .values(status="processing", lease_until=now() + timedelta(seconds=backoff), error=error)
                )
        metrics.jobs_total.labels("inbox", "failed" if final else "retry").inc()
        if final:
            metrics.sync_failures.labels(item.connection, f"inbound:{item.topic or 'webhook'}").inc()
        log.warning(
            "inbound item failed",
            extra={
                "fields": {"inbox_id": item.id, "connection": item.connection, "final": final, "error": error[:300]}
            },
        )
        return False


class _LeaseLost(Exception):
    """Our lease on an inbox item expired and another worker took it."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OrderhubError):
        errors = exc.context.get("errors")
        base = f"{type(exc).__name__}: {exc.detail}"
        if errors:
            base += " | " + "; ".join(
                f"{e.get('file', '')}:{e.get('line', '')} {e.get('field', '')}={e.get('value', '')!r}: {e.get('message', '')}"
                for e in errors[:10]
            )
        return base
    return f"{type(exc).__name__}: {exc}"


async def pending_count(conn: AsyncConnection) -> int:
    """Items waiting or being processed."""
    return (await open_rows(conn, I, ("pending", "processing"), I.c.received_at))[0]
