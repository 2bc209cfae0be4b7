"""GET /api/v1/kpis on a small worked example, the facts loader on SQLite and PostgreSQL, and the
scopes of the returns API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.errors import InputError
from hub.kpis_store import KPI_REFUND_TIMES, load_facts, parse_period
from hub.runtime import Hub
from hub.store import Store
from hub.store import tables as t
from tests.returns_service.conftest import OPS, READ, delivered_order

Client = TestClient[Any, Any]
D = timedelta(days=1)


def at(day: int, month: int = 10) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


#: The worked example (docs/api.md): orders placed in October 2026, and one in September outside the period.
#: A: delivered on time (perfect); B: delivered late; C: on time but refunded 2 days after the request;
#: D: not shipped, with an exception. Costs to serve: A 5.00, B 6.00, D 7.50.
FACTS: list[dict[str, Any]] = [
    {"order_id": "A", "placed_at": at(1), "shipped_at": at(2), "delivered_at": at(3), "promised_deliver_by": at(4),
     "cost_to_serve": Decimal("5.00")},
    {"order_id": "B", "placed_at": at(2), "shipped_at": at(3), "delivered_at": at(7), "promised_deliver_by": at(5),
     "cost_to_serve": Decimal("6.00")},
    {"order_id": "C", "placed_at": at(3), "shipped_at": at(4), "delivered_at": at(5), "promised_deliver_by": at(6),
     "refund_requested_at": at(6), "refund_issued_at": at(8)},
    {"order_id": "D", "placed_at": at(4), "had_exception": True, "cost_to_serve": Decimal("7.50")},
    {"order_id": "E", "placed_at": at(15, 9), "delivered_at": at(16, 9)},
]  # fmt: skip


async def seed(conn: AsyncConnection) -> None:
    for f in FACTS:
        oid = f"ord_{f['order_id'] * 26}"
        await conn.execute(
            insert(t.orders).values(
                id=oid, connection="shop", external_id=f["order_id"], status="received", currency="EUR",
                total=Decimal(0), placed_at=f["placed_at"], data={}, created_at=f["placed_at"],
                updated_at=f["placed_at"],
            )
        )  # fmt: skip
        base = {k: v for k, v in f.items() if not k.startswith("refund_") and k != "order_id"}
        await conn.execute(insert(t.kpi_facts).values(order_id=oid, shipments=0, complete=True, **base))
        refund = {k: v for k, v in f.items() if k.startswith("refund_")}
        if refund:
            await conn.execute(KPI_REFUND_TIMES.update().where(KPI_REFUND_TIMES.c.order_id == oid).values(**refund))


async def test_kpi_facts_load_with_their_refund_times_on_both_databases(store: Store) -> None:
    async with store.begin() as c:
        await seed(c)
    async with store.connect() as c:
        facts = await load_facts(c, at(1), at(1, 11))
    assert [f.order_id[4] for f in facts] == ["A", "B", "C", "D"]
    c_fact = facts[2]
    assert (c_fact.refund_requested_at, c_fact.refund_issued_at) == (at(6), at(8))
    assert facts[3].had_exception and facts[3].cost_to_serve == Decimal("7.50")


async def test_the_kpi_endpoint_answers_the_worked_example(hub: Hub, client: Client) -> None:
    async with hub.store.begin() as c:
        await seed(c)
    r = await client.get("/api/v1/kpis", params={"from": "2026-10-01", "to": "2026-10-31"}, headers=READ)
    assert r.status == 200
    assert await r.json() == {
        "from": "2026-10-01T00:00:00+00:00",
        "to": "2026-11-01T00:00:00+00:00",
        "orders": 4,
        "perfect_order_rate": "0.3333",  # A of A, B, C
        "otif": "0.6667",  # A and C of A, B, C
        "promise_accuracy": "0.6667",
        "ship_by_accuracy": None,  # no ship-by promises
        "exception_rate": "0.2500",  # D of 4
        "order_cycle_time": {"count": 3, "p50_seconds": 2 * 86400.0, "avg_seconds": 3 * 86400.0},
        "refund_cycle_time": {"count": 1, "p50_seconds": 2 * 86400.0, "avg_seconds": 2 * 86400.0},
        "cost_to_serve_per_order": "6.1667",  # (5.00 + 6.00 + 7.50) / 3
    }
    r = await client.get("/api/v1/kpis", params={"from": "last week"}, headers=READ)
    assert r.status == 422 and "from='last week' is not a date" in (await r.json())["detail"]


def test_a_period_defaults_to_the_last_30_days_and_refuses_an_empty_one() -> None:
    now = at(31)
    assert parse_period(None, None, now) == (now - 30 * D, now)
    assert parse_period("2026-10-01T12:00:00", None, now)[0] == datetime(2026, 10, 1, 12, tzinfo=UTC)
    with pytest.raises(InputError, match="the period is empty"):
        parse_period("2026-10-05", "2026-10-01", now)


async def test_a_read_token_reads_returns_but_cannot_change_them(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, _doc(), datetime.now(UTC))
    body = {"order_id": order.id, "lines": [{"sku": "SKU-1", "quantity": 1, "reason": "changed_mind"}]}
    assert (await client.post("/api/v1/returns", json=body, headers=READ)).status == 403
    assert (await client.post("/api/v1/returns", json=body)).status == 401
    r = await client.post("/api/v1/returns", json=body, headers=OPS)
    rid = (await r.json())["id"]
    for action in ("approve", "receive", "refund", "reject"):
        r = await client.post(f"/api/v1/returns/{rid}/{action}", json={}, headers=READ)
        assert r.status == 403, action
        assert "lacks the 'ops' scope" in (await r.json())["detail"]
    r = await client.get(f"/api/v1/returns/{rid}", headers=READ)
    assert r.status == 200 and (await r.json())["status"] == "requested"
    assert (await client.get("/api/v1/returns/ret_01JQ0000000000000000000000", headers=READ)).status == 404
    r = await client.post(f"/api/v1/returns/{rid}/reject", json={"reason": "worn"}, headers=OPS)
    assert r.status == 200 and (await r.json())["decision_reason"] == "worn"


async def test_the_returns_and_kpi_routes_are_in_the_openapi_document(client: Client) -> None:
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    for p in (
        "/api/v1/returns",
        "/api/v1/returns/{id}",
        "/api/v1/returns/{id}/approve",
        "/api/v1/returns/{id}/receive",
        "/api/v1/returns/{id}/refund",
        "/api/v1/kpis",
    ):
        assert p in paths, p


def _doc() -> dict[str, Any]:
    from tests.sync import toy

    return toy.order_doc("K-100")
