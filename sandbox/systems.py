"""Start all five simulators on free loopback ports, for the ``orderhub sandbox`` command and tests.

systems = await start_all()
systems.shopify.url          # "http://127.0.0.1:41234"
systems.shopify.state        # the ShopifyStore: place_order(), recorder, faults, sender
systems.set_webhook_target("shopify", "http://127.0.0.1:8080/webhooks/shop-main")
...
systems.duplicate_side_effects()   # 0 is the goal
await systems.stop()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

from sandbox._common import SimState
from sandbox.amazon.app import STATE as AMAZON
from sandbox.amazon.app import AmazonSettings, AmazonState
from sandbox.amazon.app import make_app as amazon_app
from sandbox.easypost.app import STATE as EASYPOST
from sandbox.easypost.app import EasyPostSettings, EasyPostState
from sandbox.easypost.app import make_app as easypost_app
from sandbox.odoo.app import STATE as ODOO
from sandbox.odoo.app import OdooSettings, OdooState
from sandbox.odoo.app import make_app as odoo_app
from sandbox.shipbob.app import STATE as SHIPBOB
from sandbox.shipbob.app import ShipBobSettings, ShipBobState
from sandbox.shipbob.app import make_app as shipbob_app
from sandbox.shopify.app import STATE as SHOPIFY
from sandbox.shopify.app import ShopifySettings, ShopifyStore
from sandbox.shopify.app import make_app as shopify_app

__all__ = ["Running", "Systems", "start", "start_all"]

S = TypeVar("S", bound=SimState)


@dataclass
class Running(Generic[S]):
    """One simulator serving on ``url`` (no trailing slash)."""

    name: str
    url: str
    state: S
    runner: web.AppRunner

    async def stop(self) -> None:
        """Stop serving and clean up (webhook workers, timers)."""
        await self.runner.cleanup()


async def start(app: web.Application, state: S, name: str, host: str = "127.0.0.1", port: int = 0) -> Running[S]:
    """Serve one simulator app on ``host`` (port 0 = a free one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return Running(name, f"http://{host}:{bound}", state, runner)


@dataclass
class Systems:
    """All five simulators, running."""

    shopify: Running[ShopifyStore]
    amazon: Running[AmazonState]
    shipbob: Running[ShipBobState]
    odoo: Running[OdooState]
    easypost: Running[EasyPostState]

    def all(self) -> list[Running[Any]]:
        """The five, in a fixed order."""
        return [self.shopify, self.amazon, self.shipbob, self.odoo, self.easypost]

    def urls(self) -> dict[str, str]:
        """Base URL by simulator name."""
        return {r.name: r.url for r in self.all()}

    def set_webhook_target(self, name: str, url: str | None) -> None:
        """Where ``name`` (shopify, shipbob, easypost) sends its webhooks."""
        getattr(self, name).state.sender.set_target(url)

    def duplicate_side_effects(self) -> int:
        """Duplicate side effects counted at all simulators (the sandbox report wants 0)."""
        return sum(r.state.duplicate_side_effects for r in self.all())

    def refused_duplicates(self) -> int:
        """Repeats the simulators refused (ShipBob 422, Shopify userErrors, EasyPost 422): harmless but worth a look."""
        return sum(r.state.refused_duplicates for r in self.all())

    def report(self) -> dict[str, Any]:
        """Per-simulator summary of calls, faults, webhooks and duplicates."""
        return {r.name: r.state.recorder.summary() for r in self.all()}

    async def settle(self, max_wait: float = 10.0) -> bool:
        """Wait for pending simulated work (ShipBob shipping, EasyPost tracking) and webhook deliveries."""
        ok = await self.shipbob.state.settle(max_wait)
        ok = await self.easypost.state.settle(max_wait) and ok
        for r in (self.shopify, self.amazon, self.odoo):
            ok = await r.state.drain(max_wait) and ok
        return ok

    async def stop(self) -> None:
        """Stop all five."""
        for r in self.all():
            await r.stop()


async def start_all(
    host: str = "127.0.0.1",
    *,
    shopify: ShopifySettings | None = None,
    amazon: AmazonSettings | None = None,
    shipbob: ShipBobSettings | None = None,
    odoo: OdooSettings | None = None,
    easypost: EasyPostSettings | None = None,
) -> Systems:
    """Start Shopify, Amazon, ShipBob, Odoo and EasyPost on free ports of ``host``."""
    started: list[Running[Any]] = []
    try:
        app = shopify_app(shopify)
        started.append(await start(app, app[SHOPIFY], "shopify", host))
        app = amazon_app(amazon)
        started.append(await start(app, app[AMAZON], "amazon", host))
        app = shipbob_app(shipbob)
        started.append(await start(app, app[SHIPBOB], "shipbob", host))
        app = odoo_app(odoo)
        started.append(await start(app, app[ODOO], "odoo", host))
        app = easypost_app(easypost)
        started.append(await start(app, app[EASYPOST], "easypost", host))
    except BaseException:
        for r in started:
            await r.stop()
        raise
    return Systems(*started)
