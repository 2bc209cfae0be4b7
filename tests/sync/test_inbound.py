"""Inbound webhooks: persisted before the reply, deduplicated, never lost (real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from hub.api import make_app
from hub.runtime import Hub
from hub.store import orders as repo
from hub.store import tables as t
from hub.sync import inbox
from tests.sync import toy
from tests.sync.conftest import OPS_TOKEN, drain, webhook


async def _count(h: Hub, table: t.Table) -> int:  # type: ignore[name-defined]
    async with h.store.connect() as c:
        return int((await c.execute(select(func.count()).select_from(table))).scalar_one())


async def test_same_event_50_times_concurrently_makes_one_order(hub: Hub) -> None:
    headers, body = webhook({"id": "evt-1", "order": toy.order_doc("1001")})
    results = await asyncio.gather(*(inbox.accept(hub, "shop", headers, body) for _ in range(50)))
    assert len({r.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    await drain(hub)
    assert await _count(hub, t.inbox) == 1
    assert await _count(hub, t.orders) == 1
    async with hub.store.connect() as c:
        order = await repo.get_by_external(c, "shop", "1001")
    assert order is not None and order.status == "released"


async def test_http_intake_answers_202_then_duplicate(hub: Hub) -> None:
    headers, body = webhook({"id": "evt-2", "order": toy.order_doc("1002")})
    async with TestClient(TestServer(make_app(hub))) as client:
        r1 = await client.post("/webhooks/shop", data=body, headers=headers)
        r2 = await client.post("/webhooks/shop", data=body, headers=headers)
        assert r1.status == 202 and r2.status == 202
        d1, d2 = await r1.json(), await r2.json()
    assert d1["duplicate"] is False and d2 == {"id": d1["id"], "duplicate": True}
    assert await _count(hub, t.inbox) == 1


async def test_bad_signature_is_401_and_stores_nothing(hub: Hub) -> None:
    headers, body = webhook({"id": "evt-3", "order": toy.order_doc("1003")}, secret="wrong-secret")
    async with TestClient(TestServer(make_app(hub))) as client:
        r = await client.post("/webhooks/shop", data=body, headers=headers)
        assert r.status == 401
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert "signature" in (await r.json())["detail"]
        r = await client.post("/webhooks/nope", data=body, headers=headers)
        assert r.status == 404
    assert await _count(hub, t.inbox) == 0


async def test_oversized_body_is_413_and_stores_nothing(hub: Hub) -> None:
    body = b"x" * (2 * 1024 * 1024)
    async with TestClient(TestServer(make_app(hub))) as client:
        r = await client.post(
            "/webhooks/shop", data=body, headers={"X-Toy-Signature": toy.sign("toy-secret-123", body)}
        )
        assert r.status == 413
        assert "limit" in (await r.json())["detail"]
    assert await _count(hub, t.inbox) == 0


async def test_authenticated_garbage_is_kept_visible_and_replayable_after_a_fix(hub: Hub) -> None:
    headers, body = webhook({"id": "evt-garbage", "topic": "order"})
    accepted = await inbox.accept(hub, "shop", headers, body)
    await drain(hub)
    auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with TestClient(TestServer(make_app(hub))) as client:
        r = await client.get("/api/v1/sync/failures", headers=auth)
        items = (await r.json())["items"]
        assert len(items) == 1
        f = items[0]
        assert f["source_id"] == accepted.id and f["connection"] == "shop"
        assert "toy.yaml:1 order=None" in f["last_error"]
        # still failing: a replay says so and keeps the failure open
        r = await client.post(f"/api/v1/sync/failures/{f['id']}/replay", json={}, headers=auth)
        assert (await r.json())["result"] == "failed"
        toy.STRICT["on"] = False  # the mapping is fixed
        r = await client.post(f"/api/v1/sync/failures/{f['id']}/replay", json={}, headers=auth)
        assert (await r.json())["result"] == "resolved"
        r = await client.post(f"/api/v1/sync/failures/{f['id']}/replay", json={}, headers=auth)
        assert (await r.json())["result"] == "already_resolved"
        r = await client.get(f"/api/v1/sync/failures/{f['id']}", headers=auth)
        detail = await r.json()
    assert [x["result"] for x in detail["replays"]] == ["failed", "resolved", "already_resolved"]
    assert await _count(hub, t.orders) == 1


async def test_updates_out_of_order_end_in_the_newest_state(hub: Hub) -> None:
    newest = toy.order_doc("2001", qty=3, updated="2026-01-01T00:03:00+00:00")
    older = toy.order_doc("2001", qty=2, updated="2026-01-01T00:02:00+00:00")
    create = toy.order_doc("2001", qty=1, updated="2026-01-01T00:01:00+00:00")
    for i, doc in enumerate([newest, create, older]):
        h, b = webhook({"id": f"u{i}", "order": doc})
        await inbox.accept(hub, "shop", h, b)
    await drain(hub)
    async with hub.store.connect() as c:
        order = await repo.get_by_external(c, "shop", "2001")
    assert order is not None and order.lines[0].quantity == 3


async def test_webhook_body_is_stored_verbatim(hub: Hub) -> None:
    headers, body = webhook({"id": "evt-raw", "order": toy.order_doc("3001")})
    acc = await inbox.accept(hub, "shop", headers, body)
    async with hub.store.connect() as c:
        row = (await c.execute(select(t.inbox).where(t.inbox.c.id == acc.id))).one()
    assert bytes(row.body) == body
    assert json.loads(row.body)["id"] == "evt-raw"
