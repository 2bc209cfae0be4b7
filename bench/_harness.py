"""The hub under test: a fresh database, a Redis prefix, the fake Shopify/ShipBob server,
``orderhub serve --no-worker`` and K ``orderhub worker`` processes, and a sampler of CPU, RSS
and PostgreSQL lock waits. Used as ``async with Harness(...) as h:``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SHOP_SECRET = "bench_shopify_client_secret"
TOKEN = "bench-admin-token-0123456789"
PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shopify_hmac(body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(SHOP_SECRET.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Layout:
    """What the hub is configured with."""

    locations: list[str] = field(default_factory=lambda: ["wh-east", "wh-central", "wh-west"])
    shop_rate: float = 100.0  # Shopify Plus: 1,000 points/s restored, a mutation costs 10
    # the fake 3PL has no limit of its own: the connection's rate_per_second is set well above the
    # targets, so the hub is measured and not a configured rate (a real 3PL's limit bounds its calls)
    threepl_rate: float = 5000.0
    outbound_max_lag: float | None = None  # [queue] outbound_max_lag_seconds; None: the hub's default
    inbox_gather_ms: float | None = None  # [queue] inbox_gather_ms; None: the hub's default


def config_toml(layout: Layout, fake: str) -> str:
    lines: list[str] = []
    coords = [(40.71, -74.0, "10001"), (41.88, -87.63, "60601"), (34.05, -118.24, "90001")]
    for i, loc in enumerate(layout.locations):
        lat, lon, zipc = coords[i % len(coords)]
        lines += [
            "[[locations]]",
            f'id = "{loc}"',
            f'name = "Bench {loc}"',
            'kind = "3pl"',
            'country = "US"',
            f'postal_code = "{zipc}"',
            f"latitude = {lat}",
            f"longitude = {lon}",
            f"priority = {10 * (i + 1)}",
            'fulfilled_by = "threepl"',
            "",
        ]
    lines += [
        "[[connections]]",
        'id = "shop"',
        'connector = "shopify"',
        f"rate_per_second = {layout.shop_rate}",
        "[connections.settings]",
        'shop_domain = "bench.myshopify.com"',
        'access_token = "shpat_bench"',
        f'client_secret = "{SHOP_SECRET}"',
        f'base_url = "{fake}/shopify"',
        "[connections.settings.location_map]",
        f'{layout.locations[0]} = "655441491"',
        "",
        "[[connections]]",
        'id = "threepl"',
        'connector = "shipbob"',
        f"rate_per_second = {layout.threepl_rate}",
        "max_concurrency = 16",
        "[connections.settings]",
        'access_token = "bench-shipbob-token"',
        'webhook_secret = "whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaA=="',
        "channel_id = 1",
        f'base_url = "{fake}/shipbob"',
        "",
        "[allocation]",
        'strategy = "priority"',
        'split_policy = "allow"',
        "fraud_max_value = 1000000",
        "fraud_velocity_per_email_per_day = 1000000",
        "",
        "[queue]",
        "max_depth = 1000000",
        *([f"outbound_max_lag_seconds = {layout.outbound_max_lag}"] if layout.outbound_max_lag is not None else []),
        *([f"inbox_gather_ms = {layout.inbox_gather_ms}"] if layout.inbox_gather_ms is not None else []),
        "",
        "[[api_tokens]]",
        'name = "bench"',
        'scopes = ["read", "ops", "admin"]',
        f'token = "{TOKEN}"',
        "",
    ]
    return "\n".join(lines)


class Sampler:
    """CPU and RSS of each process (and of PostgreSQL and Redis), PostgreSQL lock waits."""

    def __init__(
        self, procs: dict[str, psutil.Process], pg_url: str | None, dbname: str = "", interval: float = 0.5
    ) -> None:
        self.procs = procs
        self.dbname = dbname
        self.pg_url = pg_url
        self.interval = interval
        self.peak_rss: dict[str, int] = {}
        self.cpu_last: dict[int, tuple[str, float]] = {}
        self.cpu_base: dict[int, float] = {}
        self.lock_samples = 0
        self.lock_waiters_sum = 0
        self.lock_waiters_max = 0
        self._task: asyncio.Task[None] | None = None
        self._servers: dict[str, list[psutil.Process]] = {}
        self._servers_at = -1e9
        self._t0 = 0.0
        self._t1 = 0.0

    def _groups(self) -> dict[str, list[psutil.Process]]:
        out: dict[str, list[psutil.Process]] = {}
        for k, p in self.procs.items():  # a process and its children (orderhub failures replay --processes N)
            try:
                out[k] = [p, *p.children(recursive=True)]
            except psutil.Error:
                out[k] = [p]
        now = time.monotonic()
        if now - self._servers_at > 5.0:  # a scan of every process is costly: every 5 s
            self._servers_at = now
            self._servers = self._scan_servers()
        out.update(self._servers)
        return out

    def _scan_servers(self) -> dict[str, list[psutil.Process]]:
        pg: list[psutil.Process] = []
        rd: list[psutil.Process] = []
        redis_port = REDIS_URL.rsplit(":", 1)[-1].split("/")[0]
        for p in psutil.process_iter(["name"]):
            name = p.info.get("name") or ""
            if not name.startswith(("postgres", "redis-server")):
                continue
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.cmdline())
                if name.startswith("postgres"):
                    # our database's backends and the shared server processes (not other databases' backends)
                    if self.dbname in cmd or not ("(" in cmd or "[local]" in cmd):
                        pg.append(p)
                elif redis_port in cmd:
                    rd.append(p)
        return {"postgresql": pg, "redis": rd}

    def _cpu(self) -> dict[int, tuple[str, float]]:
        """CPU seconds used so far, per pid, with the pid's group."""
        out: dict[int, tuple[str, float]] = {}
        for k, ps in self._groups().items():
            for p in ps:
                with contextlib.suppress(psutil.Error):
                    ct = p.cpu_times()
                    out[p.pid] = (k, ct.user + ct.system)
        return out

    def _tick_cpu(self) -> None:
        for pid, (k, v) in self._cpu().items():
            self.cpu_last[pid] = (k, v)

    def mark(self) -> None:
        """Start of the measured window (CPU is reported for the window)."""
        self.cpu_last = {}
        self._servers_at = -1e9
        self._tick_cpu()
        self.cpu_base = {pid: v for pid, (_k, v) in self.cpu_last.items()}
        self._t0 = time.monotonic()

    def close_window(self) -> dict[str, float]:
        """CPU use per process group since :meth:`mark`, in cores (1.0 = one core busy all along);
        processes that ended in the window count with their last sample."""
        self._servers_at = -1e9
        self._tick_cpu()
        dt = max(time.monotonic() - self._t0, 1e-6)
        out: dict[str, float] = {}
        for pid, (k, v) in self.cpu_last.items():
            out[k] = out.get(k, 0.0) + (v - self.cpu_base.get(pid, 0.0))
        return {k: round(v / dt, 4) for k, v in sorted(out.items())}

    async def _run(self) -> None:
        conn = None
        if self.pg_url:
            import asyncpg

            conn = await asyncpg.connect(self.pg_url)
        try:
            while True:
                for k, p in self.procs.items():
                    with contextlib.suppress(psutil.Error):
                        rss = p.memory_info().rss
                        self.peak_rss[k] = max(self.peak_rss.get(k, 0), rss)
                self._tick_cpu()
                if conn is not None:
                    n = int(await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))
                    self.lock_samples += 1
                    self.lock_waiters_sum += n
                    self.lock_waiters_max = max(self.lock_waiters_max, n)
                await asyncio.sleep(self.interval)
        finally:
            if conn is not None:
                await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def locks(self) -> dict[str, Any]:
        return {
            "samples": self.lock_samples,
            "interval_s": self.interval,
            "waiting_locks_mean": round(self.lock_waiters_sum / self.lock_samples, 2) if self.lock_samples else 0,
            "waiting_locks_max": self.lock_waiters_max,
        }


class Harness:
    """Starts and stops everything a scenario needs; offers queries on the hub's database."""

    def __init__(
        self,
        *,
        workers: int = 1,
        db: str = "postgres",
        concurrency: int = 8,
        nice: int = 0,
        layout: Layout | None = None,
    ) -> None:
        self.workers = workers
        self.nice = nice
        self.db = db
        self.worker_concurrency = concurrency
        self.layout = layout or Layout()
        self.tmp = Path(tempfile.mkdtemp(prefix="orderhub-bench-"))
        self.prefix = f"bench{uuid.uuid4().hex[:10]}"
        self.dbname = f"orderhub_bench_{int(time.time())}_{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.fake_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.fake = f"http://127.0.0.1:{self.fake_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sampler: Sampler | None = None
        self.engine: Any = None
        self.session: aiohttp.ClientSession | None = None
        self._created = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def database_url(self) -> str:
        if self.db == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / 'bench.db'}"
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.dbname}"

    @property
    def pg_url(self) -> str | None:
        return None if self.db == "sqlite" else f"postgresql://postgres@127.0.0.1:5432/{self.dbname}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            ORDERHUB_DATABASE_URL=self.database_url,
            ORDERHUB_REDIS_URL=REDIS_URL,
            ORDERHUB_REDIS_PREFIX=self.prefix,
            ORDERHUB_CONFIG=str(self.tmp / "orderhub.toml"),
            ORDERHUB_LOG_LEVEL="WARNING",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
        )
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)

    async def _wait_http(self, url: str, what: str, limit_s: float = 60.0) -> None:
        end = time.monotonic() + limit_s
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < end:
                for name, p in self.procs.items():
                    if p.poll() is not None:
                        raise RuntimeError(f"{name} exited ({p.returncode}): see {self.tmp / (name + '.log')}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with s.get(url) as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{what} did not become ready at {url} within {limit_s:.0f} s (logs in {self.tmp})")

    async def __aenter__(self) -> Harness:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def _start(self) -> Harness:
        if self.db == "postgres":
            import asyncpg

            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'CREATE DATABASE "{self.dbname}"')
                self._created = True
            finally:
                await admin.close()
        (self.tmp / "orderhub.toml").write_text(config_toml(self.layout, self.fake))
        self._spawn("fake", [PY, "-m", "bench._fake", "--port", str(self.fake_port)])
        await self._wait_http(f"{self.fake}/_stats", "the fake Shopify/ShipBob server")
        self._spawn("api", [PY, "-m", "hub", "serve", "--no-worker", "--port", str(self.port)])
        await self._wait_http(f"{self.base}/readyz", "orderhub serve")
        for i in range(self.workers):
            args = [PY, "-m", "hub", "worker", "--concurrency", str(self.worker_concurrency), "--nice", str(self.nice)]
            self._spawn(f"worker{i + 1}", args)
        from hub.store.engine import make_engine

        self.engine = make_engine(self.database_url, pool_size=2)
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
        await asyncio.sleep(1.0)  # workers: imports, Hub.open, arq start
        self.sampler = Sampler({k: psutil.Process(p.pid) for k, p in self.procs.items()}, self.pg_url, self.dbname)
        self.sampler.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.sampler:
            await self.sampler.stop()
        if self.session:
            await self.session.close()
        if self.engine is not None:
            await self.engine.dispose()
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        await self._cleanup_redis()
        if self.db == "postgres" and self._created and not os.environ.get("BENCH_KEEP_DB"):
            import asyncpg

            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            finally:
                await admin.close()
        if exc[0] is None:  # kept after a failure: the processes' logs are there
            shutil.rmtree(self.tmp, ignore_errors=True)

    async def _cleanup_redis(self) -> None:
        import redis.asyncio as aioredis

        r = aioredis.from_url(REDIS_URL)  # type: ignore[no-untyped-call]
        try:
            # the hub's keys, and arq's jobs and results of this run's queue (their ids carry the
            # prefix; a nudge queued after the workers stopped would otherwise wait a day to expire)
            keys = [
                k
                for pattern in (f"{self.prefix}*", f"arq:*:{self.prefix}*")
                async for k in r.scan_iter(match=pattern, count=1000)
            ]
            for i in range(0, len(keys), 500):
                await r.delete(*keys[i : i + 500])
        finally:
            await r.aclose()

    # ------------------------------------------------------------------ helpers
    async def sql(self, query: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            return list((await conn.execute(text(query), params)).all())

    async def scalar(self, query: str, **params: Any) -> Any:
        rows = await self.sql(query, **params)
        return rows[0][0] if rows else None

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        assert self.session is not None
        data = orjson.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        async with self.session.request(method, self.base + path, data=data, headers=hdrs) as r:
            text = await r.read()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path} answered {r.status}: {text[:300]!r}")
            return orjson.loads(text) if text else None

    async def fake_stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.fake}/_stats") as r:
            out: dict[str, Any] = await r.json()
            return out

    async def fake_mode(self, shipbob: str) -> None:
        async with aiohttp.ClientSession() as s, s.post(f"{self.fake}/_mode", json={"shipbob": shipbob}) as r:
            r.raise_for_status()

    async def wait_for(self, query: str, target: int, limit_s: float) -> float:
        """Poll ``query`` (a count) until it reaches ``target``; the epoch time it did."""
        return await self._poll(query, lambda n: max(0, target - n), limit_s, f"of {target}")

    async def wait_until_zero(self, query: str, limit_s: float) -> float:
        """Poll ``query`` (a count of what is left) until it is 0; the epoch time it was."""
        return await self._poll(query, lambda n: n, limit_s, "left")

    async def _poll(self, query: str, left: Callable[[int], int], limit_s: float, what: str) -> float:
        """Poll the count ``query`` until ``left(count)`` is 0: every 0.1 s near the end, every 0.5 s
        while much is left (a count of a large table is not free for PostgreSQL)."""
        end = time.monotonic() + limit_s
        while True:
            n = int(await self.scalar(query) or 0)
            remaining = left(n)
            if remaining == 0:
                return time.time()
            if time.monotonic() > end:
                raise TimeoutError(f"waited {limit_s:.0f} s: {n} {what} for {query!r} (logs in {self.tmp})")
            self.check_alive()
            await asyncio.sleep(0.1 if remaining < 1000 else 0.5)

    def check_alive(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited ({p.returncode}): see {self.tmp / (name + '.log')}")

    async def load(
        self,
        requests: list[list[Any]] | None = None,
        *,
        orders: dict[str, Any] | None = None,
        rate: float | None,
        concurrency: int,
    ) -> dict[str, Any]:
        """Run the load generator (a separate process) on ``requests`` or on generated Shopify
        ``orders`` webhooks (see ``bench._load.shopify_orders``) and return what it measured."""
        spec = self.tmp / f"load-{uuid.uuid4().hex[:6]}.json"
        out = spec.with_suffix(".out.json")
        if orders is not None:
            orders = {"secret": SHOP_SECRET, "path": "/webhooks/shop", "max_lines": 1, **orders}
        doc = {"base": self.base, "requests": requests, "orders": orders, "rate": rate, "concurrency": concurrency}
        spec.write_bytes(orjson.dumps(doc))
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "bench._load", str(spec), str(out), stdout=asyncio.subprocess.PIPE
        )
        assert self.sampler is not None and proc.stdout is not None
        self.sampler.procs["load"] = psutil.Process(proc.pid)
        await proc.stdout.readline()  # "go": requests built, sending starts
        self.sampler.mark()
        rc = await proc.wait()
        self.sampler.procs.pop("load", None)
        if rc != 0:
            raise RuntimeError(f"load generator exited {rc}")
        res: dict[str, Any] = orjson.loads(out.read_bytes())
        spec.unlink()
        out.unlink()
        return res

    def pids(self) -> dict[str, int]:
        return {k: p.pid for k, p in self.procs.items()}
