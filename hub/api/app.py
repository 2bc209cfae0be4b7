"""The aiohttp application: ``/api/v1``, inbound webhooks, health, metrics, OpenAPI, console."""

from __future__ import annotations

import importlib
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api._routing import HUB_KEY, Route, Router, json_response, wrap
from hub.api.openapi import document

#: Feature modules that define ``router = Router(...)``; each is included when importable.
ROUTE_MODULES = [
    "hub.api.routes.inbound",
    "hub.api.routes.orders",
    "hub.api.routes.inventory",
    "hub.api.routes.returns",
    "hub.api.routes.sync",
    "hub.api.routes.partner_webhooks",
    "hub.api.routes.kpis",
    "hub.api.routes.disputes",
]

health = Router("health")


@health.get("/healthz", scope=None, summary="Liveness: the process answers", response={"type": "object"})
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@health.get("/readyz", scope=None, summary="Readiness: database and Redis reachable", response={"type": "object"})
async def readyz(request: web.Request) -> web.Response:
    hub = request.app[HUB_KEY]
    db_ok = await hub.store.ping()
    try:
        redis_ok = bool(await hub.redis.ping())
    except Exception:
        redis_ok = False
    ok = db_ok and redis_ok
    return json_response(
        {"status": "ok" if ok else "unavailable", "database": db_ok, "redis": redis_ok}, status=200 if ok else 503
    )


@health.get("/metrics", scope=None, summary="Prometheus metrics", response={"type": "string"})
async def metrics(request: web.Request) -> web.Response:
    from hub import metrics as m
    from hub.sync.stats import refresh_gauges

    await refresh_gauges(request.app[HUB_KEY])
    return web.Response(body=generate_latest(m.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def all_routes() -> list[Route]:
    routes = list(health.routes)
    for name in ROUTE_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        routes.extend(mod.router.routes)
    return routes


def make_app(hub: Any, *, client_max_size: int = 1024 * 1024) -> web.Application:
    """The HTTP app around an opened :class:`hub.runtime.Hub`."""
    app = web.Application(client_max_size=client_max_size, middlewares=[_too_large])
    app[HUB_KEY] = hub
    routes = all_routes()
    for r in routes:
        app.router.add_route(r.method, r.path, wrap(r))
    spec = document(routes)

    async def openapi(request: web.Request) -> web.Response:
        return json_response(spec)

    app.router.add_get("/openapi.json", openapi)
    try:
        from hub.console import setup as console_setup
    except ModuleNotFoundError:
        pass
    else:
        console_setup(app)
    return app


@web.middleware
async def _too_large(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPRequestEntityTooLarge:
        from hub.api._routing import problem

        limit = request.app._client_max_size
        return problem(413, "Payload too large", f"the body exceeds the {limit} byte limit; nothing was stored")
