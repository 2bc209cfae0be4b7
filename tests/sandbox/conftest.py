"""Helpers of the simulator tests: serve an app, and a webhook receiver that records raw deliveries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A JSON fixture (see fixtures/README.md for sources)."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers the statuses in ``replies`` first, then 200."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    def json(self) -> list[Any]:
        return [json.loads(h.body) for h in self.hits]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.hits.append(Hit(dict(request.headers), await request.read()))
        return web.Response(status=rec.replies.pop(0) if rec.replies else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    rec.url = str(server.make_url("/hook"))
    yield rec
    await server.close()


Serve = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``client = await serve(make_app(settings))``: a test client on a real loopback server."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(app: web.Application) -> TestClient[web.Request, web.Application]:
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for c in clients:
        await c.close()
