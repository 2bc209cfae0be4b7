"""The worker's stages in one process, for profiling: CPU and SQL statements per order.

    python -m bench.profile_worker [--orders 1000] [--db postgres|sqlite] [--stage inbox|jobs|inline]
                                   [--batch N] [--statements N]
                                   [--pyinstrument FILE.html|FILE.txt | --cprofile FILE.pstats]

Creates a fresh database, stocks 100 SKUs over three locations, stores ``--orders`` signed Shopify
``orders/create`` webhooks through ``inbox.accept`` (as the API does), then times the worker's
``inbox.process_batch`` loop alone (no arq) and counts the SQL statements it sends. With
``--stage jobs`` the inbox is processed first, untimed, and the outbound jobs it wrote (ShipBob
orders, Shopify inventory pushes, made due at once) are timed instead, against the benchmark's
fake ShipBob/Shopify server (started here). With ``--stage inline`` the inbox is timed with the
intake priority off (``[queue] outbound_max_lag_seconds = 0``): each batch sends its fulfilment
requests to the fake 3PL straight after its commit, as a worker that keeps up does. The store's
upkeep (``hub.store.maintenance``) runs beside the timed loop, as in a worker. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench._harness import PG_ADMIN, REDIS_URL, SHOP_SECRET, Layout, config_toml, free_port
from bench._load import shopify_orders


async def run(
    orders: int,
    db: str,
    profile: str | None,
    batch: int,
    stage: str = "inbox",
    show_statements: int = 0,
    cprofile: str | None = None,
) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy import event, update

    from hub.clock import now
    from hub.config import Settings
    from hub.runtime import Hub, freeze_startup_objects
    from hub.store import inventory as inv
    from hub.store import tables as t
    from hub.sync import inbox, jobs
    from hub.sync.worker import _maintenance

    tmp = Path(tempfile.mkdtemp(prefix="orderhub-profile-"))
    fake = None
    fake_url = "http://127.0.0.1:9"
    if stage in ("jobs", "inline"):
        port = free_port()
        fake = subprocess.Popen([sys.executable, "-m", "bench._fake", "--port", str(port)])  # noqa: ASYNC220
        fake_url = f"http://127.0.0.1:{port}"
        await _wait(fake_url + "/_stats")
    # inline: the intake priority off, so every batch sends its fulfilment requests straight after its commit
    layout = Layout(outbound_max_lag=0) if stage == "inline" else Layout()
    (tmp / "orderhub.toml").write_text(config_toml(layout, fake_url))
    dbname = f"orderhub_profile_{uuid.uuid4().hex[:8]}"
    if db == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        await admin.close()
        url = os.environ.get("PROFILE_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}").format(db=dbname)
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'profile.db'}"
    settings = Settings(
        database_url=url, redis_url=REDIS_URL, redis_prefix=f"prof{uuid.uuid4().hex[:8]}", config=tmp / "orderhub.toml"
    )
    hub = await Hub.open(settings)
    try:
        skus = [f"BENCH-{i:04d}" for i in range(100)]
        async with hub.store.begin() as conn:
            for s in skus:
                for loc in Layout().locations:
                    await inv.adjust(conn, s, loc, 1_000_000, cause="receipt")
        reqs = shopify_orders(orders, skus, 2, 5_000_000_000, SHOP_SECRET, "/webhooks/shop")
        for _m, _p, headers, body in reqs:
            await inbox.accept(hub, "shop", headers, body)
        statements = [0]
        texts: Counter[str] = Counter()

        def count(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, executemany: bool) -> None:
            statements[0] += 1
            if show_statements:
                rows = f" [{len(params)} rows]" if executemany else ""
                texts[" ".join(sql.split())[:150] + rows] += 1

        if stage == "jobs":
            while await inbox.process_batch(hub, batch):
                pass
            async with hub.store.begin() as conn:
                await conn.execute(update(t.sync_jobs).values(next_run_at=now()))
        event.listen(hub.store.engine.sync_engine, "before_cursor_execute", count)
        freeze_startup_objects()  # as orderhub worker does once it has started
        profiler = cprofiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        elif cprofile:
            import cProfile

            cprofiler = cProfile.Profile()
            cprofiler.enable()
        # the store's upkeep beside the timed loop, as every worker runs it (hub.sync.worker._maintenance):
        # without it the tables are never analysed and PostgreSQL keeps the plans it made for empty ones
        stop = asyncio.Event()
        upkeep = asyncio.create_task(_maintenance(hub, stop))
        pg0 = _pg_cpu()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        done = 0
        while True:
            n = await (jobs.run_batch(hub, batch) if stage == "jobs" else inbox.process_batch(hub, batch))
            if n == 0:
                break
            done += n
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        await upkeep
        pg = _pg_cpu() - pg0
        if cprofiler is not None and cprofile:
            cprofiler.disable()
            cprofiler.dump_stats(cprofile)
        if profiler is not None and profile:
            profiler.stop()
            out = (
                profiler.output_html()
                if profile.endswith(".html")
                else profiler.output_text(unicode=False, color=False)
            )
            Path(profile).write_text(out)  # noqa: ASYNC240 - once, after the measurement
        from sqlalchemy import func, select

        async with hub.store.connect() as conn:
            statuses: dict[Any, Any] = dict(
                (await conn.execute(select(t.sync_jobs.c.status, func.count()).group_by(t.sync_jobs.c.status))).all()
            )
        return {
            "stage": stage,
            "jobs_by_status": {str(k): int(v) for k, v in statuses.items()},
            "orders": orders,
            "items": done,
            "db": db,
            "wall_s": round(wall, 3),
            "orders_per_s": round(done / wall, 1),
            "worker_cpu_ms_per_order": round(cpu * 1000 / max(orders, 1), 3),
            "statements_per_order": round(statements[0] / max(orders, 1), 2),
            "postgresql_cpu_ms_per_order": round(pg * 1000 / max(orders, 1), 3),
            **({"statements": dict(texts.most_common(show_statements))} if show_statements else {}),
        }
    finally:
        await hub.close()
        if fake is not None:
            fake.terminate()
        if db == "postgres" and not os.environ.get("BENCH_KEEP_DB"):  # kept: for EXPLAIN
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


def _pg_cpu() -> float:
    """CPU seconds of every PostgreSQL process so far (other users of the server count too)."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] and p.info["name"].startswith("postgres") and p.info["cpu_times"] is not None:
            total += p.info["cpu_times"].user + p.info["cpu_times"].system
    return total


async def _wait(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        for _ in range(100):
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_worker", description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--batch", type=int, default=50, help="inbox items (or jobs) claimed per batch")
    p.add_argument(
        "--stage",
        choices=["inbox", "jobs", "inline"],
        default="inbox",
        help="the stage to time (inline: the inbox with each batch's 3PL submissions sent after its commit)",
    )
    profilers = p.add_mutually_exclusive_group()
    profilers.add_argument(
        "--pyinstrument", metavar="FILE", help="write a pyinstrument profile of the stage (.html, else text)"
    )
    profilers.add_argument(
        "--cprofile", metavar="FILE", help="write a cProfile dump of the stage (read it with pstats: self times)"
    )
    p.add_argument(
        "--statements", type=int, default=0, metavar="N", help="also list the N most frequent SQL statements"
    )
    a = p.parse_args()
    result = asyncio.run(run(a.orders, a.db, a.pyinstrument, a.batch, a.stage, a.statements, a.cprofile))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
