"""``orderhub worker``: an arq worker. Any number may run, on any number of machines.

Durable work is in the database; arq carries the nudges (``drain_window``, one per gather window),
a one-second ``tick`` that picks up retries whose time has come and leases that expired
(a SIGKILLed worker's items), and the pollers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

from arq import cron
from arq.worker import Worker

from hub.config import Settings
from hub.logging import get_logger
from hub.redis_urls import arq_settings
from hub.sync.queue import ArqQueue, bucket_id, queue_name

log = get_logger("hub.worker")
_BATCH = 100
#: arq jobs a worker runs at once by default (``orderhub worker --concurrency``). Each drain applies
#: its chunks of orders concurrently already, and more drains interleave chunks that then meet at the
#: stock rows and the event loop: on 2 cores (two workers, alternating runs of similar speed) 2 gave
#: 624-709 orders/s sustained where 4 gave 511-620 (session 9), and 1 gave 717-847 against 697-788
#: for 2 (session 9) and 8 % less CPU an order on a burst, 3 % at a steady rate (session 10). The
#: pollers and the backorder sweep run beside the jobs (:func:`_beside`), so one slot is never held
#: by a long poll.
DEFAULT_CONCURRENCY = 1


def _clock() -> float:
    return asyncio.get_running_loop().time()


async def drain(ctx: dict[str, Any], budget_s: float = 5.0, *, until_empty: bool = True) -> int:
    """Process inbound items, due sync jobs and partner deliveries until there is nothing left
    (or ``budget_s`` passed: the next nudge or tick continues). With ``until_empty=False``, stop
    after a round whose claims were not full: the inbox keeps up (see :func:`drain_window`)."""
    from hub.sync import inbox, jobs

    hub = ctx["hub"]
    deadline = _clock() + budget_s
    total = n = 0
    left = False  # the budget ran out with work left
    while True:
        if _clock() >= deadline:
            left = n > 0
            break
        n, waited = await inbox.process_batch_waited(hub, _BATCH)
        full = n >= _BATCH
        if not n or not await intake_first(hub, waited):
            done = await jobs.run_batch(hub, _BATCH)
            n += done
            full = full or done >= _BATCH
        if "events_task" not in hub.state:
            n += await _events(hub)
        total += n
        if n == 0 or (not until_empty and not full):
            # nothing left, or the inbox keeps up: what arrived meanwhile waits for its window's
            # drain (inbox.nudge), which takes it together with the rest of that window
            break
    if left:  # the budget is spent and work is left: the next drain is queued now, not at the next tick
        await _continue(hub, until_empty)
    return total


def _gathering(hub: Any) -> bool:
    """Whether inbound orders are taken in gather windows (``[queue] inbox_gather_ms`` > 0)."""
    return bool(hub.config.queue.inbox_gather_ms > 0)


async def drain_window(ctx: dict[str, Any]) -> int:
    """The drain a webhook's nudge queues (``hub.sync.inbox.nudge``), at the end of its gather window
    (``[queue] inbox_gather_ms``): it takes the window's items together and stops after a round that
    found less than a full batch, leaving what arrived meanwhile to the next window's drain, which
    takes it together with the rest of that window. A backlog (full batches) is drained as by
    :func:`drain`."""
    return await drain(ctx, until_empty=False)


async def _continue(hub: Any, until_empty: bool) -> None:
    """Queue a drain (of the same kind) to go on with the work a drain left (its id is this process's
    own: two workers whose drains end together each queue one)."""
    queue = hub.state.get("queue")
    if queue is None:
        return
    function = "drain" if until_empty else "drain_window"
    try:
        await queue.enqueue(function, job_id=f"{bucket_id(hub.key('drain'))}:more:{os.getpid()}")
    except Exception as exc:  # the next tick goes on instead
        log.warning("could not queue the next drain", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})


#: How often a worker that defers outbound jobs reads how long the oldest due one has waited.
_LAG_CHECK_S = 0.5
#: The "inbox behind" line is logged at most this often by a worker (the state may switch many times a second).
_BEHIND_LOG_EVERY_S = 60.0


async def intake_first(hub: Any, waited: float) -> bool:
    """Whether this round skips the outbound jobs: the inbox is behind (the oldest item just claimed
    waited longer than ``[queue] intake_lag_target_ms``) and no due job has waited
    ``[queue] outbound_max_lag_seconds`` yet. On a burst, orders are acknowledged and allocated
    at the pace they come, and the 3PL and channel calls catch up within that bound."""
    from hub.sync import jobs
    from hub.sync.inbox import keeping_up

    q = hub.config.queue
    if keeping_up(hub, waited):
        since = hub.state.pop("intake_first", None)
        if since is not None:  # debug: near the target a busy worker switches several times a second
            log.debug(
                "inbox caught up: outbound sync jobs run again", extra={"fields": {"waited_ms": round(waited * 1000)}}
            )
        return False
    t = _clock()
    checked_at, overdue = hub.state.get("outbound_overdue", (-1e9, 0.0))
    if t - checked_at >= _LAG_CHECK_S:
        async with hub.store.connect() as conn:
            overdue = await jobs.overdue_seconds(conn)
        checked_at = t
        hub.state["outbound_overdue"] = (checked_at, overdue)
    first = bool(overdue + (t - checked_at) < q.outbound_max_lag_seconds)
    if first and hub.state.get("intake_first") is None:
        hub.state["intake_first"] = t
        if t - hub.state.get("intake_first_logged", -1e9) >= _BEHIND_LOG_EVERY_S:  # one line a minute at most
            hub.state["intake_first_logged"] = t
            log.info(
                "inbox behind: outbound sync jobs wait while it catches up",
                extra={"fields": {"waited_ms": round(waited * 1000), "max_lag_s": q.outbound_max_lag_seconds}},
            )
    return first


async def _events(hub: Any) -> int:
    try:
        from hub import events
    except ImportError:
        return 0
    n: int = await events.run_once(hub)
    return n


async def tick(ctx: dict[str, Any]) -> int:
    """Every second: retries whose time has come, expired leases (a killed worker's items) and what a
    lost nudge left. With gather windows, like a window's drain it stops after a round whose claims
    were not full: a tick that drained until empty would, at a steady rate, claim the few orders
    that arrived meanwhile round after round for its whole budget, ahead of their windows."""
    hub = ctx["hub"]
    return await drain(ctx, budget_s=0.9, until_empty=not _gathering(hub))


#: How long a poll or a backorder sweep run beside the jobs may take before it is cancelled (as
#: arq's job timeout did while they were jobs).
BESIDE_TIMEOUT_S = 300.0


def _beside(ctx: dict[str, Any], name: str, run: Callable[[], Awaitable[Any]]) -> bool:
    """Start ``run()`` as a task of this worker beside its jobs, unless the previous one still runs;
    the arq job that asks returns at once, so that a long poll holds none of the worker's job slots
    (a worker running one job at a time would otherwise leave its inbox waiting). False when the
    previous run is still going."""
    tasks: dict[str, asyncio.Task[Any]] = ctx.setdefault("beside", {})
    running = tasks.get(name)
    if running is not None and not running.done():
        return False

    async def guarded() -> None:
        try:
            await asyncio.wait_for(run(), BESIDE_TIMEOUT_S)
        except Exception as exc:  # the next run (cron) tries again
            log.warning(f"{name} failed", extra={"fields": {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}})

    tasks[name] = asyncio.create_task(guarded())
    return True


async def poll(ctx: dict[str, Any]) -> bool:
    """Start this worker's poll of every polling connection whose interval has passed, beside its
    jobs (:func:`_beside`); False when its previous poll still runs."""
    return _beside(ctx, "poll", lambda: poll_now(ctx))


async def poll_now(ctx: dict[str, Any]) -> int:
    """Poll every polling connection whose interval has passed."""
    from hub.sync.polling import poll_once, polling_connections

    hub = ctx["hub"]
    loop = asyncio.get_running_loop()
    last: dict[str, float] = ctx.setdefault("last_poll", {})
    n = 0
    from hub.sync.polling import snapshot_connections, snapshot_once

    for cid in snapshot_connections(hub):
        interval = float(getattr(hub.connector(cid).settings, "snapshot_interval_seconds", 900) or 900)
        if loop.time() - last.get(f"snapshot:{cid}", -1e9) >= interval:
            last[f"snapshot:{cid}"] = loop.time()
            try:
                n += await snapshot_once(hub, cid)
            except Exception as exc:
                log.warning("inventory snapshot failed", extra={"fields": {"connection": cid, "error": str(exc)[:300]}})
    for cid in polling_connections(hub):
        interval = float(getattr(hub.connector(cid).settings, "poll_interval_seconds", 60) or 60)
        if loop.time() - last.get(cid, -1e9) >= interval:
            last[cid] = loop.time()
            try:
                n += await poll_once(hub, cid)
            except Exception as exc:
                log.warning("poll failed", extra={"fields": {"connection": cid, "error": str(exc)[:300]}})
    return n


async def backorder_sweep(ctx: dict[str, Any]) -> bool:
    """Start the backorder sweep beside the jobs (:func:`_beside`): promise dates from expected
    receipts; flag or cancel backorders past their age limit."""
    from hub.orders.backorders import sweep

    return _beside(ctx, "backorder_sweep", lambda: sweep(ctx["hub"]))


async def startup(ctx: dict[str, Any]) -> None:
    from hub.logging import configure
    from hub.runtime import Hub

    settings: Settings = ctx["orderhub_settings"]
    configure(settings.log_level)
    hub = await Hub.open(settings, migrate=False, role="worker")
    hub.state["queue"] = await ArqQueue.connect(hub.state["redis_url"], settings.redis_prefix)
    ctx["hub"] = hub
    from hub.runtime import freeze_startup_objects

    freeze_startup_objects()
    # partner deliveries run continuously beside the jobs, so a slow partner holds no job slot
    from hub import events

    stop = asyncio.Event()
    hub.state["events_stop"] = stop
    hub.state["events_task"] = asyncio.create_task(events.serve(hub, stop))
    hub.state["maintenance_task"] = asyncio.create_task(_maintenance(hub, stop))


async def _maintenance(hub: Any, stop: asyncio.Event) -> None:
    """VACUUM / ANALYZE where the database does not (``hub.store.maintenance``), every
    ``[store] maintenance_interval_seconds``, beside the jobs."""
    from hub.store.maintenance import maintain

    cfg = hub.config.store
    while not stop.is_set():
        try:
            await maintain(hub.store.engine, cfg.maintenance)
        except Exception as exc:  # a failed VACUUM is retried next round; the jobs go on
            log.warning("store maintenance failed", extra={"fields": {"error": str(exc)[:300]}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), cfg.maintenance_interval_seconds)


async def shutdown(ctx: dict[str, Any]) -> None:
    for task in ctx.get("beside", {}).values():  # a poll under way is cancelled: the next one redoes it
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    hub = ctx.get("hub")
    if hub is not None:
        if "events_task" in hub.state:
            hub.state["events_stop"].set()
            await hub.state["events_task"]
        if "maintenance_task" in hub.state:  # a VACUUM under way is cancelled: the next worker redoes it
            hub.state["maintenance_task"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hub.state["maintenance_task"]
        await hub.state["queue"].close()
        await hub.close()


def make_worker(
    settings: Settings,
    redis_url: str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    burst: bool = False,
    handle_signals: bool = True,
) -> Worker:
    """An arq Worker for this hub (poll_delay tuned down from arq's 0.5 s)."""
    ctx = {"orderhub_settings": settings}
    queue = queue_name(settings.redis_prefix)
    return Worker(
        functions=[drain, drain_window],
        # arq names a cron job's run "<name>:<time>" in Redis, across queues: named after this hub's
        # queue, so that two hubs sharing a Redis (each with its ORDERHUB_REDIS_PREFIX) do not take
        # each other's runs for their own and skip them
        cron_jobs=[
            cron(tick, name=f"cron:{queue}:tick", second=set(range(60)), run_at_startup=True, timeout=120),
            # these two only start a task beside the jobs (bounded by BESIDE_TIMEOUT_S) and return
            cron(poll, name=f"cron:{queue}:poll", second={0, 10, 20, 30, 40, 50}, unique=True),
            cron(backorder_sweep, name=f"cron:{queue}:backorder_sweep", second={30}, unique=True),
        ],
        on_startup=startup,
        on_shutdown=shutdown,
        redis_settings=arq_settings(redis_url),
        queue_name=queue,
        max_jobs=concurrency,
        poll_delay=0.02,
        keep_result=0,
        job_timeout=300,
        ctx=ctx,
        burst=burst,
        handle_signals=handle_signals and not burst,
    )
