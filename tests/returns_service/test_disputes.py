"""Payment disputes and chargebacks through POST/GET /api/v1/orders/{id}/disputes on the real PostgreSQL:
they count in the order's money trail, are stored once per external id, refuse another currency, and need
the ops scope to write. Orders arrive through the toy channel's signed webhook (tests/sync/toy.py)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from hub.runtime import Hub
from hub.store import tables as t
from tests.returns_service.conftest import OPS, READ, place
from tests.sync import toy

Client = TestClient[Any, Any]


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def count(h: Hub, table: Any, *where: Any) -> int:
    async with h.store.connect() as c:
        return int((await c.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_a_lost_chargeback_shows_in_the_money_trail_timeline_audit_and_kpis(hub: Hub, client: Client) -> None:
    order = await place(hub, toy.order_doc("D-1", qty=3))  # 30.00 EUR paid
    r = await client.post(
        f"/api/v1/orders/{order.id}/disputes",
        json={
            "kind": "chargeback",
            "amount": eur("12.50"),
            "status": "lost",
            "reason": "fraudulent",
            "external_id": "dp_1",
        },
        headers=OPS,
    )
    assert r.status == 201, await r.text()
    created = await r.json()
    assert (created["kind"], created["status"], created["amount"], created["external_id"]) == (
        "chargeback",
        "lost",
        eur("12.50"),
        "dp_1",
    )

    r = await client.get(f"/api/v1/orders/{order.id}", headers=READ)
    doc = await r.json()
    assert doc["money_trail"]["paid"] == eur("30.00")
    assert doc["money_trail"]["disputed"] == eur("12.50")
    assert doc["money_trail"]["outstanding"] == eur("17.50")
    assert any(e["kind"] == "chargeback_lost" for e in doc["timeline"])
    assert (
        await count(hub, t.audit_log, t.audit_log.c.action == "dispute.recorded", t.audit_log.c.target == order.id) == 1
    )
    async with hub.store.connect() as c:
        kpi = (await c.execute(select(t.kpi_facts).where(t.kpi_facts.c.order_id == order.id))).one()
    assert kpi.had_exception is True


async def test_a_won_dispute_is_listed_but_not_counted_as_disputed_money(hub: Hub, client: Client) -> None:
    order = await place(hub, toy.order_doc("D-2", qty=2))
    r = await client.post(
        f"/api/v1/orders/{order.id}/disputes",
        json={"kind": "dispute", "amount": eur("20.00"), "status": "won"},
        headers=OPS,
    )
    assert r.status == 201, await r.text()
    listed = await (await client.get(f"/api/v1/orders/{order.id}/disputes", headers=READ)).json()
    assert [(d["kind"], d["status"], d["external_id"]) for d in listed["items"]] == [("dispute", "won", None)]
    assert listed["next"] is None
    trail = (await (await client.get(f"/api/v1/orders/{order.id}", headers=READ)).json())["money_trail"]
    assert trail["disputed"] == eur("0.00")


async def test_the_same_external_id_twice_is_recorded_once(hub: Hub, client: Client) -> None:
    order = await place(hub, toy.order_doc("D-3", qty=3))
    body = {"kind": "chargeback", "amount": eur("10.00"), "status": "open", "external_id": "dp_same"}
    first = await client.post(f"/api/v1/orders/{order.id}/disputes", json=body, headers=OPS)
    second = await client.post(f"/api/v1/orders/{order.id}/disputes", json=body, headers=OPS)
    assert (first.status, second.status) == (201, 200)
    assert (await first.json())["id"] == (await second.json())["id"]
    assert await count(hub, t.payment_disputes, t.payment_disputes.c.order_id == order.id) == 1
    assert await count(hub, t.audit_log, t.audit_log.c.action == "dispute.recorded") == 1
    trail = (await (await client.get(f"/api/v1/orders/{order.id}", headers=READ)).json())["money_trail"]
    assert trail["disputed"] == eur("10.00")


async def test_an_amount_in_another_currency_than_the_orders_is_refused(hub: Hub, client: Client) -> None:
    order = await place(hub, toy.order_doc("D-4"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/disputes",
        json={"kind": "chargeback", "amount": {"amount": "10.00", "currency": "USD"}, "status": "open"},
        headers=OPS,
    )
    assert r.status == 422
    problem = await r.json()
    assert r.content_type == "application/problem+json"
    assert "USD" in problem["detail"] and "EUR" in problem["detail"] and order.id in problem["detail"]
    assert await count(hub, t.payment_disputes) == 0


async def test_a_dispute_for_an_unknown_order_is_not_found(client: Client) -> None:
    r = await client.post(
        "/api/v1/orders/ord_01JZZZZZZZZZZZZZZZZZZZZZZZ/disputes",
        json={"kind": "dispute", "amount": eur("1.00"), "status": "open"},
        headers=OPS,
    )
    assert r.status == 404


async def test_a_read_token_cannot_record_a_dispute_but_can_list_them(hub: Hub, client: Client) -> None:
    order = await place(hub, toy.order_doc("D-5"))
    r = await client.post(
        f"/api/v1/orders/{order.id}/disputes",
        json={"kind": "chargeback", "amount": eur("5.00"), "status": "open"},
        headers=READ,
    )
    assert r.status == 403
    assert await count(hub, t.payment_disputes) == 0
    r = await client.get(f"/api/v1/orders/{order.id}/disputes", headers=READ)
    assert r.status == 200
    assert (await client.get(f"/api/v1/orders/{order.id}/disputes")).status == 401
