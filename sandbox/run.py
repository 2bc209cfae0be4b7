"""``orderhub sandbox``: the whole hub on embedded defaults against the five simulators, driven by a scenario.

:func:`run_sandbox` does everything in one process:

1. starts Shopify, Amazon, ShipBob, Odoo and EasyPost simulators on free loopback ports, with the scenario's
   timings and faults;
2. writes an ``orderhub.toml`` for them (three locations: two ShipBob fulfilment centers and a store; five
   connections pointing at the simulators; an ops token; partner webhooks to private targets allowed) and opens
   the hub on a fresh SQLite file and a private redis-server, both under ``./.orderhub/``;
3. serves the API on a free loopback port, runs an in-process worker, points the simulators' webhooks at
   ``POST /webhooks/{connection}``, registers a partner endpoint (a local receiver that checks every signature);
4. seeds stock through ``POST /api/v1/inventory/adjustments`` and lets the scenario drive: Shopify orders by
   signed webhook, Amazon orders by polling, ShipBob shipping and delivering by webhook, the store shipping
   with EasyPost labels (EasyPost tracker webhooks deliver them), Odoo invoices and credit notes;
5. waits until everything settled, replays the sync failures the faults left, waits again, and builds the
   :class:`Report` with its invariants (no unit oversold, no duplicate side effect, no partner event lost, every
   inbound webhook accounted for).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import secrets
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from sqlalchemy import and_, func, select, text

from hub.errors import OrderhubError
from sandbox._common import DEFAULT_CATALOG
from sandbox.scenarios import get_scenario
from sandbox.scenarios._base import STORE, THREE_PL, Scenario, SimSetup, Stock
from sandbox.systems import Systems, start_all

__all__ = ["Invariant", "Progress", "Report", "SandboxError", "SandboxInfo", "run_sandbox"]

SHOP, MARKET, TPL, ERP, CARRIER = "shop", "amazon", "shipbob", "odoo", "easypost"
FC_MAP = {THREE_PL[0]: 8, THREE_PL[1]: 9}
LOCATIONS: list[dict[str, Any]] = [
    {
        "id": THREE_PL[0],
        "name": "ShipBob Cicero (IL)",
        "kind": "3pl",
        "country": "US",
        "postal_code": "60804",
        "latitude": 41.845,
        "longitude": -87.754,
        "priority": 10,
        "fulfilled_by": TPL,
    },
    {
        "id": THREE_PL[1],
        "name": "ShipBob Moreno Valley (CA)",
        "kind": "3pl",
        "country": "US",
        "postal_code": "92551",
        "latitude": 33.882,
        "longitude": -117.223,
        "priority": 20,
        "fulfilled_by": TPL,
    },
    {
        "id": STORE,
        "name": "Louisville store (KY)",
        "kind": "store",
        "country": "US",
        "postal_code": "40202",
        "latitude": 38.254,
        "longitude": -85.759,
        "priority": 30,
    },
]
AMAZON_POLL_SECONDS = 2.0
#: The simulators are local: the connections may go faster than the real APIs' limits (Amazon's per-operation
#: quotas still apply, in its connector).
FAST: dict[str, Any] = {"rate_per_second": 200.0, "max_concurrency": 8}


class SandboxError(OrderhubError):
    """The sandbox could not run (a simulator or the hub did not start, an API call was refused)."""

    status = 500
    title = "Sandbox error"


class Progress(Protocol):
    """Where the live display goes: the phase and the current counts, a few times a second."""

    def update(self, phase: str, counts: dict[str, int]) -> None: ...

    def close(self) -> None: ...


@dataclass
class SandboxInfo:
    """What a caller of ``--serve`` needs to look at the running sandbox."""

    api_url: str
    console_url: str
    token: str
    database: str
    config_path: str
    simulators: dict[str, str]


@dataclass
class Invariant:
    """One check of the report: ``ok`` or not, with the figure behind it."""

    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Report:
    """The outcome of a sandbox run (``text()`` for people, ``as_dict()`` for ``--json``)."""

    scenario: str
    orders_requested: int
    seconds: float
    settled: bool
    orders: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    returns: dict[str, Any] = field(default_factory=dict)
    sync: dict[str, Any] = field(default_factory=dict)
    partner: dict[str, int] = field(default_factory=dict)
    kpis: dict[str, Any] = field(default_factory=dict)
    simulators: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    database: str = ""

    @property
    def ok(self) -> bool:
        """True when every invariant holds."""
        return all(i.ok for i in self.invariants)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "scenario": self.scenario,
            "orders_requested": self.orders_requested,
            "seconds": round(self.seconds, 1),
            "settled": self.settled,
            "ok": self.ok,
            "orders": self.orders,
            "statuses": self.statuses,
            "returns": self.returns,
            "sync": self.sync,
            "partner_webhooks": self.partner,
            "kpis": self.kpis,
            "simulators": self.simulators,
            "metrics": self.metrics,
            "invariants": [i.as_dict() for i in self.invariants],
            "notes": self.notes,
            "database": self.database,
        }

    def text(self) -> str:
        """The report as aligned plain text."""
        o, r, s = self.orders, self.returns, self.sync
        out = [
            f"orderhub sandbox: scenario {self.scenario}, {self.orders_requested} orders, "
            f"{self.seconds:.1f} s{'' if self.settled else ' (did NOT settle)'}",
            "",
            "orders",
            f"  placed at channels    {o.get('placed', 0):>6}   (shopify {o.get('placed_shopify', 0)}, "
            f"amazon {o.get('placed_amazon', 0)})",
            f"  received by the hub   {o.get('received', 0):>6}",
            f"  allocated             {o.get('allocated', 0):>6}",
            f"  backordered           {o.get('backordered', 0):>6}   (still waiting: {o.get('waiting', 0)})",
            f"  shipped               {o.get('shipped', 0):>6}   ({o.get('shipments', 0)} shipments, "
            f"{o.get('units_shipped', 0)} units)",
            f"  delivered             {o.get('delivered', 0):>6}",
            f"  stock changed by 3PL counts {o.get('units_counted', 0):>+6} units (ShipBob inventory snapshots)",
            "  by status             " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            "",
            "returns and refunds",
            f"  returns               {r.get('returns', 0):>6}   (received {r.get('received', 0)}, "
            f"units restocked {r.get('units_restocked', 0)})",
            f"  refunds of returns    {r.get('refunds', 0):>6}   ({r.get('refunded', '0')} refunded)",
            f"  refunds from channels {r.get('channel_refunds', 0):>6}",
            f"  Odoo credit notes     {r.get('credit_notes', 0):>6}   (invoices {r.get('invoices', 0)})",
            "",
            "sync",
            f"  inbound webhooks      {s.get('inbound', 0):>6}   (delivered twice by the sender {s.get('duplicates', 0)})",
            f"  outbound sync jobs    {s.get('jobs', 0):>6}   (retries {s.get('retries', 0)})",
            f"  sync failures         {s.get('failures', 0):>6}   (replayed and resolved "
            f"{s.get('replayed_resolved', 0)}, still open {s.get('open', 0)})",
        ]
        if s.get("open_by_error"):
            for err, n in s["open_by_error"].items():
                out.append(f"    open: {n} x {err}")
        out.append(
            f"  partner events        {self.partner.get('events', 0):>6}   (received {self.partner.get('received', 0)}, "
            f"bad signatures {self.partner.get('bad_signatures', 0)})"
        )
        if self.kpis:
            out += ["", "KPIs"]
            for k in ("perfect_order_rate", "otif", "exception_rate", "promise_accuracy"):
                if k in self.kpis:
                    out.append(f"  {k:<22}{_fmt(self.kpis[k]):>7}")
            cyc = self.kpis.get("order_cycle_time")
            if isinstance(cyc, dict) and cyc.get("p50_seconds") is not None:
                out.append(f"  {'order cycle time p50':<22}{_fmt(cyc.get('p50_seconds')):>7} s")
        if self.metrics:
            out += ["", "scenario"]
            out += [f"  {k:<22}{_fmt(v):>7}" for k, v in self.metrics.items()]
        out += ["", "invariants"]
        out += [f"  [{'ok' if i.ok else 'FAIL'}] {i.name}: {i.detail}" for i in self.invariants]
        if self.notes:
            out += ["", "notes"] + [f"  - {n}" for n in self.notes]
        if self.database:
            out += ["", f"database: {self.database}"]
        out.append("")
        out.append("all invariants hold" if self.ok else "INVARIANTS FAILED")
        return "\n".join(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, Decimal):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, str):
        with contextlib.suppress(Exception):
            d = Decimal(v)
            return f"{d:.3f}" if abs(d) < 10 else f"{d:.1f}"
    return str(v)


# ------------------------------------------------------------------------------------------------- config
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def to_toml(doc: dict[str, Any]) -> str:
    """A small TOML writer for the sandbox config: tables, arrays of tables, inline tables for the rest."""
    lines = ["# written by `orderhub sandbox`: the simulators' URLs change with every run", ""]
    for key, value in doc.items():
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{_toml_key(k)} = {_toml_value(x)}" for k, x in item.items()]
                lines.append("")
        elif isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{_toml_key(k)} = {_toml_value(x)}" for k, x in value.items()]
            lines.append("")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def sandbox_config(systems: Systems, token: str) -> dict[str, Any]:
    """The ``orderhub.toml`` of a sandbox run (as data), pointing every connection at its simulator."""
    shop = systems.shopify.state.settings
    amz = systems.amazon.state.settings
    sb = systems.shipbob.state.settings
    odoo = systems.odoo.state.settings
    ep = systems.easypost.state.settings
    return {
        "locations": LOCATIONS,
        "connections": [
            {
                "id": SHOP,
                **FAST,
                "connector": "shopify",
                "settings": {
                    "base_url": systems.shopify.url,
                    "shop_domain": shop.shop_domain,
                    "access_token": shop.access_token,
                    "client_secret": shop.client_secret,
                    "api_version": shop.api_version,
                    "location_map": {THREE_PL[0]: "655441491"},
                    "notify_customer": False,
                },
            },
            {
                "id": MARKET,
                **FAST,
                "connector": "amazon",
                "settings": {
                    "base_url": systems.amazon.url,
                    "lwa_url": systems.amazon.url + "/auth/o2/token",
                    "client_id": amz.client_id,
                    "client_secret": amz.client_secret,
                    "refresh_token": amz.refresh_token,
                    "marketplace_id": amz.marketplace_id,
                    "seller_id": amz.seller_id,
                    "poll_interval_seconds": 30,
                    "initial_lookback_hours": 1,
                    "max_wait_seconds": 1.0,
                },
            },
            {
                "id": TPL,
                **FAST,
                "connector": "shipbob",
                "settings": {
                    "base_url": systems.shipbob.url + "/2026-07",
                    "access_token": sb.access_token,
                    "webhook_secret": sb.webhook_secret,
                    "channel_id": sb.channel_id,
                    "fulfillment_center_map": FC_MAP,
                },
            },
            {
                "id": ERP,
                **FAST,
                "connector": "odoo",
                "settings": {
                    "url": systems.odoo.url,
                    "database": odoo.database,
                    "username": odoo.username,
                    "api_key": odoo.api_key,
                    "company_currency": "USD",
                    # Amazon's ItemTax is 6 % of the line, rounded per line (6.01 % when recomputed from the
                    # amounts): map its title to the simulated Odoo's 6 % sale tax instead of a lookup by rate
                    "tax_map": {"ItemTax": _odoo_tax_id(systems, 6.0)},
                },
            },
            {
                "id": CARRIER,
                **FAST,
                "connector": "easypost",
                "settings": {
                    "base_url": systems.easypost.url + "/v2",
                    "api_key": ep.api_key,
                    "webhook_secret": ep.webhook_secret,
                },
            },
        ],
        "allocation": {"strategy": "priority", "split_policy": "allow"},
        "returns": {"window_days": 30, "auto_approve_reasons": ["defective", "wrong_item", "damaged", "changed_mind"]},
        "api_tokens": [{"name": "sandbox-ops", "scopes": ["admin"], "token": token}],
        "webhooks": {
            "allow_private_targets": True,
            "retry_schedule": [1, 2, 4, 8],
            "timeout_seconds": 5.0,
            "max_concurrency_per_endpoint": 32,
        },
        "queue": {"max_tries": 6, "lease_seconds": 30},
    }


def _odoo_tax_id(systems: Systems, rate: float) -> int:
    found = systems.odoo.state.find("account.tax", amount=rate, type_tax_use="sale")
    if not found:
        raise SandboxError(f"the Odoo simulator has no {rate:g} % sale tax (OdooSettings.tax_rates)")
    return int(found[0]["id"])


# ------------------------------------------------------------------------------------------ the partner
class PartnerReceiver:
    """A partner's webhook endpoint: checks each Standard Webhooks signature and counts event ids."""

    def __init__(self) -> None:
        self.secret = ""
        self.ids: set[str] = set()
        self.deliveries = 0
        self.bad_signatures = 0
        self.types: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from hub import signing

        async def hook(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                msg_id = signing.verify(self.secret, dict(request.headers), body)
            except Exception:
                self.bad_signatures += 1
                return web.Response(status=401)
            self.deliveries += 1
            if msg_id not in self.ids:
                self.ids.add(msg_id)
                with contextlib.suppress(Exception):
                    self.types[str(json.loads(body).get("type"))] += 1
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/partner", hook)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        port = await _serve(self._runner)
        self.url = f"http://127.0.0.1:{port}/partner"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _bounded(fn: Callable[[], Awaitable[Any]], seconds: float = 20.0) -> None:
    """Run one cleanup step; a step that hangs (e.g. a server waiting for busy handlers) is given up."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fn(), seconds)


async def _serve(runner: web.AppRunner, port: int = 0) -> int:
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server: Any = site._server
    return int(server.sockets[0].getsockname()[1])


# --------------------------------------------------------------------------------------------- the run
class Run:
    """One sandbox run: the simulators, the hub, its API and worker, and what the scenario placed.

    Implements :class:`sandbox.scenarios._base.Driver` for the scenario."""

    def __init__(
        self, scenario: Scenario, orders: int, home: Path, progress: Progress | None, worker_processes: int = 0
    ) -> None:
        self.scenario = scenario
        self.worker_processes = worker_processes
        self.stock: Stock = scenario.stock(orders)
        self.orders = orders
        self.home = home
        self.progress_display = progress
        self.phase = "starting"
        self.token = "sbx_" + secrets.token_urlsafe(24)
        self.placed: Counter[str] = Counter()
        self.seeded: Counter[tuple[str, str]] = Counter()
        self.notes: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.partner = PartnerReceiver()
        self.store_shipped: set[str] = set()
        self.store_errors: Counter[str] = Counter()
        self.api_url = ""
        self.started = time.monotonic()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{secrets.token_hex(2)}"
        self.db_path = (home / f"sandbox-{stamp}.db").resolve()
        self.config_path = (home / f"sandbox-{stamp}.toml").resolve()
        self.log_path = (home / f"sandbox-{stamp}.log").resolve()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._stack = contextlib.AsyncExitStack()
        self.systems: Systems
        self.hub: Any = None
        self._log_file: Any = None
        self._saved_handlers: list[logging.Handler] = []
        self._saved_level = logging.INFO
        self._amazon_poll_lock = asyncio.Lock()
        self._last_counts: dict[str, int] = {}
        self.busy = ""

    # ---------------------------------------------------------------------------------------- start
    async def start(self) -> None:
        """Everything up: simulators, config, hub, API, worker, partner endpoint, webhook targets."""
        from hub.api import make_app
        from hub.config import Settings
        from hub.runtime import Hub
        from hub.sync.queue import ArqQueue
        from hub.sync.worker import make_worker

        self.home.mkdir(parents=True, exist_ok=True)
        setup = self.scenario.setup(self.orders)
        self.systems = await _start_systems(setup, self.stock)
        self._stack.push_async_callback(_bounded, self.systems.stop)
        self.config_path.write_text(to_toml(sandbox_config(self.systems, self.token)), encoding="utf-8")
        root = logging.getLogger()
        self._saved_handlers, self._saved_level = list(root.handlers), root.level
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{self.db_path}",
            redis_url="",
            config=self.config_path,
            redis_prefix="sandbox",
            log_level="WARNING",
            plugins="",
        )
        self._log_file = self.log_path.open("a", encoding="utf-8")
        self._quiet_logs()
        self.hub = hub = await Hub.open(settings)
        self._stack.push_async_callback(_bounded, hub.close)
        hub.state["queue"] = await ArqQueue.connect(hub.state["redis_url"], settings.redis_prefix)
        self._stack.push_async_callback(hub.state["queue"].close)
        runner = web.AppRunner(make_app(hub), access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await runner.setup()
        self._stack.push_async_callback(_bounded, runner.cleanup)
        port = await _serve(runner)
        self.api_url = f"http://127.0.0.1:{port}"
        worker_settings = settings.model_copy(update={"redis_url": hub.state["redis_url"]})
        worker = make_worker(worker_settings, hub.state["redis_url"], concurrency=4, handle_signals=False)
        wtask = asyncio.create_task(worker.async_run())

        async def stop_worker() -> None:
            # stop taking jobs, let the running ones finish, then close (arq's close() cancels what still
            # runs and gathers it, which raises CancelledError; it also uses redis' deprecated close())
            wtask.cancel()
            with contextlib.suppress(BaseException):
                await wtask
            running = [t for t in worker.tasks.values() if not t.done()]
            if running:
                await asyncio.wait(running, timeout=10)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    await worker.close()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise

        self._stack.push_async_callback(_bounded, stop_worker)
        for _ in range(self.worker_processes):
            await self._start_worker_process(settings, hub.state["redis_url"])
        for _ in range(500):  # the worker's startup reconfigures logging; quiet it again once it ran
            if "hub" in worker.ctx:
                break
            await asyncio.sleep(0.01)
        self._quiet_logs()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self._stack.push_async_callback(self._session.close)
        await self.partner.start()
        self._stack.push_async_callback(self.partner.stop)
        ep = await self.api("POST", "/api/v1/webhook-endpoints", {"url": self.partner.url, "events": ["*"]})
        self.partner.secret = ep["secret"]
        self.systems.set_webhook_target("shopify", f"{self.api_url}/webhooks/{SHOP}")
        self.systems.set_webhook_target("shipbob", f"{self.api_url}/webhooks/{TPL}")
        self.systems.set_webhook_target("easypost", f"{self.api_url}/webhooks/{CARRIER}")
        self._tasks = [
            asyncio.create_task(self._loop(self._ship_store_fulfillments, 0.5)),
            asyncio.create_task(self._loop(self.poll_amazon, AMAZON_POLL_SECONDS)),
            asyncio.create_task(self._loop(self._refresh_progress, 1.0)),
        ]

    async def _start_worker_process(self, settings: Any, redis_url: str) -> None:
        """An ``orderhub worker`` process beside the in-process one, on the same database and Redis: the
        hub, the simulators and the driver share this process's event loop, a second core helps."""
        import os
        import signal
        import sys

        env = {
            **os.environ,
            "ORDERHUB_DATABASE_URL": settings.database_url,
            "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_CONFIG": str(self.config_path),
            "ORDERHUB_REDIS_PREFIX": settings.redis_prefix,
            "ORDERHUB_LOG_LEVEL": "INFO",
            "ORDERHUB_PLUGINS": "",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub",
            "worker",
            "--concurrency",
            "8",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )

        async def stop() -> None:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

        self._stack.push_async_callback(stop)

    def _quiet_logs(self) -> None:
        from hub.logging import configure

        configure("INFO", stream=self._log_file)

    async def close(self) -> None:
        """Stop everything that :meth:`start` started, in reverse order."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        try:
            await self._stack.aclose()
        finally:
            root = logging.getLogger()
            root.handlers[:] = self._saved_handlers
            root.setLevel(self._saved_level)
            if self._log_file is not None:
                self._log_file.close()
            if self.progress_display is not None:
                self.progress_display.close()

    async def _loop(self, fn: Callable[[], Awaitable[Any]], every: float) -> None:
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a background helper must not stop the run; the report shows the effect
                logging.getLogger("sandbox").warning("sandbox helper failed: %s", exc)
            await asyncio.sleep(every)

    # ------------------------------------------------------------------------------------ the driver API
    def place_shopify(self, lines: list[tuple[str, int]] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Place a Shopify order; its signed ``orders/create`` webhook goes to the hub."""
        self.placed["shopify"] += 1
        return self.systems.shopify.state.place_order(lines, **kwargs)

    def place_amazon(self, lines: list[tuple[str, int]] | None = None) -> dict[str, Any]:
        """Create an Amazon order; the hub picks it up on its next poll."""
        self.placed["amazon"] += 1
        return self.systems.amazon.state.new_order(lines)

    async def pace(self, count: int, per_second: float, place: Callable[[int], object], phase: str) -> None:
        """Call ``place(i)`` ``count`` times at about ``per_second`` (in small bursts)."""
        self.phase = phase
        start = time.monotonic()
        for i in range(count):
            place(i)
            due = start + (i + 1) / per_second
            delay = due - time.monotonic()
            if delay > 0.005:
                await asyncio.sleep(delay)
            elif i % 25 == 24:
                await asyncio.sleep(0)

    async def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Any:
        """Call the hub's API with the sandbox's ops token."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._session.request(method, self.api_url + path, json=body, headers=headers) as resp:
            raw = await resp.read()
            if resp.status not in ok:
                raise SandboxError(f"{method} {path} answered {resp.status}: {raw[:300].decode('utf-8', 'replace')}")
            return json.loads(raw) if raw else None

    def note(self, text_: str) -> None:
        """Add a line to the report's notes."""
        self.notes.append(text_)

    def metric(self, name: str, value: Any) -> None:
        """Add a scenario figure to the report."""
        self.metrics[name] = value

    async def depth(self) -> dict[str, int]:
        """Hub queue depths (inbox, sync jobs, partner deliveries pending or running)."""
        from hub.sync.stats import depth

        d = await depth(self.hub)
        return {"inbox": d.inbox, "jobs": d.jobs, "deliveries": d.deliveries}

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the hub's database."""
        async with self.hub.store.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def wait_for(self, phase: str, check: Callable[[], Awaitable[bool]], max_wait: float = 60.0) -> bool:
        """Wait until ``check()`` is true (False after ``max_wait`` seconds)."""
        self.phase = phase
        deadline = time.monotonic() + max_wait
        while time.monotonic() < deadline:
            if await check():
                return True
            await asyncio.sleep(0.2)
        return False

    async def settle(self, phase: str = "settling", max_wait: float | None = None) -> bool:
        """Wait until the simulators are idle, the hub's queues are empty and the store shipped everything
        (at most ``max_wait`` seconds; default: the run's budget, which grows with the number of orders)."""
        self.phase = phase
        deadline = time.monotonic() + (_settle_budget(self.orders) if max_wait is None else max_wait)
        quiet = 0
        while time.monotonic() < deadline:
            idle = await self.systems.settle(max_wait=0.05)
            d = await self.depth()
            waiting = await self._store_waiting()
            undispatched = await self.scalar("SELECT count(*) FROM outbox_pending")
            amazon_new = await self._amazon_unseen()
            busy = {
                **{k: v for k, v in d.items() if v},
                **({"simulators": 1} if not idle else {}),
                **({"store fulfilments": waiting} if waiting else {}),
                **({"outbox": undispatched} if undispatched else {}),
                **({"amazon orders not polled yet": amazon_new} if amazon_new else {}),
            }
            self.busy = ", ".join(f"{k} {v}" for k, v in busy.items())
            self.phase = f"{phase}: {self.busy}" if self.busy else phase
            if not busy:
                quiet += 1
                if quiet >= 3:
                    return True
            else:
                quiet = 0
                if amazon_new:
                    await self.poll_amazon()
            await asyncio.sleep(0.4)
        return False

    # ------------------------------------------------------------------------------------- helpers
    async def poll_amazon(self) -> None:
        """Poll the Amazon connection now (the worker's own poll runs every 30 s at most)."""
        from hub.sync.polling import poll_once

        if self.placed["amazon"] == 0:
            return
        async with self._amazon_poll_lock:
            with contextlib.suppress(OrderhubError):
                await poll_once(self.hub, MARKET)

    async def _amazon_unseen(self) -> int:
        if self.placed["amazon"] == 0:
            return 0
        n = await self.scalar("SELECT count(*) FROM orders WHERE connection = :c", c=MARKET)
        return max(0, self.placed["amazon"] - int(n or 0))

    async def _store_waiting(self) -> int:
        from hub.store import tables as t

        async with self.hub.store.connect() as conn:
            n = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.fulfillments)
                    .where(and_(t.fulfillments.c.location == STORE, t.fulfillments.c.status == "accepted"))
                )
            ).scalar_one()
        return int(n)

    async def _ship_store_fulfillments(self) -> None:
        """The store's clerk: buys an EasyPost label for each open store fulfilment and scans it out.

        The shipment goes into the hub as the store's ShipmentConfirmed; the EasyPost tracker's webhooks then
        move it to delivered."""
        from hub.model import Address, FulfillmentRequest, Shipment, ShipmentLine, new_id
        from hub.orders.service import apply_messages
        from hub.plugins import Parcel, ShipmentConfirmed
        from hub.store import orders as repo
        from hub.store import tables as t

        f = t.fulfillments
        async with self.hub.store.connect() as conn:
            rows = (
                await conn.execute(
                    select(f.c.id, f.c.order_id, f.c.data)
                    .where(and_(f.c.location == STORE, f.c.status == "accepted"))
                    .order_by(f.c.created_at)
                    .limit(50)
                )
            ).all()
        if not rows:
            return
        carrier = self.hub.connector(CARRIER)
        store = next(loc for loc in self.hub.config.locations if loc.id == STORE)
        origin = Address(
            name=store.name, line1="1 Main St", city="Louisville", region="KY", postal_code="40202", country="US"
        )
        for row in rows:
            if row.id in self.store_shipped:
                continue
            req = FulfillmentRequest.model_validate(row.data)
            async with self.hub.store.connect() as conn:
                order = await repo.get_order(conn, row.order_id)
            try:
                label = await carrier.buy_label(
                    origin, order.shipping_address or origin, Parcel(weight_grams=500), reference=req.id
                )
            except OrderhubError as exc:
                self.store_errors[type(exc).__name__] += 1
                continue
            self.store_shipped.add(row.id)
            shipment = Shipment(
                id=new_id("shp"),
                fulfillment_id=req.id,
                location=STORE,
                carrier=label.carrier,
                service=label.service,
                tracking_number=label.tracking_number,
                label_url=label.label_url,
                cost=label.cost,
                lines=[ShipmentLine(sku=ln.sku, quantity=ln.quantity, line_no=ln.line_no) for ln in req.lines],
                shipped_at=datetime.now(UTC),
            )
            msg = ShipmentConfirmed(shipment=shipment, fulfillment_id=req.id)
            async with self.hub.store.begin() as conn:
                await apply_messages(self.hub, conn, CARRIER, [msg], source=f"sandbox-store:{req.id}")

    async def counts(self) -> dict[str, int]:
        """Live counts for the progress display."""
        from hub.store import tables as t

        async with self.hub.store.connect() as conn:
            rows = (await conn.execute(select(t.orders.c.status, func.count()).group_by(t.orders.c.status))).all()
        by = {str(r[0]): int(r[1]) for r in rows}
        d = await self.depth()
        shipped = sum(by.get(s, 0) for s in ("shipped", "partially_shipped", "delivered"))
        return {
            "placed": sum(self.placed.values()),
            "received": sum(by.values()),
            "backordered": by.get("backordered", 0) + by.get("partially_allocated", 0),
            "shipped": shipped,
            "delivered": by.get("delivered", 0),
            "queued": d["inbox"] + d["jobs"],
        }

    async def _refresh_progress(self) -> None:
        if self.progress_display is None:
            return
        self._last_counts = await self.counts()
        self._last_counts["seconds"] = int(time.monotonic() - self.started)
        self.progress_display.update(self.phase, self._last_counts)

    # ------------------------------------------------------------------------------------ seeding
    async def seed(self, stock: Stock) -> None:
        """Starting stock through ``POST /api/v1/inventory/adjustments`` (a receipt per SKU and location)."""
        self.phase = "seeding stock"
        adjustments: list[dict[str, Any]] = [
            {"sku": sku, "location": loc, "delta": qty, "reason": "receipt: sandbox starting stock"}
            for sku, per_loc in stock.items()
            for loc, qty in per_loc.items()
            if qty > 0
        ]
        for i in range(0, len(adjustments), 50):
            await self.api("POST", "/api/v1/inventory/adjustments", {"adjustments": adjustments[i : i + 50]})
        for a in adjustments:
            self.seeded[(str(a["sku"]), str(a["location"]))] += int(a["delta"])

    async def replay_failures(self) -> dict[str, int]:
        """Replay every open sync failure once (the faults are over); counts by result."""
        from hub.sync.failures import FailureFilter, replay_matching

        self.phase = "replaying failures"
        results = await replay_matching(self.hub, FailureFilter(status="open"), actor="sandbox")
        return dict(Counter(r.result for r in results))


async def _start_systems(setup: SimSetup, stock: Stock) -> Systems:
    from sandbox.amazon.app import AmazonSettings
    from sandbox.easypost.app import EasyPostSettings
    from sandbox.odoo.app import OdooSettings
    from sandbox.shipbob.app import ShipBobSettings
    from sandbox.shopify.app import ShopifySettings

    # ShipBob holds what the hub seeds at the location its fulfillment center 8 is (the worker's inventory
    # snapshot then confirms the hub's numbers instead of replacing them with the catalog's default 100)
    fc_location = next(loc for loc, fc in FC_MAP.items() if fc == ShipBobSettings().fulfillment_center[0])
    catalog = tuple(dataclasses.replace(p, stock=stock.get(p.sku, {}).get(fc_location, 0)) for p in DEFAULT_CATALOG)
    systems = await start_all(
        shopify=ShopifySettings(**setup.shopify),
        amazon=AmazonSettings(**setup.amazon),
        shipbob=ShipBobSettings(**{"catalog": catalog, **setup.shipbob}),
        odoo=OdooSettings(**setup.odoo),
        easypost=EasyPostSettings(**{"step_seconds": 0.3, **setup.easypost}),
    )
    for name, knobs in setup.faults.items():
        getattr(systems, name).state.faults.update(knobs)
    for sim in (systems.shopify, systems.shipbob, systems.easypost):
        # like the real senders (Shopify retries 8 times), keep trying while the hub is busy
        sim.state.sender.timeout, sim.state.sender.attempts = 30.0, 8
    return systems


# ---------------------------------------------------------------------------------------------- report
async def build_report(run: Run, settled: bool, replays: dict[str, int]) -> Report:
    """Counts, KPIs and invariants of a finished run (read from the hub's database and the simulators)."""
    from hub.store import tables as t

    hub = run.hub
    rep = Report(
        scenario=run.scenario.name,
        orders_requested=run.orders,
        seconds=time.monotonic() - run.started,
        settled=settled,
        notes=list(run.notes),
        metrics=dict(run.metrics),
        database=str(run.db_path),
    )
    async with hub.store.connect() as conn:

        async def one(q: Any) -> int:
            return int((await conn.execute(q)).scalar_one() or 0)

        rows = (await conn.execute(select(t.orders.c.status, func.count()).group_by(t.orders.c.status))).all()
        rep.statuses = {str(r[0]): int(r[1]) for r in rows}
        tl = t.order_events
        rep.orders = {
            "placed": sum(run.placed.values()),
            "placed_shopify": run.placed["shopify"],
            "placed_amazon": run.placed["amazon"],
            "received": sum(rep.statuses.values()),
            "allocated": await one(select(func.count(func.distinct(t.allocations.c.order_id)))),
            "backordered": await one(
                select(func.count(func.distinct(tl.c.order_id))).where(tl.c.kind == "backordered")
            ),
            "waiting": await one(select(func.count(func.distinct(t.backorders.c.order_id)))),
            "shipped": await one(select(func.count(func.distinct(t.shipments.c.order_id)))),
            "shipments": await one(select(func.count()).select_from(t.shipments)),
            "delivered": rep.statuses.get("delivered", 0),
        }
        ship_rows = (await conn.execute(select(t.shipments.c.data))).all()
        shipped_units: Counter[tuple[str, str]] = Counter()
        for (data,) in ship_rows:
            for ln in data.get("lines") or []:
                shipped_units[(str(ln["sku"]), str(data.get("location")))] += int(ln["quantity"])
        rep.orders["units_shipped"] = sum(shipped_units.values())
        rep.orders["units_counted"] = await one(
            select(func.coalesce(func.sum(t.inventory_ledger.c.delta_on_hand), 0)).where(
                t.inventory_ledger.c.cause == "count"
            )
        )
        # returns and refunds
        ret_rows = (await conn.execute(select(t.returns.c.status, func.count()).group_by(t.returns.c.status))).all()
        ret_by = {str(r[0]): int(r[1]) for r in ret_rows}
        refunds = (
            await conn.execute(
                select(t.refunds.c.amount, t.refunds.c.currency).where(t.refunds.c.return_id.is_not(None))
            )
        ).all()
        channel_refunds = await one(select(func.count()).select_from(t.refunds).where(t.refunds.c.return_id.is_(None)))
        restocked = await one(
            select(func.coalesce(func.sum(t.inventory_ledger.c.delta_on_hand), 0)).where(
                t.inventory_ledger.c.cause == "return"
            )
        )
        total_refunded: dict[str, Decimal] = defaultdict(Decimal)
        for amount, currency in refunds:
            total_refunded[str(currency)] += Decimal(str(amount))
        odoo = run.systems.odoo.state
        rep.returns = {
            "returns": sum(ret_by.values()),
            "by_status": ret_by,
            "received": sum(v for k, v in ret_by.items() if k in ("received", "refunded", "closed")),
            "units_restocked": restocked,
            "refunds": len(refunds),
            "channel_refunds": channel_refunds,
            "refunded": ", ".join(f"{a:.2f} {c}" for c, a in sorted(total_refunded.items())) or "0",
            "credit_notes": len(odoo.find("account.move", move_type="out_refund", state="posted")),
            "invoices": len(odoo.find("account.move", move_type="out_invoice", state="posted")),
        }
        # sync
        f = t.sync_failures
        open_rows = (await conn.execute(select(f.c.operation, f.c.last_error).where(f.c.status == "open"))).all()
        open_by: Counter[str] = Counter()
        for op, err in open_rows:
            open_by[f"{op}: {str(err or '')[:90]}"] += 1
        jobs_total = await one(select(func.count()).select_from(t.sync_jobs))
        retries = await one(
            select(func.coalesce(func.sum(t.sync_jobs.c.attempts - 1), 0)).where(t.sync_jobs.c.attempts > 1)
        )
        inbound_total = await one(select(func.count()).select_from(t.inbox))
        rep.sync = {
            "inbound": inbound_total,
            "duplicates": _webhook_duplicates(run.systems),
            "jobs": jobs_total,
            "retries": retries,
            "failures": await one(select(func.count()).select_from(f)),
            "replayed_resolved": replays.get("resolved", 0),
            "replayed_failed_again": replays.get("failed", 0),
            "open": len(open_rows),
            "open_by_error": dict(open_by.most_common(5)),
        }
        # inventory invariants
        levels = (await conn.execute(select(t.inventory_levels))).all()
        receipts_rows = (
            await conn.execute(
                select(
                    t.inventory_ledger.c.sku,
                    t.inventory_ledger.c.location,
                    func.sum(t.inventory_ledger.c.delta_on_hand),
                )
                .where(t.inventory_ledger.c.cause != "shipment")
                .group_by(t.inventory_ledger.c.sku, t.inventory_ledger.c.location)
            )
        ).all()
        # units received (the seeding included), restocked by returns, adjusted or counted by a 3PL snapshot
        stocked = {(str(s), str(loc)): int(n or 0) for s, loc, n in receipts_rows}
        alloc_rows = (
            await conn.execute(
                select(t.allocations.c.sku, t.allocations.c.location, func.sum(t.allocations.c.quantity))
                .where(t.allocations.c.status.in_(("reserved", "released")))
                .group_by(t.allocations.c.sku, t.allocations.c.location)
            )
        ).all()
        held = {(str(s), str(loc)): int(n or 0) for s, loc, n in alloc_rows}
        events_total = await one(select(func.count()).select_from(t.outbox))
        event_ids = {str(r[0]) for r in (await conn.execute(select(t.outbox.c.id))).all()}
        inbox_by_conn = {
            str(r[0]): int(r[1])
            for r in (await conn.execute(select(t.inbox.c.connection, func.count()).group_by(t.inbox.c.connection)))
        }
    # KPIs through the API, as a user would read them
    with contextlib.suppress(Exception):
        rep.kpis = await run.api("GET", "/api/v1/kpis")
    rep.partner = {
        "events": events_total,
        "received": len(run.partner.ids & event_ids),
        "deliveries": run.partner.deliveries,
        "bad_signatures": run.partner.bad_signatures,
    }
    rep.simulators = _simulator_summary(run.systems)
    rep.invariants = _invariants(run, rep, levels, shipped_units, stocked, held, event_ids, inbox_by_conn)
    if run.store_errors:
        rep.notes.append(
            "store labels not bought on a first try: "
            + ", ".join(f"{k} {v}" for k, v in sorted(run.store_errors.items()))
        )
    return rep


def _webhook_duplicates(systems: Systems) -> int:
    n = 0
    for sim in (systems.shopify, systems.shipbob, systems.easypost):
        n += sum(1 for d in sim.state.recorder.deliveries if d.fault == "duplicate")
    return n


def _simulator_summary(systems: Systems) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, summary in systems.report().items():
        out[name] = {
            "calls": summary["calls"],
            "faults": summary["faults"],
            "webhooks": summary["webhooks"],
            "side_effects": summary["side_effects"],
            "duplicate_side_effects": summary["duplicate_side_effects"],
            "refused_duplicates": summary["refused_duplicates"],
        }
    return out


def _invariants(
    run: Run,
    rep: Report,
    levels: list[Any],
    shipped: Counter[tuple[str, str]],
    stocked: dict[tuple[str, str], int],
    held: dict[tuple[str, str], int],
    event_ids: set[str],
    inbox_by_conn: dict[str, int],
) -> list[Invariant]:
    out = [
        Invariant(
            "settled",
            rep.settled,
            "queues empty and simulators idle"
            if rep.settled
            else f"the run did not settle in time (still busy: {run.busy})",
        )
    ]
    bad: list[str] = []
    seen: set[tuple[str, str]] = set()
    for lvl in levels:
        key = (str(lvl.sku), str(lvl.location))
        seen.add(key)
        expected = stocked.get(key, 0) - shipped[key]
        if not (lvl.on_hand >= lvl.reserved >= 0):
            bad.append(f"{key[0]}@{key[1]} on_hand {lvl.on_hand} < reserved {lvl.reserved}")
        elif lvl.on_hand != expected:
            bad.append(f"{key[0]}@{key[1]} on_hand {lvl.on_hand} != stocked - shipped = {expected}")
        elif lvl.reserved != held.get(key, 0):
            bad.append(f"{key[0]}@{key[1]} reserved {lvl.reserved} != open allocations {held.get(key, 0)}")
    for key in set(run.seeded) - seen:
        bad.append(f"{key[0]}@{key[1]} seeded {run.seeded[key]} but has no stock level")
    out.append(
        Invariant(
            "units oversold = 0",
            not bad,
            f"{len(levels)} (sku, location) levels: on_hand >= reserved >= 0, on_hand = units received, restocked "
            "or counted - units in shipments, reserved = open allocations"
            if not bad
            else "; ".join(bad[:5]),
        )
    )
    dup = run.systems.duplicate_side_effects()
    out.append(
        Invariant(
            "duplicate side effects = 0",
            dup == 0,
            f"{dup} at the simulators ({run.systems.refused_duplicates()} repeats refused by them, harmless)",
        )
    )
    lost = rep.partner["events"] - rep.partner["received"]
    out.append(
        Invariant(
            "events lost = 0",
            lost == 0,
            f"{rep.partner['received']} of {rep.partner['events']} outbox events reached the partner endpoint"
            + (f"; {lost} missing" if lost else ""),
        )
    )
    mismatches = []
    total_sent = 0
    for conn_id, sim in ((SHOP, run.systems.shopify), (TPL, run.systems.shipbob), (CARRIER, run.systems.easypost)):
        sent = {d.msg_id for d in sim.state.recorder.deliveries if d.ok}
        gave_up = {d.msg_id for d in sim.state.recorder.deliveries if not d.ok and d.statuses} - sent
        total_sent += len(sent)
        got = inbox_by_conn.get(conn_id, 0)
        if got != len(sent):
            mismatches.append(f"{conn_id}: {len(sent)} webhook ids delivered, {got} inbox rows")
        if gave_up:
            mismatches.append(f"{conn_id}: {len(gave_up)} webhooks never accepted by the hub (sender gave up)")
    out.append(
        Invariant(
            "every inbound webhook accounted for",
            not mismatches,
            f"{total_sent} distinct webhook ids delivered = inbox rows" if not mismatches else "; ".join(mismatches),
        )
    )
    return out


# ------------------------------------------------------------------------------------------- entry point
async def run_sandbox(
    orders: int | None = None,
    scenario: str = "steady",
    *,
    home: Path | str | None = None,
    progress: Progress | None = None,
    hold: Callable[[SandboxInfo, Report], Awaitable[None]] | None = None,
    worker_processes: int | None = None,
) -> Report:
    """Run ``scenario`` with ``orders`` orders (default: the scenario's) and return its report.

    ``home`` is where the SQLite database, the generated ``orderhub.toml`` and the log go (default
    ``./.orderhub``). ``hold``, when given, is awaited after the report was built, with everything still
    running (``--serve``)."""
    sc = get_scenario(scenario)
    n = sc.default_orders if orders is None else orders
    if n < 1:
        raise SandboxError(f"--orders must be at least 1, got {n}")
    if worker_processes is None:
        worker_processes = 1 if n > 100 else 0
    run = Run(sc, n, Path(home) if home is not None else Path(".orderhub"), progress, worker_processes)
    try:
        await run.start()
        await run.seed(run.stock)
        await sc.drive(run, n)
        settled = await run.settle("settling", max_wait=_settle_budget(n))
        replays: dict[str, int] = {}
        if int(await run.scalar("SELECT count(*) FROM sync_failures WHERE status = 'open'") or 0):
            replays = await run.replay_failures()
            settled = await run.settle("settling after replays", max_wait=_settle_budget(n)) and settled
        run.phase = "report"
        report = await build_report(run, settled, replays)
        if hold is not None:
            if run.progress_display is not None:
                run.progress_display.close()
                run.progress_display = None
            await hold(
                SandboxInfo(
                    api_url=run.api_url,
                    console_url=f"{run.api_url}/console/",
                    token=run.token,
                    database=str(run.db_path),
                    config_path=str(run.config_path),
                    simulators=run.systems.urls(),
                ),
                report,
            )
        return report
    finally:
        await run.close()


def _settle_budget(n: int) -> float:
    """How long one wait for the system to settle may take: generous, since it ends as soon as it settled."""
    return 120.0 + n * 0.6
