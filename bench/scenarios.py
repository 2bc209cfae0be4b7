"""The benchmark scenarios. Each takes its options and returns a JSON-able result with
``figures`` (what the table shows), ``targets`` (each target, its value and whether it was met)
and ``checks`` (correctness: these must hold whatever the speed).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil

from bench._harness import PY, Harness, Layout

Scenario = Callable[["Options"], Coroutine[Any, Any, dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {}
# inbox items still to process: two counts over the claim's partial indexes, so that polling for
# the end of a run costs PostgreSQL next to nothing (a count of every done item did, 10 times a second)
OPEN = (
    "SELECT (SELECT count(*) FROM inbox WHERE status = 'pending')"
    " + (SELECT count(*) FROM inbox WHERE status = 'processing')"
)
#: 3PL submissions not made yet: an order's work is done when its fulfilment request reached the 3PL
OUTBOUND = (  # one status per subquery, as OPEN: each reads its partial index (an IN list scans the table)
    "SELECT (SELECT count(*) FROM sync_jobs WHERE status = 'pending' AND operation = 'submit_fulfillment')"
    " + (SELECT count(*) FROM sync_jobs WHERE status = 'running' AND operation = 'submit_fulfillment')"
)


@dataclass
class Options:
    orders: int | None
    workers: int
    db: str
    quick: bool
    rate: float
    concurrency: int
    worker_concurrency: int
    worker_nice: int = 0
    replay_processes: int = 1
    outbound_max_lag: float | None = None
    inbox_gather_ms: float | None = None
    rate_orders: int | None = None

    def layout(self) -> Layout:
        """The hub's configuration for these options."""
        return Layout(outbound_max_lag=self.outbound_max_lag, inbox_gather_ms=self.inbox_gather_ms)


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def deco(fn: Scenario) -> Scenario:
        SCENARIOS[name] = fn
        return fn

    return deco


def ack_p99_by_second(ack_ms: list[float], rate: float) -> list[float | None]:
    """p99 ack of each second of an open-loop phase: request i was due at ``i / rate`` seconds."""
    by_second: dict[int, list[float]] = {}
    for i, ms in enumerate(ack_ms):
        by_second.setdefault(int(i / rate), []).append(ms)
    return [pct(by_second[sec], 99) for sec in sorted(by_second)]


def pct(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank) of ``values``, rounded to 0.1."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return round(s[k], 1)


def _ts(v: Any) -> float:
    """Epoch seconds of a timestamp column read through text() (aware on PostgreSQL, naive UTC text on SQLite)."""
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        from datetime import UTC

        v = v.replace(tzinfo=UTC)
    return float(v.timestamp())


def target(name: str, value: float | None, op: str, goal: float) -> dict[str, Any]:
    met = value is not None and (value >= goal if op == ">=" else value <= goal if op == "<=" else value == goal)
    return {"target": name, "value": value, "goal": f"{op} {goal:g}", "met": met}


SKUS = [f"BENCH-{i:03d}" for i in range(100)]


async def seed_stock(h: Harness, skus: list[str], per_location: dict[str, int]) -> None:
    """on_hand through POST /api/v1/inventory/adjustments (batches of 100)."""
    adj = [
        {"sku": s, "location": loc, "delta": q, "reason": "bench seed"}
        for s in skus
        for loc, q in per_location.items()
        if q
    ]
    for i in range(0, len(adj), 100):
        await h.api("POST", "/api/v1/inventory/adjustments", {"adjustments": adj[i : i + 100]})


_id_counter = [int(time.time()) % 100_000 * 100_000 + 1_000_000_000_000]


def next_ids(n: int) -> int:
    base = _id_counter[0]
    _id_counter[0] += n + 1000
    return base


async def ingest_phase(
    h: Harness,
    n: int,
    *,
    rate: float | None,
    concurrency: int,
    skus: list[str],
    max_lines: int = 2,
    limit_s: float,
    outbound: bool = True,
) -> dict[str, Any]:
    """Send ``n`` orders/create webhooks; wait until every one is processed (and, with ``outbound``,
    until every fulfilment request reached the 3PL: the CPU window and the sustained rate include
    the outbound work a burst may defer); measure."""
    id_base = next_ids(n)
    load = await h.load(
        orders={"n": n, "skus": skus, "max_lines": max_lines, "id_base": id_base}, rate=rate, concurrency=concurrency
    )
    ok = load["status"].get("202", 0)
    await h.wait_until_zero(OPEN, limit_s=limit_s)  # every acked item was stored before its 202
    if outbound:
        await h.wait_until_zero(OUTBOUND, limit_s=limit_s)
    assert h.sampler is not None
    cpu = h.sampler.close_window()
    window = time.time() - load["start"]  # the CPU window: from the first request to the last processed
    # three plain scans joined here (a SQL join on 'order:' || external_id cannot use an index)
    inbox_rows = await h.sql("SELECT object_key, received_at, processed_at FROM inbox WHERE connection = 'shop'")
    received = {r.object_key: _ts(r.received_at) for r in inbox_rows}
    # a transaction marks its items processed at one time: orders per transaction (chunk) of this phase
    phase = [r.processed_at for r in inbox_rows if r.processed_at is not None and _ts(r.received_at) >= load["start"]]
    per_transaction = round(len(phase) / len(set(phase)), 1) if phase else None
    allocated_at = {
        r.order_id: _ts(r.at) for r in await h.sql("SELECT order_id, at FROM order_timeline WHERE kind = 'allocated'")
    }
    lat: list[float] = []
    by_second: dict[int, list[float]] = {}  # latencies by the second (since the first request) of receipt
    last = load["start"]
    for oid, ext in await h.sql("SELECT id, external_id FROM orders WHERE connection = 'shop'"):
        if id_base <= int(ext) < id_base + n and oid in allocated_at and f"order:{ext}" in received:
            a, r = allocated_at[oid], received[f"order:{ext}"]
            lat.append((a - r) * 1000)
            by_second.setdefault(int(r - load["start"]), []).append((a - r) * 1000)
            last = max(last, a)
    allocated = len(lat)
    span = max(last - load["start"], 1e-6)
    processed = _ts(await h.scalar("SELECT max(processed_at) FROM inbox")) - load["start"]
    submitted = None
    if outbound:
        last_submit = await h.scalar(
            "SELECT max(updated_at) FROM sync_jobs WHERE operation = 'submit_fulfillment' AND status = 'done'"
        )
        submitted = max(_ts(last_submit) - load["start"], span, processed) if last_submit is not None else None
    cpu_ms = {k: round(v * window * 1000 / max(ok, 1), 2) for k, v in cpu.items()}
    hub_ms = round(sum(v for k, v in cpu_ms.items() if k not in ("load", "fake")), 2)
    return {
        "orders": n,
        "offered_rate": rate,
        "acked": ok,
        "status": load["status"],
        "allocated": allocated,
        "send_seconds": round(load["end"] - load["start"], 2),
        "end_to_end_seconds": round(span, 2),
        "all_processed_seconds": round(processed, 2),
        "orders_per_second": round(allocated / span, 1),
        "submitted_to_3pl_seconds": round(submitted, 2) if submitted is not None else None,
        "sustained_orders_per_second": round(allocated / submitted, 1) if submitted else None,
        "ack_ms": {"p50": pct(load["ack_ms"], 50), "p99": pct(load["ack_ms"], 99), "max": pct(load["ack_ms"], 100)},
        "webhook_to_allocated_ms": {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": pct(lat, 100)},
        # where in the run the slow ones are: a steady queue, or stalls of a second or two
        "webhook_to_allocated_p99_ms_per_second": [pct(by_second[sec], 99) for sec in sorted(by_second)],
        "ack_p99_ms_per_second": ack_p99_by_second(load["ack_ms"], rate) if rate else None,
        "orders_per_transaction": per_transaction,
        "cpu_cores": cpu,
        "cpu_ms_per_order": {**cpu_ms, "hub_total": hub_ms},
        "projected_orders_per_second_on_idle_cores": round((os.cpu_count() or 1) * 1000 / hub_ms, 1)
        if hub_ms
        else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "errors": load["errors"][:5],
    }


async def _allocation_checks(h: Harness) -> dict[str, Any]:
    """Every allocated order has its reservation, its fulfilment request and sync job, and its event."""
    orders = int(await h.scalar("SELECT count(*) FROM orders WHERE status IN ('released', 'allocated')") or 0)
    ful = int(await h.scalar("SELECT count(DISTINCT order_id) FROM fulfillments") or 0)
    jobs = int(await h.scalar("SELECT count(*) FROM sync_jobs WHERE operation = 'submit_fulfillment'") or 0)
    events = int(await h.scalar("SELECT count(*) FROM outbox WHERE type = 'order.allocated'") or 0)
    held = int(await h.scalar("SELECT count(*) FROM orders WHERE status = 'on_hold'") or 0)
    failed = int(await h.scalar("SELECT count(*) FROM inbox WHERE status = 'failed'") or 0)
    return {
        "orders_released": orders,
        "orders_with_fulfillment_request": ful,
        "submit_fulfillment_jobs": jobs,
        "order_allocated_events": events,
        "orders_on_hold": held,
        "inbox_failed": failed,
    }


# ----------------------------------------------------------------------------- ingest
@scenario("ingest")
async def ingest(o: Options) -> dict[str, Any]:
    n = o.orders or (200 if o.quick else 20_000)
    n_rate = o.rate_orders or (200 if o.quick else min(max(n // 2, 1), 10_000))
    async with Harness(
        workers=o.workers, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice, layout=o.layout()
    ) as h:
        await seed_stock(h, SKUS, {loc: 1_000_000 for loc in h.layout.locations})
        warm = 20 if o.quick else 100
        await ingest_phase(h, warm, rate=None, concurrency=o.concurrency, skus=SKUS, limit_s=120)  # warm-up
        peak = await ingest_phase(h, n, rate=None, concurrency=o.concurrency, skus=SKUS, limit_s=max(300.0, n / 2))
        at_rate = await ingest_phase(
            h, n_rate, rate=o.rate, concurrency=max(o.concurrency, 256), skus=SKUS, limit_s=max(300.0, n_rate / 2)
        )
        checks = await _allocation_checks(h)
        assert h.sampler is not None
        rss = h.sampler.peak_rss
        locks = h.sampler.locks()
    return {
        "settings": {
            "orders": n,
            "orders_at_rate": n_rate,
            "rate": o.rate,
            "workers": o.workers,
            "outbound_max_lag_seconds": o.outbound_max_lag if o.outbound_max_lag is not None else "default (30)",
        },
        "max_throughput": peak,
        "at_rate": at_rate,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "lock_waits": locks,
        "checks": {**checks, "all_allocated": checks["orders_released"] == n + n_rate + warm},
        "figures": {
            "orders/s (max, webhook to allocated)": peak["orders_per_second"],
            "orders/s (max, sustained: every request at the 3PL)": peak["sustained_orders_per_second"],
            f"ack p50/p99 ms @ {o.rate:g}/s": f"{at_rate['ack_ms']['p50']} / {at_rate['ack_ms']['p99']}",
            f"webhook->allocated p50/p99 ms @ {o.rate:g}/s": (
                f"{at_rate['webhook_to_allocated_ms']['p50']} / {at_rate['webhook_to_allocated_ms']['p99']}"
            ),
            f"orders/s achieved @ {o.rate:g}/s offered": at_rate["orders_per_second"],
            f"orders per transaction (max / @ {o.rate:g}/s)": (
                f"{peak['orders_per_transaction']} / {at_rate['orders_per_transaction']}"
            ),
            f"last 3PL submission after the first webhook @ {o.rate:g}/s, s": at_rate["submitted_to_3pl_seconds"],
        },
        "targets": [
            target("ingest orders/s sustained", peak["sustained_orders_per_second"], ">=", 1000),
            target(f"p99 ack ms at {o.rate:g}/s", at_rate["ack_ms"]["p99"], "<=", 25),
            target(
                f"p99 webhook-to-allocated ms at {o.rate:g}/s", at_rate["webhook_to_allocated_ms"]["p99"], "<=", 250
            ),
        ],
    }


# ----------------------------------------------------------------------------- flash sale
@scenario("flash-sale")
async def flash_sale(o: Options) -> dict[str, Any]:
    n = o.orders or (200 if o.quick else 10_000)
    stock_total = int(n * 0.8)
    sku = "FLASH-001"
    async with Harness(
        workers=o.workers, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice, layout=o.layout()
    ) as h:
        locs = h.layout.locations
        split = [int(stock_total * 0.4), int(stock_total * 0.35)]
        split.append(stock_total - sum(split))
        await seed_stock(h, [sku], dict(zip(locs, split, strict=True)))
        deadlocks0 = await _deadlocks(h)
        phase = await ingest_phase(
            h, n, rate=None, concurrency=o.concurrency, skus=[sku], max_lines=1, limit_s=max(300.0, n / 2)
        )
        levels = await h.sql("SELECT location, on_hand, reserved FROM inventory_levels WHERE sku = :s", s=sku)
        alloc_units = int(
            await h.scalar(
                "SELECT coalesce(sum(quantity), 0) FROM allocations WHERE sku = :s AND status IN ('reserved', 'released')",
                s=sku,
            )
            or 0
        )
        backordered = int(await h.scalar("SELECT count(*) FROM orders WHERE status = 'backordered'") or 0)
        released = int(await h.scalar("SELECT count(*) FROM orders WHERE status = 'released'") or 0)
        deadlocks = (await _deadlocks(h)) - deadlocks0
        assert h.sampler is not None
        locks = h.sampler.locks()
        rss = h.sampler.peak_rss
    reserved_total = sum(r.reserved for r in levels)
    oversold = sum(max(0, r.reserved - r.on_hand) for r in levels) + max(0, alloc_units - stock_total)
    processed_span = phase["all_processed_seconds"]
    # every order is decided (allocated or backordered): orders/s counts both
    decided_per_s = round((released + backordered) / processed_span, 1) if processed_span else None
    return {
        "settings": {"orders": n, "sku": sku, "stock": dict(zip(locs, split, strict=True)), "workers": o.workers},
        "run": phase,
        "levels": [{"location": r.location, "on_hand": r.on_hand, "reserved": r.reserved} for r in levels],
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "lock_waits": {**locks, "deadlocks": deadlocks},
        "checks": {
            "oversold_units": oversold,
            "sum_reserved": reserved_total,
            "allocated_units": alloc_units,
            "reserved_equals_allocated": reserved_total == alloc_units,
            "orders_released": released,
            "orders_backordered": backordered,
            "all_decided": released + backordered == n,
            "stock_sold_out": alloc_units == stock_total,
        },
        "figures": {
            "orders/s (allocated or backordered)": decided_per_s,
            "orders/s sustained (every allocated order's request at the 3PL)": (
                round(n / phase["submitted_to_3pl_seconds"], 1) if phase["submitted_to_3pl_seconds"] else None
            ),
            "oversold units": oversold,
            "allocated / backordered": f"{released} / {backordered}",
            "lock waits mean/max (pg_locks not granted)": f"{locks['waiting_locks_mean']} / {locks['waiting_locks_max']}",
        },
        "targets": [
            target("flash-sale orders/s", decided_per_s, ">=", 500),
            target("oversold units", oversold, "==", 0),
        ],
    }


async def _deadlocks(h: Harness) -> int:
    if h.db != "postgres":
        return 0
    return int(await h.scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()") or 0)


# ----------------------------------------------------------------------------- inventory burst
@scenario("inventory-burst")
async def inventory_burst(o: Options) -> dict[str, Any]:
    changes = o.orders or (500 if o.quick else 10_000)
    skus = SKUS[: 10 if o.quick else 100]
    rng = random.Random(7)
    async with Harness(workers=o.workers, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice) as h:
        locs = h.layout.locations
        await seed_stock(h, skus, {loc: 1_000 for loc in locs})
        seeded, _ = await _converge(h, skus, limit_s=120)
        if seeded is None:
            raise RuntimeError(f"the seeded stock never reached the fake Shopify (logs in {h.tmp})")
        before = await h.fake_stats()
        reqs: list[list[Any]] = []
        for _ in range(changes):
            body = {"sku": rng.choice(skus), "location": rng.choice(locs), "delta": rng.choice((-2, -1, 1, 2, 3))}
            body["reason"] = "bench burst"
            reqs.append(["POST", "/api/v1/inventory/adjustments", _auth_json(), _dumps(body)])
        load = await h.load(reqs, rate=None, concurrency=o.concurrency)
        converged_at, stale = await _converge(h, skus, limit_s=60)
        assert h.sampler is not None
        cpu = h.sampler.close_window()
        after = await h.fake_stats()
        rss = h.sampler.peak_rss
    calls = after["calls"].get("inventorySetQuantities", 0) - before["calls"].get("inventorySetQuantities", 0)
    lookups = after["calls"].get("productVariants", 0) - before["calls"].get("productVariants", 0)
    ok = load["status"].get("200", 0) + load["status"].get("201", 0)
    ratio = round(ok / calls, 1) if calls else None
    return {
        "settings": {"changes": changes, "skus": len(skus), "locations": len(locs), "workers": o.workers},
        "api": {
            "status": load["status"],
            "seconds": round(load["end"] - load["start"], 2),
            "changes_per_second": round(ok / max(load["end"] - load["start"], 1e-6), 1),
            "ack_ms": {"p50": pct(load["ack_ms"], 50), "p99": pct(load["ack_ms"], 99)},
        },
        "channel_calls": {"inventorySetQuantities": calls, "productVariants": lookups},
        "converge_seconds_from_first_change": round(converged_at - load["start"], 2) if converged_at else None,
        "converge_seconds_after_last_change": round(converged_at - load["end"], 2) if converged_at else None,
        "stale_skus_after_60s_idle": stale,
        "cpu_cores": cpu,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "checks": {"converged": converged_at is not None, "stale_skus": len(stale), "changes_accepted": ok == changes},
        "figures": {
            "stock changes": ok,
            "channel calls (inventorySetQuantities)": calls,
            "coalescing ratio": f"{ratio}:1",
            "converged s after last change": (
                round(converged_at - load["end"], 2) if converged_at else f"never: {len(stale)} SKU(s) stale"
            ),
        },
        "targets": [target("coalescing ratio (changes per channel call)", ratio, ">=", 50)],
    }


def _auth_json() -> dict[str, str]:
    from bench._harness import TOKEN

    return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _dumps(obj: Any) -> str:
    import orjson

    return orjson.dumps(obj).decode()


async def _converge(h: Harness, skus: list[str], limit_s: float) -> tuple[float | None, dict[str, Any]]:
    """Wait until the fake Shopify's last pushed quantity equals the hub's ATP for every SKU, with no
    push pending; (epoch time it did or None, the SKUs still different when ``limit_s`` ran out)."""
    end = time.monotonic() + limit_s
    stale: dict[str, Any] = {}
    while True:
        stats = await h.fake_stats()
        pushed = stats["quantities"]
        pending = int(
            await h.scalar(
                "SELECT count(*) FROM sync_jobs WHERE operation = 'push_inventory' AND status IN ('pending', 'running')"
            )
            or 0
        )
        if pending == 0:
            docs = await asyncio.gather(*(h.api("GET", f"/api/v1/inventory/{s}") for s in skus))
            atp = {d["sku"]: next(c["atp"] for c in d["channels"] if c["connection"] == "shop") for d in docs}
            stale = {s: {"hub_atp": atp[s], "channel": pushed.get(s)} for s in skus if pushed.get(s) != atp[s]}
            if not stale:
                return time.time(), {}
        if time.monotonic() > end:
            return None, stale
        h.check_alive()
        await asyncio.sleep(0.2)


# ----------------------------------------------------------------------------- replay
@scenario("replay")
async def replay(o: Options) -> dict[str, Any]:
    n = o.orders or (100 if o.quick else 10_000)
    open_failures = "SELECT count(*) FROM sync_failures WHERE status = 'open' AND operation = 'submit_fulfillment'"
    # the 3PL connection's rate limit (5,000/s) well above the target: the hub's replay is measured,
    # not the rate_per_second it is configured to respect (at 1,000/s, 10,000 calls could not beat 10 s)
    layout = o.layout()
    async with Harness(
        workers=o.workers, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice, layout=layout
    ) as h:
        await seed_stock(h, SKUS, {loc: 1_000_000 for loc in h.layout.locations})
        await h.fake_mode("reject")
        await ingest_phase(  # the 3PL refuses every request: they become the failures to replay
            h,
            n,
            rate=None,
            concurrency=o.concurrency,
            skus=SKUS,
            max_lines=1,
            limit_s=max(300.0, n / 2),
            outbound=False,
        )
        await h.wait_for(open_failures, n, limit_s=max(300.0, n / 2))
        await h.fake_mode("ok")
        assert h.sampler is not None
        h.sampler.mark()
        # the CLI's default concurrency, spelled out (the connection caps its calls at 16), per process
        concurrency = ["--concurrency", "32", "--processes", str(o.replay_processes)]
        started = time.time()
        proc = await asyncio.create_subprocess_exec(
            *[PY, "-m", "hub", "failures", "replay", "--all", "--operation", "submit_fulfillment", *concurrency],
            env=h.env(),
            cwd=h.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        h.sampler.procs["replay_cli"] = psutil.Process(proc.pid)
        stdout = (await proc.communicate())[0].decode()
        wall = time.time() - started
        cpu = h.sampler.close_window()
        stats = await h.fake_stats()
        resolved = int(await h.scalar("SELECT count(*) FROM sync_failures WHERE status = 'resolved'") or 0)
        still_open = int(await h.scalar(open_failures) or 0)
        done_jobs = int(
            await h.scalar("SELECT count(*) FROM sync_jobs WHERE operation = 'submit_fulfillment' AND status = 'done'")
            or 0
        )
        ful_submitted = int(await h.scalar("SELECT count(*) FROM fulfillments WHERE external_id IS NOT NULL") or 0)
        rss = h.sampler.peak_rss
    dupes = int(stats["shipbob_duplicate_creates"]) + max(0, int(stats["shipbob_orders"]) - n)
    rate = round(resolved / wall, 1) if wall else None
    return {
        "settings": {
            "failures": n,
            "workers": o.workers,
            "threepl_rate_per_second": layout.threepl_rate,
            "how": f"orderhub failures replay --all {' '.join(concurrency)}",
        },
        "replay": {
            "wall_seconds": round(wall, 2),
            "exit_code": proc.returncode,
            "summary": stdout.strip().splitlines()[-1:],
        },
        "cpu_cores": cpu,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "checks": {
            "duplicates": dupes,
            "resolved": resolved,
            "still_open": still_open,
            "submit_jobs_done": done_jobs,
            "fulfillments_with_3pl_id": ful_submitted,
            "threepl_orders": stats["shipbob_orders"],
            "rejected_before_fix": stats["shipbob_rejected"],
        },
        "figures": {
            "dead-lettered syncs": n,
            "replays/s (CLI wall clock, incl. start-up)": rate,
            "duplicates": dupes,
            "resolved / still open": f"{resolved} / {still_open}",
        },
        "targets": [target("replays/s", rate, ">=", 1000), target("duplicates", dupes, "==", 0)],
    }


# ----------------------------------------------------------------------------- scale
@scenario("scale")
async def scale(o: Options) -> dict[str, Any]:
    n = o.orders or (200 if o.quick else 10_000)
    curve = []
    for k in (1, 2, 4):
        async with Harness(
            workers=k, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice, layout=o.layout()
        ) as h:
            await seed_stock(h, SKUS, {loc: 1_000_000 for loc in h.layout.locations})
            await ingest_phase(h, 20 if o.quick else 100, rate=None, concurrency=o.concurrency, skus=SKUS, limit_s=120)
            r = await ingest_phase(h, n, rate=None, concurrency=o.concurrency, skus=SKUS, limit_s=max(300.0, n / 2))
            cpu = r["cpu_cores"]
            workers_cpu = round(sum(v for key, v in cpu.items() if key.startswith("worker")), 2)
            curve.append(
                {
                    "workers": k,
                    "orders_per_second": r["orders_per_second"],
                    "sustained_orders_per_second": r["sustained_orders_per_second"],
                    "ack_p99_ms": r["ack_ms"]["p99"],
                    "webhook_to_allocated_p99_ms": r["webhook_to_allocated_ms"]["p99"],
                    "cpu_cores": {
                        "api": cpu.get("api", 0.0),
                        "workers": workers_cpu,
                        "postgresql": cpu.get("postgresql", 0.0),
                        "redis": cpu.get("redis", 0.0),
                        "load": cpu.get("load", 0.0),
                        "fake": cpu.get("fake", 0.0),
                        "total": round(sum(cpu.values()), 2),
                    },
                    "lock_waits": h.sampler.locks() if h.sampler else {},
                }
            )
    best = max(curve, key=lambda c: c["sustained_orders_per_second"] or 0.0)
    return {
        "settings": {"orders": n, "machine_cores": os.cpu_count()},
        "curve": curve,
        "figures": {
            **{
                f"orders/s with {c['workers']} worker(s) (allocated / sustained)": (
                    f"{c['orders_per_second']} / {c['sustained_orders_per_second']}"
                )
                for c in curve
            },
            "best": f"{best['workers']} worker(s)",
            **{
                f"CPU cores api/workers/pg/redis @{c['workers']}w": (
                    f"{c['cpu_cores']['api']}/{c['cpu_cores']['workers']}/"
                    f"{c['cpu_cores']['postgresql']}/{c['cpu_cores']['redis']}"
                )
                for c in curve
            },
        },
        "targets": [
            target("ingest orders/s sustained (best of the curve)", best["sustained_orders_per_second"], ">=", 1000)
        ],
        "checks": {},
    }


def summarize(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 1)} if values else {}


# ----------------------------------------------------------------------------- intake
@scenario("intake")
async def intake(o: Options) -> dict[str, Any]:
    """The webhook intake alone: ``orderhub serve --no-worker`` and no worker, N signed ``orders/create``
    webhooks offered open-loop at ``--rate`` (default 500/s, 10,000 = 20 s); ack latency and the CPU
    each process spends per webhook. Nothing is processed: the inbox only fills."""
    n = o.orders or (1_000 if o.quick else 10_000)
    async with Harness(workers=0, db=o.db, concurrency=o.worker_concurrency, nice=o.worker_nice) as h:
        warm = await h.load(
            orders={"n": 200, "skus": SKUS, "id_base": next_ids(200)}, rate=None, concurrency=o.concurrency
        )
        load = await h.load(
            orders={"n": n, "skus": SKUS, "id_base": next_ids(n)}, rate=o.rate, concurrency=max(o.concurrency, 256)
        )
        assert h.sampler is not None
        cpu = h.sampler.close_window()
        window = time.time() - load["start"]
        stored = int(await h.scalar("SELECT count(*) FROM inbox") or 0)
        rss = h.sampler.peak_rss
    ok = load["status"].get("202", 0)
    acked = ok + warm["status"].get("202", 0)
    cpu_ms = {k: round(v * window * 1000 / max(ok, 1), 3) for k, v in cpu.items()}
    send_s = max(load["end"] - load["start"], 1e-6)
    ack = {"p50": pct(load["ack_ms"], 50), "p99": pct(load["ack_ms"], 99), "max": pct(load["ack_ms"], 100)}
    per_s = max(int(o.rate), 1)  # request i is due at i / rate: one slice per second of the schedule
    by_second = [pct(load["ack_ms"][i : i + per_s], 99) for i in range(0, len(load["ack_ms"]), per_s)]
    return {
        "settings": {"webhooks": n, "rate": o.rate, "workers": 0, "db": o.db},
        "status": load["status"],
        "errors": load["errors"][:5],
        "send_seconds": round(send_s, 2),
        "acked_per_second": round(ok / send_s, 1),
        "ack_ms": ack,
        "ack_p99_ms_by_second": by_second,
        "cpu_cores": cpu,
        "cpu_ms_per_webhook": cpu_ms,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
        # nothing acknowledged that is not stored; nothing stored twice
        "checks": {"acked": acked, "stored": stored, "all_acked_stored": stored == acked, "all_acked": ok == n},
        "figures": {
            f"ack p50/p99/max ms @ {o.rate:g}/s": f"{ack['p50']} / {ack['p99']} / {ack['max']}",
            "acked/s": round(ok / send_s, 1),
            "API CPU ms per webhook": cpu_ms.get("api"),
            "PostgreSQL CPU ms per webhook": cpu_ms.get("postgresql"),
            "load generator CPU ms per webhook": cpu_ms.get("load"),
        },
        "targets": [target(f"p99 ack ms at {o.rate:g}/s (intake alone)", ack["p99"], "<=", 25)],
    }
