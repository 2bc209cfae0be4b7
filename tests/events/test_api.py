"""The partner webhooks routes through aiohttp's test client (scopes, secret shown once, lists, replay)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from webhook_helpers import TOKENS, MiniHub, Partner, drain, emit, inventory

from hub.api._routing import HUB_KEY, wrap
from hub.api.openapi import document
from hub.api.routes.partner_webhooks import router
from hub.model import EVENT_TYPES
from hub.schemas import event_schema
from hub.store import tables as t

pytestmark = pytest.mark.postgres


def auth(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[scope]}"}


@pytest.fixture
async def client(hub: MiniHub) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app[HUB_KEY] = hub
    for r in router.routes:
        app.router.add_route(r.method, r.path, wrap(r))
    async with TestClient(TestServer(app)) as c:
        yield c


async def create(client: TestClient[Any, Any], url: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/webhook-endpoints", json={"url": url, "events": ["*"], **extra}, headers=auth("admin")
    )
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_secret_is_shown_once_in_the_create_answer(client: TestClient[Any, Any], partner: Partner) -> None:
    created = await create(client, partner.url(), description="ERP sync")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "active"

    one = await (await client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=auth("ops"))).json()
    listed = await (await client.get("/api/v1/webhook-endpoints", headers=auth("ops"))).json()
    assert "secret" not in one
    assert [set(x) & {"secret", "previous_secret"} for x in listed["items"]] == [set()]
    assert created["secret"] not in str(one) + str(listed)
    assert one == {k: v for k, v in created.items() if k != "secret"}


async def test_rotate_secret_answers_the_new_secret(client: TestClient[Any, Any], partner: Partner) -> None:
    created = await create(client, partner.url())
    resp = await client.post(f"/api/v1/webhook-endpoints/{created['id']}/rotate-secret", headers=auth("admin"))
    assert resp.status == 200
    rotated = await resp.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None


@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [
        ("POST", "/api/v1/webhook-endpoints", "admin"),
        ("DELETE", "/api/v1/webhook-endpoints/whe_X", "admin"),
        ("POST", "/api/v1/webhook-endpoints/whe_X/rotate-secret", "admin"),
        ("GET", "/api/v1/webhook-endpoints", "ops"),
        ("POST", "/api/v1/webhook-endpoints/whe_X/replay", "ops"),
        ("GET", "/api/v1/webhook-deliveries", "ops"),
        ("POST", "/api/v1/webhook-deliveries/dlv_X/replay", "ops"),
        ("GET", "/api/v1/event-types", "read"),
    ],
)
async def test_routes_need_their_scope(client: TestClient[Any, Any], method: str, path: str, needs: str) -> None:
    resp = await client.request(method, path)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    weaker = {"admin": "ops", "ops": "read"}.get(needs)
    if weaker:
        resp = await client.request(method, path, headers=auth(weaker))
        assert resp.status == 403
        assert needs in (await resp.json())["detail"]
    resp = await client.request(method, path, headers=auth(needs), json={})
    assert resp.status not in (401, 403)


async def test_endpoint_list_pages_with_limit_and_cursor(client: TestClient[Any, Any], partner: Partner) -> None:
    ids = [(await create(client, partner.url(f"/h{i}")))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/v1/webhook-endpoints", params=params, headers=auth("ops"))).json()
        assert set(page) == {"items", "next"}
        seen += [x["id"] for x in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3
    bad = await client.get("/api/v1/webhook-endpoints", params={"limit": "0"}, headers=auth("ops"))
    assert bad.status == 422 and "limit" in (await bad.json())["detail"]


async def test_refused_urls_are_problems_naming_the_url(client: TestClient[Any, Any], make_hub: Any) -> None:
    resp = await client.post(
        "/api/v1/webhook-endpoints", json={"url": "ftp://example.com/x", "events": ["*"]}, headers=auth("admin")
    )
    assert resp.status == 422
    assert "http or https" in (await resp.json())["detail"]
    resp = await client.post(
        "/api/v1/webhook-endpoints",
        json={"url": "https://example.com/x", "events": ["order.exploded"]},
        headers=auth("admin"),
    )
    assert resp.status == 422
    assert "order.exploded" in (await resp.json())["detail"]


async def test_private_target_refused_when_not_allowed(make_hub: Any) -> None:
    hub = make_hub(allow_private_targets=False)
    app = web.Application()
    app[HUB_KEY] = hub
    for r in router.routes:
        app.router.add_route(r.method, r.path, wrap(r))
    async with TestClient(TestServer(app)) as c:
        resp = await c.post(
            "/api/v1/webhook-endpoints",
            json={"url": "http://169.254.169.254/latest", "events": ["*"]},
            headers=auth("admin"),
        )
        assert resp.status == 422
        detail = (await resp.json())["detail"]
        assert "link-local" in detail and "allow_private_targets" in detail


async def test_delete_stops_deliveries_and_hides_the_endpoint(
    client: TestClient[Any, Any], hub: MiniHub, partner: Partner
) -> None:
    created = await create(client, partner.url())
    resp = await client.delete(f"/api/v1/webhook-endpoints/{created['id']}", headers=auth("admin"))
    assert resp.status == 204
    assert (await client.get(f"/api/v1/webhook-endpoints/{created['id']}", headers=auth("ops"))).status == 404
    await emit(hub, "inventory.changed", inventory(), object_id="A")
    await drain(hub)
    assert partner.requests() == []
    async with hub.store.connect() as conn:
        audit = (await conn.execute(select(t.audit_log.c.actor, t.audit_log.c.action).order_by(t.audit_log.c.id))).all()
    assert [tuple(a) for a in audit] == [("admin", "webhook_endpoint.create"), ("admin", "webhook_endpoint.delete")]


async def test_delivery_log_filters_pages_and_replays(
    client: TestClient[Any, Any], hub: MiniHub, partner: Partner
) -> None:
    a = await create(client, partner.url("/a"), events=["inventory.changed"])
    b = await create(client, partner.url("/b"), events=["*"])

    async def refuse_sku_a(request: web.Request) -> web.Response:
        return web.Response(status=500 if b'"sku":"A"' in await request.read() else 204)

    partner.on("/a", *[refuse_sku_a] * 7)  # /a fails the event about sku A for good (1 + 3 retries)
    for sku in ("A", "B", "C"):
        await emit(hub, "inventory.changed", inventory(sku), object_id=sku)
    await drain(hub)

    resp = await client.get(
        "/api/v1/webhook-deliveries", params={"endpoint": a["id"], "status": "failed"}, headers=auth("ops")
    )
    [failed] = (await resp.json())["items"]
    assert (failed["endpoint_id"], failed["attempts"], failed["last_status_code"]) == (a["id"], 4, 500)

    everything: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "4", "event_type": "inventory.changed", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/api/v1/webhook-deliveries", params=params, headers=auth("ops"))).json()
        everything += page["items"]
        cursor = page["next"]
        if not cursor:
            break
    assert len(everything) == 6 and len({d["id"] for d in everything}) == 6
    assert {d["endpoint_id"] for d in everything} == {a["id"], b["id"]}

    detail = await (await client.get(f"/api/v1/webhook-deliveries/{failed['id']}", headers=auth("ops"))).json()
    assert [x["status_code"] for x in detail["log"]] == [500, 500, 500, 500]

    resp = await client.post(f"/api/v1/webhook-deliveries/{failed['id']}/replay", headers=auth("ops"))
    assert resp.status == 202
    assert (await resp.json())["status"] == "pending"
    again = await client.post(f"/api/v1/webhook-deliveries/{failed['id']}/replay", headers=auth("ops"))
    assert again.status == 409
    await drain(hub)
    assert [r.status for r in partner.requests("/a")][-1] == 204

    resp = await client.post(
        f"/api/v1/webhook-endpoints/{a['id']}/replay", json={"since": "2020-01-01T00:00:00"}, headers=auth("ops")
    )
    assert resp.status == 422 and "timezone" in (await resp.json())["detail"]
    resp = await client.post(
        f"/api/v1/webhook-endpoints/{a['id']}/replay", json={"since": "2020-01-01T00:00:00Z"}, headers=auth("ops")
    )
    assert resp.status == 200
    assert (await resp.json()) == {"endpoint_id": a["id"], "replayed": 0, "backfilled": 0, "reenabled": False}


async def test_event_types_are_served_with_their_json_schemas(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/event-types", headers=auth("read"))
    assert resp.status == 200
    doc = await resp.json()
    assert doc["next"] is None
    assert [x["type"] for x in doc["items"]] == sorted(EVENT_TYPES)
    by_type = {x["type"]: x["schema"] for x in doc["items"]}
    assert by_type["order.created"] == event_schema("order.created")
    assert by_type["sync.failed"]["properties"]["data"]["properties"]["endpoint_id"]


def test_routes_are_documented_in_openapi() -> None:
    spec = document(router.routes)
    assert set(spec["paths"]) >= {
        "/api/v1/webhook-endpoints",
        "/api/v1/webhook-endpoints/{id}",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        "/api/v1/webhook-endpoints/{id}/replay",
        "/api/v1/webhook-deliveries",
        "/api/v1/webhook-deliveries/{id}/replay",
        "/api/v1/event-types",
    }
    assert spec["paths"]["/api/v1/webhook-endpoints"]["post"]["security"] == [{"bearer": ["admin"]}]
