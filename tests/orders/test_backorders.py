from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from hub.model import Order, OrderStatus, new_id
from hub.orders import backorders, service
from hub.runtime import Hub
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from tests.sync import toy


def _order(ext: str, placed: datetime, qty: int = 2) -> Order:
    doc = toy.order_doc(ext, qty=qty, sku="SLOW")
    doc["placed_at"] = placed.isoformat()
    return Order.model_validate({**doc, "id": new_id("ord"), "connection": "shop"})


async def _place(hub: Hub, o: Order) -> Order:
    async with hub.store.begin() as c:
        return await service.ingest_order(hub, c, o)


async def test_expected_receipts_give_backorders_a_promise_date(net_hub: Hub) -> None:
    first = await _place(net_hub, _order("b1", datetime.now(UTC) - timedelta(hours=2)))
    second = await _place(net_hub, _order("b2", datetime.now(UTC) - timedelta(hours=1)))
    assert first.status == second.status == OrderStatus.BACKORDERED
    soon = datetime.now(UTC) + timedelta(days=3)
    later = datetime.now(UTC) + timedelta(days=10)
    await backorders.add_expected_receipt(net_hub, "SLOW", "berlin", 2, soon)
    await backorders.add_expected_receipt(net_hub, "SLOW", "berlin", 2, later)
    async with net_hub.store.connect() as c:
        a = await repo.get_order(c, first.id)
        b = await repo.get_order(c, second.id)
    assert a.promise is not None and a.promise.ship_by == soon  # the oldest gets the first receipt
    assert b.promise is not None and b.promise.ship_by == later
    assert a.decisions[-1].kind == "backorder_promise"


async def test_backorder_past_its_age_is_flagged_and_evented(net_hub: Hub) -> None:
    net_hub.config.allocation.backorder_max_age_days = 3
    old = await _place(net_hub, _order("old", datetime.now(UTC) - timedelta(days=5)))
    young = await _place(net_hub, _order("young", datetime.now(UTC) - timedelta(days=1)))
    result = await backorders.sweep(net_hub)
    assert result["flagged"] == 1
    async with net_hub.store.connect() as c:
        types = [e.type for e in await outbox.events_for(c, old.id)]
        flagged = dict((await c.execute(select(t.backorders.c.order_id, t.backorders.c.flagged_at))).all())
    assert types.count("order.backordered") == 2  # when it was backordered, and when it expired
    assert flagged[old.id] is not None and flagged[young.id] is None
    assert (await backorders.sweep(net_hub))["flagged"] == 0  # flagged once


async def test_backorder_past_its_age_is_cancelled_when_the_policy_says_so(net_hub: Hub) -> None:
    net_hub.config.allocation.backorder_max_age_days = 3
    net_hub.config.allocation.backorder_expired_action = "cancel"
    old = await _place(net_hub, _order("old-c", datetime.now(UTC) - timedelta(days=5)))
    assert (await backorders.sweep(net_hub))["cancelled"] == 1
    async with net_hub.store.connect() as c:
        o = await repo.get_order(c, old.id)
        left = (await c.execute(select(t.backorders).where(t.backorders.c.order_id == old.id))).all()
    assert o.status == OrderStatus.CANCELLED and left == []
