"""Returns through the service and the API on the real PostgreSQL: policy window, ops approval of flagged
returns, restock and backorder re-allocation, exact refunds once, the money trail.

Orders arrive through the toy channel's signed webhook and ship through the toy 3PL's webhook
(tests/sync/toy.py); delivery is the carrier's delivered tracking event.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select

from hub.allocation import atp_for_channel
from hub.clock import now
from hub.model import Disposition, Money, Order, Refund, ReturnLine
from hub.plugins import hookimpl
from hub.returns import LineToRefund, calculate_refund
from hub.returns import service as returns
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from tests.returns_service.conftest import OPS, READ, delivered_order, place
from tests.sync import toy
from tests.sync.conftest import drain

Client = TestClient[Any, Any]


def doc(ext: str, qty: int = 1, sku: str = "SKU-1", price: str = "10.00", email: str | None = None) -> dict[str, Any]:
    d = toy.order_doc(ext, qty=qty, sku=sku, price=price)
    if email:
        d["customer"] = {"email": email}
    return d


def yesterday() -> Any:
    return now() - timedelta(days=1)


async def request_return(
    client: Client, order_id: str, qty: int = 1, reason: str = "defective", sku: str = "SKU-1"
) -> Any:
    r = await client.post(
        "/api/v1/returns",
        json={"order_id": order_id, "lines": [{"sku": sku, "quantity": qty, "reason": reason}]},
        headers=OPS,
    )
    assert r.status == 201, await r.text()
    return await r.json()


async def receive_new(client: Client, return_id: str, sku: str = "SKU-1", **extra: Any) -> Any:
    r = await client.post(
        f"/api/v1/returns/{return_id}/receive",
        json={"lines": [{"sku": sku, "condition": "new"}], **extra},
        headers=OPS,
    )
    assert r.status == 200, await r.text()
    return await r.json()


async def event_types(h: Hub, order_id: str) -> list[str]:
    async with h.store.connect() as c:
        return [e.type for e in await outbox.events_for(c, order_id)]


async def jobs_of(h: Hub, operation: str) -> list[Any]:
    async with h.store.connect() as c:
        return list((await c.execute(select(t.sync_jobs).where(t.sync_jobs.c.operation == operation))).all())


# ----------------------------------------------------------------------------- policy
async def test_a_return_past_the_window_is_rejected_with_the_policy_reason(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-100", qty=2), now() - timedelta(days=41))
    ret = await request_return(client, order.id)
    assert ret["status"] == "rejected"
    assert ret["decision_reason"] == "returned 41 days after delivery; the window is 30 days"
    events = await event_types(hub, order.id)
    assert "return.requested" in events and "return.approved" not in events
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 409
    assert "rejected" in (await r.json())["detail"]


async def test_a_return_within_the_window_for_an_auto_approved_reason_is_approved(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-101", qty=2), yesterday())
    ret = await request_return(client, order.id)
    assert ret["status"] == "approved" and ret["flags"] == []
    assert ret["lines"][0]["line_no"] == 1
    assert (await event_types(hub, order.id))[-2:] == ["return.requested", "return.approved"]


async def test_a_return_for_more_than_was_shipped_and_not_yet_returned_is_refused(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-102", qty=2), yesterday())
    r = await client.post(
        "/api/v1/returns",
        json={"order_id": order.id, "lines": [{"sku": "SKU-1", "quantity": 3, "reason": "defective"}]},
        headers=OPS,
    )
    assert r.status == 422
    assert "exceeds the 2 unit(s) shipped" in (await r.json())["detail"]
    await request_return(client, order.id, qty=1)
    r = await client.post(
        "/api/v1/returns",
        json={"order_id": order.id, "lines": [{"sku": "SKU-1", "quantity": 2, "reason": "defective"}]},
        headers=OPS,
    )
    assert r.status == 422 and "exceeds the 1 unit(s)" in (await r.json())["detail"]


async def test_an_unshipped_order_has_nothing_to_return(hub: Hub, client: Client) -> None:
    order = await place(hub, doc("R-103"))
    r = await client.post(
        "/api/v1/returns",
        json={"order_id": order.id, "lines": [{"sku": "SKU-1", "quantity": 1, "reason": "defective"}]},
        headers=OPS,
    )
    assert r.status == 422 and "exceeds the 0 unit(s)" in (await r.json())["detail"]


# ----------------------------------------------------------------------------- flags wait for ops
async def test_a_flagged_return_waits_for_ops_approval_and_is_not_refunded_before(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-200", price="600.00"), yesterday())
    ret = await request_return(client, order.id)
    assert ret["status"] == "requested"
    assert ret["needs_ops_approval"] is True
    assert ret["flags"] and ret["flags"][0].startswith("refund_value: refund of 600.00 EUR is over the 500")
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 409
    problem = await r.json()
    assert problem["title"] == "Return needs ops approval" and "/approve" in problem["detail"]
    r = await client.post(f"/api/v1/returns/{ret['id']}/approve", headers=READ)
    assert r.status == 403
    r = await client.post(f"/api/v1/returns/{ret['id']}/approve", json={"reason": "loyal customer"}, headers=OPS)
    assert r.status == 200
    approved = await r.json()
    assert approved["status"] == "approved" and approved["needs_ops_approval"] is False
    await receive_new(client, ret["id"])
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 201
    assert (await r.json())["amount"] == {"amount": "600.00", "currency": "EUR"}


async def test_a_receipt_that_weighs_wrong_holds_the_refund_until_ops_approve(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-201"), yesterday())
    ret = await request_return(client, order.id)
    assert ret["status"] == "approved"
    got = await receive_new(client, ret["id"], weight_grams=900, expected_weight_grams=500)
    assert got["status"] == "dispositioned"
    assert any(f.startswith("weight_mismatch: parcel weighs 900 g, expected 500 g") for f in got["flags"])
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 409
    assert await jobs_of(hub, "push_refund") == []
    r = await client.post(f"/api/v1/returns/{ret['id']}/approve", headers=OPS)
    assert r.status == 200 and (await r.json())["status"] == "dispositioned"
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 201


async def test_the_customers_history_flags_a_serial_returner(hub: Hub, client: Client) -> None:
    email = "serial@example.com"
    first = await delivered_order(hub, doc("R-202", email=email), yesterday())
    await request_return(client, first.id)
    second = await delivered_order(hub, doc("R-203", email=email), yesterday())
    ret = await request_return(client, second.id)
    # 1 earlier return over 2 orders is 50 %, not over the limit; a third order's return is 2 of 3
    assert ret["status"] == "approved"
    third = await delivered_order(hub, doc("R-204", email=email), yesterday())
    ret = await request_return(client, third.id)
    assert ret["status"] == "requested"
    assert any(f.startswith("return_rate: customer returned 2 of 3 orders") for f in ret["flags"])


# ----------------------------------------------------------------------------- restock
async def test_a_restocked_unit_lifts_atp_and_reallocates_a_backorder(hub: Hub, client: Client) -> None:
    async with hub.store.begin() as c:
        await inv.adjust(c, "SKU-2", "w1", 1, cause="receipt")
    first = await delivered_order(hub, doc("R-300", sku="SKU-2"), yesterday())
    waiting = await place(hub, doc("R-301", sku="SKU-2"))
    assert waiting.status == "backordered"
    ret = await request_return(client, first.id, reason="defective", sku="SKU-2")
    r = await client.post(
        "/api/v1/returns/{}/receive".format(ret["id"]),
        json={"lines": [{"sku": "SKU-2", "condition": "new"}]},
        headers=OPS,
    )
    assert r.status == 200
    got = await r.json()
    assert got["lines"][0]["disposition"] == "restock" and got["lines"][0]["location"] == "w1"
    async with hub.store.connect() as c:
        ledger = await inv.ledger(c, "SKU-2", "w1")
        after = await repo.get_order(c, waiting.id)
        level = await inv.get_level(c, "SKU-2", "w1")
    assert [(e.cause, e.delta_on_hand, e.ref) for e in ledger if e.cause == "return"] == [("return", 1, ret["id"])]
    assert after.status == "released"
    assert [(a.sku, a.quantity) for a in after.allocations] == [("SKU-2", 1)]
    assert (level.on_hand, level.reserved) == (1, 1)
    async with hub.store.connect() as c:
        changed = await outbox.events_for(c, "sku:SKU-2")
    assert any(e.type == "inventory.changed" and e.data["cause"] == "return" for e in changed)


async def test_a_unit_received_new_goes_back_to_the_channels_atp(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-302"), yesterday())

    async def atp() -> int:
        async with hub.store.connect() as c:
            levels = await inv.levels(c, ["SKU-1"])
        return atp_for_channel(levels, hub.config.locations, "shop", 0)

    before = await atp()
    ret = await request_return(client, order.id)
    await receive_new(client, ret["id"])
    assert await atp() == before + 1
    r = await client.get("/api/v1/inventory/SKU-1", headers=READ)
    assert (await r.json())["channels"] == [{"connection": "shop", "atp": before + 1}]


async def test_a_damaged_unit_is_disposed_of_and_not_restocked(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-303"), yesterday())
    async with hub.store.connect() as c:
        before = await inv.get_level(c, "SKU-1", "w1")
    ret = await request_return(client, order.id, reason="damaged")
    r = await client.post(
        f"/api/v1/returns/{ret['id']}/receive",
        json={"lines": [{"sku": "SKU-1", "condition": "damaged"}]},
        headers=OPS,
    )
    got = await r.json()
    assert got["lines"][0]["disposition"] == "dispose"
    async with hub.store.connect() as c:
        assert (await inv.get_level(c, "SKU-1", "w1")).on_hand == before.on_hand
    assert "return.received" in await event_types(hub, order.id)


async def test_receiving_a_return_that_is_not_approved_is_refused_naming_the_states(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-304"), yesterday())
    ret = await request_return(client, order.id, reason="changed_mind")
    assert ret["status"] == "requested" and ret["flags"] == []
    assert "not auto-approved" in ret["decision_reason"]
    r = await client.post(
        f"/api/v1/returns/{ret['id']}/receive", json={"lines": [{"sku": "SKU-1", "condition": "new"}]}, headers=OPS
    )
    assert r.status == 409
    assert "cannot go from 'requested' to 'received'" in (await r.json())["detail"]


# ----------------------------------------------------------------------------- refunds
def taxed_order_doc(ext: str) -> dict[str, Any]:
    """3 x 9.99 EUR less 1.00, 19 % VAT included, 4.90 shipping: the first unit refunds 9.99 - 0.34 (its share
    of the discount, largest remainder first) + the shipping = 14.55; the last two take the rest, 19.32."""
    m = lambda a: {"amount": a, "currency": "EUR"}  # noqa: E731
    d = toy.order_doc(ext, qty=3)
    d["taxes_included"] = True
    d["lines"] = [
        {
            "line_no": 1,
            "sku": "SKU-1",
            "quantity": 3,
            "unit_price": m("9.99"),
            "discount": m("1.00"),
            "tax_lines": [{"title": "MwSt", "rate": "0.19", "amount": m("4.63")}],
        }
    ]
    d["shipping_lines"] = [
        {"title": "DHL", "price": m("4.90"), "tax_lines": [{"title": "MwSt", "rate": "0.19", "amount": m("0.78")}]}
    ]
    d["totals"] = {
        "subtotal": m("28.97"),
        "shipping": m("4.90"),
        "tax": m("5.41"),
        "discount": m("1.00"),
        "total": m("33.87"),
    }
    return d


async def test_refunds_equal_calculate_refund_and_add_up_to_what_was_paid(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, taxed_order_doc("R-400"), yesterday())
    refunds: list[Refund] = []
    for qty in (1, 2):
        ret = await request_return(client, order.id, qty=qty)
        received = await receive_new(client, ret["id"])
        r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
        assert r.status == 201
        got = Refund.model_validate(await r.json())
        lines = [ReturnLine.model_validate(ln) for ln in received["lines"]]
        expected = calculate_refund(order, lines, previous_refunds=refunds, config=hub.config.returns)
        assert got.amount == expected.amount
        assert got.lines == list(expected.lines)
        assert got.shipping == expected.shipping and got.tax == expected.tax
        refunds.append(got)
    assert [r.amount for r in refunds] == [Money.of("14.55", "EUR"), Money.of("19.32", "EUR")]
    assert Money.sum((r.amount for r in refunds), "EUR") == order.totals.total

    r = await client.get(f"/api/v1/orders/{order.id}", headers=READ)
    trail = (await r.json())["money_trail"]
    assert trail["paid"] == {"amount": "33.87", "currency": "EUR"}
    assert trail["refunded"] == {"amount": "33.87", "currency": "EUR"}
    assert trail["outstanding"] == {"amount": "0.00", "currency": "EUR"}
    assert trail["over_refunded"] is False
    assert [x["id"] for x in trail["refunds"]] == [x.id for x in refunds]

    async with hub.store.begin() as c:  # a lost chargeback took the same money again
        await c.execute(
            insert(t.payment_disputes).values(
                order_id=order.id,
                kind="chargeback",
                amount=Decimal("5.00"),
                currency="EUR",
                status="lost",
                data={},
                created_at=now(),
            )
        )
    trail = (await (await client.get(f"/api/v1/orders/{order.id}", headers=READ)).json())["money_trail"]
    assert trail["disputed"] == {"amount": "5.00", "currency": "EUR"}
    assert trail["outstanding"] == {"amount": "-5.00", "currency": "EUR"}
    assert trail["over_refunded"] is True


async def test_a_refund_is_issued_and_its_jobs_enqueued_once_however_often_it_is_asked(
    hub: Hub, client: Client
) -> None:
    order = await delivered_order(hub, doc("R-401", qty=2), yesterday())
    ret = await request_return(client, order.id, qty=2)
    await receive_new(client, ret["id"])

    async def once() -> Any:
        async with hub.store.begin() as c:
            return await returns.refund_return(hub, c, ret["id"], actor="test")

    results = await asyncio.gather(*(once() for _ in range(4)))
    assert len({r.refund.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 200 and (await r.json())["id"] == results[0].refund.id

    push = await jobs_of(hub, "push_refund")
    credit = await jobs_of(hub, "post_credit_note")
    assert [(j.connection, j.payload) for j in push] == [("shop", {"refund_id": results[0].refund.id})]
    assert [(j.connection, j.payload) for j in credit] == [("erp", {"refund_id": results[0].refund.id})]
    assert (await event_types(hub, order.id)).count("refund.issued") == 1
    async with hub.store.connect() as c:
        n = (await c.execute(select(func.count()).select_from(t.refunds))).scalar_one()
    assert n == 1
    view = await client.get(f"/api/v1/returns/{ret['id']}", headers=READ)
    assert (await view.json())["status"] == "refunded"

    await drain(hub)  # the worker pushes the refund to the channel and the credit note to the ERP
    assert [j.status for j in await jobs_of(hub, "push_refund")] == ["done"]
    assert [j.result["external_id"] for j in await jobs_of(hub, "post_credit_note")] == [f"CN-{results[0].refund.id}"]


async def test_a_refund_records_the_refund_times_for_the_kpis(hub: Hub, client: Client) -> None:
    from hub.kpis_store import load_facts

    order = await delivered_order(hub, doc("R-402"), yesterday())
    ret = await request_return(client, order.id)
    await receive_new(client, ret["id"])
    await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    async with hub.store.connect() as c:
        facts = {f.order_id: f for f in await load_facts(c, order.placed_at, order.placed_at + timedelta(seconds=1))}
    fact = facts[order.id]
    assert fact.refund_requested_at is not None and fact.refund_issued_at is not None
    assert fact.refund_requested_at <= fact.refund_issued_at


async def test_an_order_line_can_be_refunded_without_a_return(hub: Hub) -> None:
    order = await place(hub, doc("R-403", qty=2))
    async with hub.store.begin() as c:
        ref = await returns.refund(hub, c, actor="ops", order_id=order.id, lines=[LineToRefund(1, 1)])
    assert ref.amount == Money.of("10.00", "EUR") and ref.return_id is None
    assert len(await jobs_of(hub, "push_refund")) == 1


class InspectOpened:
    """A plugin that sends opened items to refurbishment instead of straight back to stock."""

    @hookimpl
    def orderhub_return_disposition(self, line: ReturnLine, order: Order, config: Any) -> Any:
        return Disposition.REFURBISH if line.condition == "opened" else None


async def test_a_plugin_answering_the_disposition_hook_decides_before_the_default(hub: Hub, client: Client) -> None:
    hub.pm.register(InspectOpened())
    order = await delivered_order(hub, doc("R-500", qty=2), yesterday())
    async with hub.store.connect() as c:
        before = (await inv.get_level(c, "SKU-1", "w1")).on_hand
    ret = await request_return(client, order.id, qty=1)
    r = await client.post(
        f"/api/v1/returns/{ret['id']}/receive", json={"lines": [{"sku": "SKU-1", "condition": "opened"}]}, headers=OPS
    )
    assert (await r.json())["lines"][0]["disposition"] == "refurbish"
    async with hub.store.connect() as c:
        assert (await inv.get_level(c, "SKU-1", "w1")).on_hand == before
    ret = await request_return(client, order.id, qty=1)
    got = await receive_new(client, ret["id"])  # the plugin answers None for new: the default restocks
    assert got["lines"][0]["disposition"] == "restock"


async def test_a_sku_that_was_not_requested_is_flagged_and_not_restocked(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-501"), yesterday())
    ret = await request_return(client, order.id)
    r = await client.post(
        f"/api/v1/returns/{ret['id']}/receive",
        json={"lines": [{"sku": "SKU-1", "condition": "new"}, {"sku": "BRICK", "condition": "new", "quantity": 1}]},
        headers=OPS,
    )
    assert r.status == 200
    got = await r.json()
    assert got["flags"] == ["item_mismatch: BRICK: requested 0, received 1"]
    assert [ln["sku"] for ln in got["lines"]] == ["SKU-1"]
    async with hub.store.connect() as c:
        assert await inv.levels(c, ["BRICK"]) == []
    r = await client.post(f"/api/v1/returns/{ret['id']}/refund", headers=OPS)
    assert r.status == 409


async def test_the_same_return_request_with_an_idempotency_key_creates_one_return(hub: Hub, client: Client) -> None:
    order = await delivered_order(hub, doc("R-502", qty=3), yesterday())
    body = {"order_id": order.id, "lines": [{"sku": "SKU-1", "quantity": 1, "reason": "defective"}]}
    headers = {**OPS, "Idempotency-Key": "rma-7781"}
    first = await client.post("/api/v1/returns", json=body, headers=headers)
    again = await client.post("/api/v1/returns", json=body, headers=headers)
    assert first.status == again.status == 201
    assert (await first.json())["id"] == (await again.json())["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    async with hub.store.connect() as c:
        assert len((await c.execute(select(t.returns))).all()) == 1
