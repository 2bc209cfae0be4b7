"""Helpers of the partner webhook tests: a minimal hub, a local partner receiver, canonical fixtures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from hub import events
from hub.config import ApiToken, ConnectionConfig, HubConfig, WebhooksConfig
from hub.events import EndpointIn, EndpointWithSecret
from hub.model import InventoryChanged, Order, new_id
from hub.store import Store, outbox

TOKENS = {
    "read": "read-token-0123456789",
    "ops": "ops-token-0123456789",
    "admin": "admin-token-0123456789",
}


@dataclass
class MiniHub:
    """The part of hub.runtime.Hub the events engine and its routes use."""

    store: Store
    config: HubConfig
    state: dict[str, Any] = field(default_factory=dict)


def make_config(**webhooks: Any) -> HubConfig:
    """Tiny retry schedule, private targets allowed (the partner runs on loopback), three tokens."""
    opts: dict[str, Any] = {"retry_schedule": [0, 0, 0], "allow_private_targets": True, "timeout_seconds": 5.0}
    opts.update(webhooks)
    return HubConfig(
        webhooks=WebhooksConfig(**opts),
        api_tokens=[ApiToken(name=s, scopes=[s], token=SecretStr(tok)) for s, tok in TOKENS.items()],  # type: ignore[list-item]
        connections=[ConnectionConfig(id="shop", connector="shopify")],
    )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0
    done_at: float = 0.0


@dataclass
class Partner:
    """A partner's receiver: records every request; answers from a per-path script (default 204)."""

    server: TestServer
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[Any]] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    max_inflight: dict[str, int] = field(default_factory=dict)

    def url(self, path: str = "/hook") -> str:
        return str(self.server.make_url(path))

    def on(self, path: str, *answers: Any) -> None:
        """Queue answers for ``path``: an int status, a (status, headers, body) tuple, or a handler."""
        self.script.setdefault(path, []).extend(answers)

    def requests(self, path: str = "/hook") -> list[Received]:
        return [r for r in self.received if r.path == path]


@asynccontextmanager
async def running_partner() -> AsyncIterator[Partner]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    p = Partner(server=server)
    current: dict[str, int] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        body = await request.read()
        rec = Received(path, dict(request.headers), body, time.monotonic())
        p.received.append(rec)
        current[path] = current.get(path, 0) + 1
        p.max_inflight[path] = max(p.max_inflight.get(path, 0), current[path])
        try:
            if p.delay.get(path):
                await asyncio.sleep(p.delay[path])
            answer = p.script[path].pop(0) if p.script.get(path) else 204
            if callable(answer):
                resp: web.StreamResponse = await answer(request)
            elif isinstance(answer, int):
                resp = web.Response(status=answer)
            else:
                status, headers, text = answer
                resp = web.Response(status=status, headers=headers, body=text)
            rec.status = resp.status
            return resp
        finally:
            rec.done_at = time.monotonic()
            current[path] -= 1

    app.router.add_route("*", "/{tail:.*}", handle)
    await server.start_server()
    try:
        yield p
    finally:
        await server.close()


async def emit(
    hub: MiniHub, type_: str, data: Any, *, object_id: str | None = None, connection: str | None = None
) -> str:
    """Write one partner event to the outbox and commit, as the services do; returns the event id."""
    async with hub.store.begin() as conn:
        return await outbox.emit(conn, type_, data, object_id=object_id, connection=connection)


async def add_endpoint(
    hub: MiniHub, url: str, events_: list[str] | None = None, connection: str | None = None
) -> EndpointWithSecret:
    return await events.create_endpoint(hub, EndpointIn(url=url, events=events_ or ["*"], connection=connection))


async def drain(hub: MiniHub, rounds: int = 20) -> int:
    """Run the engine until nothing is due; returns the attempts made."""
    total = 0
    for _ in range(rounds):
        n = await events.run_once(hub)
        total += n
        if n == 0:
            return total
    return total


def order(status: str = "received", **over: Any) -> Order:
    """A canonical order (EUR, one line, totals that add up), as in tests/unit/test_model.py."""
    doc: dict[str, Any] = {
        "id": new_id("ord"),
        "connection": "shop",
        "external_id": "1001",
        "placed_at": datetime(2026, 1, 1, tzinfo=UTC),
        "currency": "EUR",
        "status": status,
        "lines": [
            {
                "line_no": 1,
                "sku": "A",
                "quantity": 2,
                "unit_price": {"amount": "10.00", "currency": "EUR"},
                "discount": {"amount": "2.00", "currency": "EUR"},
                "tax_lines": [{"title": "VAT", "rate": "0.2", "amount": {"amount": "3.00", "currency": "EUR"}}],
            }
        ],
        "shipping_lines": [{"price": {"amount": "5.00", "currency": "EUR"}}],
        "taxes_included": True,
        "totals": {
            "subtotal": {"amount": "18.00", "currency": "EUR"},
            "shipping": {"amount": "5.00", "currency": "EUR"},
            "tax": {"amount": "3.00", "currency": "EUR"},
            "discount": {"amount": "2.00", "currency": "EUR"},
            "total": {"amount": "23.00", "currency": "EUR"},
        },
    }
    doc.update(over)
    return Order.model_validate(doc)


def inventory(sku: str = "A", on_hand: int = 5) -> InventoryChanged:
    return InventoryChanged(sku=sku, location="wh1", on_hand=on_hand, reserved=0, available=on_hand, cause="adjustment")
