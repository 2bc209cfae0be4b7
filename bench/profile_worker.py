"""The worker's inbox stage in one process, for profiling: CPU and SQL statements per order.

    python -m bench.profile_worker [--orders 1000] [--db postgres|sqlite] [--pyinstrument FILE.html]

Creates a fresh database, stocks 100 SKUs over three locations, stores ``--orders`` signed Shopify
``orders/create`` webhooks through ``inbox.accept`` (as the API does), then times the worker's
``inbox.process_batch`` loop alone (no HTTP, no arq) and counts the SQL statements it sends.
Outbound jobs are written but not run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._harness import PG_ADMIN, REDIS_URL, SHOP_SECRET, Layout, config_toml
from bench._load import shopify_orders


async def run(orders: int, db: str, profile: str | None, batch: int) -> dict[str, Any]:
    import asyncpg
    from sqlalchemy import event

    from hub.config import Settings
    from hub.runtime import Hub
    from hub.store import inventory as inv
    from hub.sync import inbox

    tmp = Path(tempfile.mkdtemp(prefix="orderhub-profile-"))
    (tmp / "orderhub.toml").write_text(config_toml(Layout(), "http://127.0.0.1:9"))
    dbname = f"orderhub_profile_{uuid.uuid4().hex[:8]}"
    if db == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        await admin.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
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

        def count(*_a: Any) -> None:
            statements[0] += 1

        event.listen(hub.store.engine.sync_engine, "before_cursor_execute", count)
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        done = 0
        while True:
            n = await inbox.process_batch(hub, batch)
            if n == 0:
                break
            done += n
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler is not None and profile:
            profiler.stop()
            out = (
                profiler.output_html()
                if profile.endswith(".html")
                else profiler.output_text(unicode=False, color=False)
            )
            Path(profile).write_text(out)  # noqa: ASYNC240 - once, after the measurement
        return {
            "orders": done,
            "db": db,
            "wall_s": round(wall, 3),
            "orders_per_s": round(done / wall, 1),
            "worker_cpu_ms_per_order": round(cpu * 1000 / max(done, 1), 3),
            "statements_per_order": round(statements[0] / max(done, 1), 2),
        }
    finally:
        await hub.close()
        if db == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_worker", description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--batch", type=int, default=50, help="inbox items claimed per batch")
    p.add_argument(
        "--pyinstrument", metavar="FILE", help="write a pyinstrument profile of the stage (.html, else text)"
    )
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.orders, a.db, a.pyinstrument, a.batch))))


if __name__ == "__main__":
    main()
