"""The HTTP API: scopes, problem+json, Idempotency-Key, back-pressure, inventory, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api import make_app
from hub.runtime import Hub
from tests.sync.conftest import OPS_TOKEN, READ_TOKEN

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(hub))) as c:
        yield c


def _direct(ext: str, qty: int = 1) -> dict[str, Any]:
    return {
        "external_id": ext,
        "currency": "EUR",
        "customer": {"email": "b2b@example.com"},
        "shipping_address": {"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        "lines": [{"sku": "SKU-1", "quantity": qty, "unit_price": {"amount": "12.50", "currency": "EUR"}}],
        "shipping": {"amount": "4.90", "currency": "EUR"},
    }


async def test_routes_require_a_token_with_the_right_scope(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/v1/orders")
    assert r.status == 401 and r.headers["Content-Type"].startswith("application/problem+json")
    assert (await r.json())["title"] == "Unauthorized"
    r = await client.get("/api/v1/orders", headers={"Authorization": "Bearer not-a-token-at-all"})
    assert r.status == 401
    r = await client.post("/api/v1/orders", json=_direct("x"), headers=READ)
    assert r.status == 403
    assert "lacks the 'ops' scope" in (await r.json())["detail"]
    r = await client.get("/api/v1/orders", headers=READ)
    assert r.status == 200 and (await r.json()) == {"items": [], "next": None}


async def test_direct_capture_allocates_and_idempotency_key_replays(client: TestClient[Any, Any]) -> None:
    h = {**OPS, "Idempotency-Key": "k-1"}
    r1 = await client.post("/api/v1/orders", json=_direct("B2B-1", 2), headers=h)
    r2 = await client.post("/api/v1/orders", json=_direct("B2B-1", 2), headers=h)
    assert r1.status == 201 and r2.status == 201
    d1, d2 = await r1.json(), await r2.json()
    assert d1["id"] == d2["id"] and r2.headers.get("Idempotent-Replayed") == "true"
    assert d1["status"] == "released"
    assert d1["totals"]["total"] == {"amount": "29.90", "currency": "EUR"}
    r3 = await client.post("/api/v1/orders", json=_direct("B2B-1", 3), headers=h)
    assert r3.status == 422 and "different request body" in (await r3.json())["detail"]
    r = await client.get(f"/api/v1/orders/{d1['id']}", headers=READ)
    doc = await r.json()
    assert [e["kind"] for e in doc["timeline"]][:3] == ["received", "allocated", "released"]
    assert any(d["kind"] == "allocation" for d in doc["decisions"])


async def test_invalid_body_is_a_clear_problem(client: TestClient[Any, Any]) -> None:
    bad = _direct("bad")
    bad["lines"][0]["unit_price"] = {"amount": 12.5, "currency": "EUR"}
    r = await client.post("/api/v1/orders", json=bad, headers=OPS)
    assert r.status == 422
    doc = await r.json()
    assert "lines.0.unit_price.amount" in doc["detail"] and "never floats" in doc["detail"]
    r = await client.post("/api/v1/orders", data=b"{not json", headers=OPS)
    assert r.status == 422 and "not valid JSON" in (await r.json())["detail"]


async def test_backpressure_answers_429_with_retry_after(hub: Hub, client: TestClient[Any, Any]) -> None:
    hub.config.queue.max_depth = 0
    hub.state.pop("depth_cache", None)
    from hub.sync import inbox
    from tests.sync import toy
    from tests.sync.conftest import webhook

    hd, b = webhook({"id": "bp", "order": toy.order_doc("bp")})
    await inbox.accept(hub, "shop", hd, b)  # webhook intake keeps persisting
    r = await client.post("/api/v1/orders", json=_direct("B2B-2"), headers=OPS)
    assert r.status == 429 and r.headers["Retry-After"] == "5"


async def test_inventory_levels_adjustments_and_promise(client: TestClient[Any, Any]) -> None:
    r = await client.post(
        "/api/v1/inventory/adjustments",
        json={"sku": "SKU-1", "location": "w1", "delta": -5, "reason": "damaged"},
        headers=OPS,
    )
    assert r.status == 200
    r = await client.post(
        "/api/v1/inventory/adjustments",
        json={"adjustments": [{"sku": "NEW", "location": "w1", "delta": 7, "reason": "receipt PO-1"}]},
        headers=OPS,
    )
    assert r.status == 200
    r = await client.get("/api/v1/inventory/SKU-1?country=DE&postal_code=10115", headers=READ)
    doc = await r.json()
    assert doc["locations"] == [{"location": "w1", "on_hand": 95, "reserved": 0, "safety_stock": 0, "available": 95}]
    assert doc["channels"] == [{"connection": "shop", "atp": 95}]
    assert doc["promise"] is not None
    r = await client.post(
        "/api/v1/inventory/adjustments",
        json={"sku": "SKU-1", "location": "w1", "delta": -1000, "reason": "count"},
        headers=OPS,
    )
    assert r.status == 409 and "below the 0 reserved" in (await r.json())["detail"]
    r = await client.post(
        "/api/v1/inventory/adjustments",
        json={"sku": "SKU-1", "location": "mars", "delta": 1, "reason": "x"},
        headers=OPS,
    )
    assert r.status == 422 and "unknown location 'mars'" in (await r.json())["detail"]


async def test_cancel_and_release_hold_routes(client: TestClient[Any, Any]) -> None:
    body = _direct("B2B-3")
    body["payment_status"] = "pending"
    held = await (await client.post("/api/v1/orders", json=body, headers=OPS)).json()
    assert held["status"] == "on_hold"
    r = await client.post(f"/api/v1/orders/{held['id']}/release-hold", headers=OPS)
    assert r.status == 200 and (await r.json())["status"] == "released"
    r = await client.post(f"/api/v1/orders/{held['id']}/cancel", json={"reason": "customer"}, headers=OPS)
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    r = await client.post(f"/api/v1/orders/{held['id']}/cancel", json={}, headers=OPS)
    assert r.status == 409
    r = await client.get("/api/v1/orders/ord_00000000000000000000000000", headers=READ)
    assert r.status == 404


async def test_openapi_describes_every_route(client: TestClient[Any, Any]) -> None:
    spec = await (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/orders", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/orders/{id}/release-hold", "post"),
        ("/api/v1/inventory/{sku}", "get"),
        ("/api/v1/inventory/adjustments", "post"),
        ("/api/v1/sync/failures", "get"),
        ("/api/v1/sync/failures/{id}/replay", "post"),
        ("/api/v1/sync/failures/replay", "post"),
        ("/webhooks/{connection_id}", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from OpenAPI"
    post = paths["/api/v1/orders"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/DirectOrder"
    assert "DirectOrder" in spec["components"]["schemas"]
    assert post["security"] == [{"bearer": ["ops"]}]


async def test_health_metrics(client: TestClient[Any, Any]) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["database"] is True
    text = await (await client.get("/metrics")).text()
    for name in (
        "orderhub_queue_depth",
        "orderhub_job_latency_seconds",
        "orderhub_allocation_latency_seconds",
        "orderhub_orders",
    ):
        assert name in text
