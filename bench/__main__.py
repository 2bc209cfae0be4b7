"""``python -m bench SCENARIO [--orders N] [--workers K] [--db postgres|sqlite] [--json] [--quick]``

Starts the hub as in production (``orderhub serve --no-worker`` + K ``orderhub worker`` processes) on a
fresh PostgreSQL database (or SQLite) and a unique Redis prefix, drives it from a separate process with
signed Shopify webhooks or API calls over loopback, prints a table (or JSON with ``--json``) and writes
``bench/results/<date>-<scenario>.json``. Scenarios: ingest, flash-sale, inventory-burst, replay, scale,
intake (the webhook intake alone: no worker, ``--rate`` webhooks/s, ack latency and API CPU per webhook),
or ``all``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from bench._report import render_table, speed_probe, update_readme, write_result
from bench.scenarios import SCENARIOS, Options


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("scenario", choices=[*SCENARIOS, "all"])
    ap.add_argument("--orders", type=int, default=None, help="size (orders, stock changes or failures)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1; scale runs 1, 2, 4)")
    ap.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke check in under a minute")
    ap.add_argument("--rate", type=float, default=500.0, help="offered orders/s of the latency phase of ingest")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight from the load generator")
    ap.add_argument("--worker-concurrency", type=int, default=1, help="orderhub worker --concurrency")
    ap.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="orderhub worker --nice (default 10: the API keeps the CPU it needs on a shared machine; 0 to disable)",
    )
    ap.add_argument(
        "--replay-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="orderhub failures replay --processes (default: one per core)",
    )
    ap.add_argument(
        "--outbound-max-lag",
        type=float,
        default=None,
        metavar="SECONDS",
        help="[queue] outbound_max_lag_seconds of the hub under test (default: the hub's, 30; 0 turns the "
        "intake priority off, for a before/after)",
    )
    ap.add_argument(
        "--inbox-gather-ms",
        type=float,
        default=None,
        metavar="MS",
        help="[queue] inbox_gather_ms of the hub under test (default: the hub's, 50; 0: a drain at once)",
    )
    ap.add_argument(
        "--rate-orders",
        type=int,
        default=None,
        metavar="N",
        help="orders of ingest's phase at --rate (default: half of --orders, at most 10,000)",
    )
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results/ or the README table")
    args = ap.parse_args(argv)
    opts = Options(
        orders=args.orders,
        workers=args.workers,
        db=args.db,
        quick=args.quick,
        rate=args.rate,
        concurrency=args.concurrency,
        worker_concurrency=args.worker_concurrency,
        worker_nice=args.worker_nice,
        replay_processes=args.replay_processes,
        outbound_max_lag=args.outbound_max_lag,
        inbox_gather_ms=args.inbox_gather_ms,
        rate_orders=args.rate_orders,
    )
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    failed = False
    for name in names:
        probe = speed_probe()
        started = time.monotonic()
        result = asyncio.run(SCENARIOS[name](opts))
        result["seconds"] = round(time.monotonic() - started, 1)
        result["speed_probe_ms"] = {"before": probe, "after": speed_probe()}
        doc = write_result(name, result, vars(args), record=not args.no_record)
        if not args.no_record and not args.quick:
            update_readme()
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(render_table(name, doc))
        checks = result.get("checks", {})
        if checks.get("oversold_units") or checks.get("duplicates"):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
