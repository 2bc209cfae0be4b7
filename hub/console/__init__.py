"""The ops console: server-rendered HTML pages under ``/console/`` (no JavaScript, no build step).

``hub.api.make_app`` calls :func:`setup`. Ops log in with an API token (``[[api_tokens]]``):
``read`` sees every page, ``ops`` may also replay. See docs/console.md.
"""

from __future__ import annotations

from aiohttp import web

from hub.console import _views as v

__all__ = ["setup"]


def setup(app: web.Application) -> None:
    """Add the console's routes (``/console/...``) to the API app."""
    r = app.router
    r.add_get("/console", v.root_redirect)
    r.add_get("/console/", v.dashboard)
    r.add_get("/console/login", v.login)
    r.add_post("/console/login", v.login)
    r.add_post("/console/logout", v.logout)
    r.add_get("/console/orders", v.orders)
    r.add_get("/console/orders/{id}", v.order_detail)
    r.add_get("/console/inventory", v.inventory)
    r.add_get("/console/failures", v.failures)
    r.add_post("/console/failures/replay", v.failures_replay_matching)
    r.add_get("/console/failures/{id}", v.failure_detail)
    r.add_post("/console/failures/{id}/replay", v.failure_replay)
    r.add_get("/console/webhooks", v.webhooks)
    r.add_get("/console/webhooks/deliveries/{id}", v.delivery_detail)
    r.add_post("/console/webhooks/deliveries/{id}/replay", v.delivery_replay)
    r.add_post("/console/webhooks/endpoints/{id}/replay", v.endpoint_replay)
