"""Outbound HTTP client throughput: requests/s at concurrency 32 against a local aiohttp server.

    python -m bench.http_client [--requests 20000] [--concurrency 32] [--redis redis://127.0.0.1:6379/0]

Variants: plain httpx (its own httpcore pool), httpx + AiohttpTransport, our ``hub.http`` client
with the limiter disabled, and our client with the Redis limiter on (rate set far above the load,
so every request still pays its EVALSHA). The server runs in a separate process; the client is one
asyncio process, so the figures are per client core (``requests_per_cpu_second`` divides by the CPU time the client
process used, which keeps the figure meaningful on a shared, loaded machine). Writes ``bench/results/<date>-http-client.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata as md
import json
import multiprocessing
import os
import platform
import signal
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
BODY = b'{"inventory_level":{"inventory_item_id":808950810,"location_id":655441491,"available":42}}'


def _serve(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"bench server did not start on port {port}")


class _BenchConnector:
    """Just what ``client_for`` reads from a connector."""

    name = "bench"
    connection_id = "bench"
    rate_per_second = 1_000_000.0
    rate_burst = 1_000_000.0
    max_concurrency = 64
    settings = None

    def __init__(self, base: str) -> None:
        self._base = base

    def base_url(self) -> str:
        return self._base

    def auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": "shpat_bench"}


async def _drive(send: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> tuple[float, float]:
    """(requests per wall-clock second, requests per CPU-second of this process) of ``n`` sends
    by ``concurrency`` workers."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)


def _sender(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[None]]:
    async def send() -> None:
        resp = await client.post(url, json={"available": 42})
        if resp.status_code != 200:
            raise RuntimeError(f"bench server answered {resp.status_code}")

    return send


async def run(n: int, concurrency: int, rounds: int, redis_url: str) -> dict[str, Any]:
    """The variants measured in turn, round after round, so that each sees the same machine load."""
    import redis.asyncio as aioredis
    from httpx_aiohttp import AiohttpTransport

    from hub.http import client_for

    port = _free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    proc.start()
    redis = aioredis.from_url(redis_url)  # type: ignore[no-untyped-call]
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    try:
        _wait_for(port)
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/admin/api/2026-07/inventory_levels/set.json"
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        clients: dict[str, httpx.AsyncClient] = {
            "httpx": httpx.AsyncClient(limits=limits),
            "httpx+aiohttp": httpx.AsyncClient(transport=AiohttpTransport(limits=limits)),
            "hub.http (no limiter)": client_for(_BenchConnector(base)),
            "hub.http (Redis limiter)": client_for(_BenchConnector(base), redis=redis, prefix=prefix),
        }
        # httpx's own pool is slow at this concurrency (encode/httpx#3215): fewer requests keep the run short.
        counts = {name: max(1000, n // 10) if name == "httpx" else n for name in clients}
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        try:
            for c in clients.values():
                await _drive(_sender(c, url), 1000, concurrency)  # warm-up: connections, caches
            for r in range(rounds):
                for name, c in clients.items():
                    runs[name].append(await _drive(_sender(c, url), counts[name], concurrency))
                    wall, cpu = runs[name][-1]
                    print(f"round {r + 1} {name:26s} {wall:7.0f} req/s wall {cpu:7.0f} req per CPU-second", flush=True)
        finally:
            for c in clients.values():
                await c.aclose()
        return {
            name: {
                "requests_per_second": round(max(w for w, _ in rs)),
                "requests_per_cpu_second": round(max(c for _, c in rs)),
                "runs": [{"wall": round(w), "cpu": round(c)} for w, c in rs],
                "requests": counts[name],
            }
            for name, rs in runs.items()
        }
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        proc.terminate()
        proc.join(5)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and the versions that matter."""
    mem = None
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except ImportError:  # pragma: no cover
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for pkg in ("httpx", "httpcore", "aiohttp", "httpx-aiohttp", "redis", "hiredis", "tenacity", "orderhub"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis", default=os.environ.get("ORDERHUB_REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument(
        "--out", type=Path, default=None, help="result file (default bench/results/<date>-http-client.json)"
    )
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server process is stopped too
    load_before = os.getloadavg()
    results = asyncio.run(run(args.requests, args.concurrency, args.rounds, args.redis))
    load_after = os.getloadavg()
    doc = {
        "benchmark": "http_client",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "concurrency": args.concurrency,
        "server": "aiohttp on 127.0.0.1, separate process, 90-byte JSON answer to a JSON POST",
        "target_requests_per_second": 2000,
        "results": results,
        "machine": machine(),
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "note": (
            "best of the rounds. requests_per_second is wall clock; requests_per_cpu_second divides by the CPU time "
            "the client process used, i.e. the throughput of one fully available core. The machine is shared "
            "(see load_average_1m): under load the wall-clock figures drop, the per-CPU-second ones much less."
        ),
    }
    out = args.out or RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-http-client.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, r in results.items():
        print(
            f"{name:28s} {r['requests_per_second']:>7} req/s wall  {r['requests_per_cpu_second']:>7} req per CPU-second"
        )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
