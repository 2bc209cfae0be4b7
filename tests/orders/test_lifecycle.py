"""An order's life through the hub: holds, allocation, fulfilment, shipment, tracking, cancellation."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import respx
from sqlalchemy import select

from hub.model import Order, OrderStatus, PaymentStatus, TrackingEvent, TrackingStatus, new_id
from hub.orders import service
from hub.runtime import Hub
from hub.store import inventory as inv
from hub.store import orders as repo
from hub.store import outbox
from hub.store import tables as t
from hub.sync import inbox, jobs
from tests.sync import toy
from tests.sync.conftest import drain, webhook


def _order(ext: str, qty: int = 1, sku: str = "A", **over: object) -> Order:
    doc = {**toy.order_doc(ext, qty=qty, sku=sku), "id": new_id("ord"), "connection": "shop", **over}
    return Order.model_validate(doc)


async def _stock(hub: Hub, **levels: int) -> None:
    async with hub.store.begin() as c:
        for key, qty in levels.items():
            sku, loc = key.split("__")
            await inv.adjust(c, sku, loc, qty, cause="receipt")


async def _ingest(hub: Hub, o: Order) -> Order:
    async with hub.store.begin() as c:
        return await service.ingest_order(hub, c, o)


async def _ship(hub: Hub, order: Order, lines: dict[str, int], tracking: str) -> None:
    ful = order.allocations[0].fulfillment_id
    h, b = webhook({"id": f"ship-{tracking}", "reference": ful, "tracking": tracking, "lines": lines})
    await inbox.accept(hub, "wms", h, b)
    await drain(hub)


async def test_unpaid_order_is_held_then_released_by_payment(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=5)
    o = await _ingest(net_hub, _order("p1", payment_status="pending"))
    assert o.status == OrderStatus.ON_HOLD
    assert [h.kind for h in o.active_holds] == ["payment"]
    paid = _order("p1", payment_status="paid", source_updated_at="2026-01-01T00:05:00+00:00")
    o2 = await _ingest(net_hub, paid)
    assert o2.status == OrderStatus.RELEASED and o2.id == o.id
    assert o2.holds[0].released_by == "payment"


async def test_bad_address_hold_is_released_by_ops(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=5)
    doc = toy.order_doc("addr", sku="A")
    doc["shipping_address"] = {"country": "DE", "postal_code": "ABC"}
    o = await _ingest(net_hub, Order.model_validate({**doc, "id": new_id("ord"), "connection": "shop"}))
    assert o.status == OrderStatus.ON_HOLD and o.active_holds[0].kind == "address"
    async with net_hub.store.begin() as c:
        released = await service.release_hold(net_hub, c, o, actor="ops")
    assert released.status == OrderStatus.RELEASED


async def test_nearest_location_and_explanation_are_recorded(net_hub: Hub) -> None:
    net_hub.config.allocation.strategy = "nearest"
    await _stock(net_hub, A__berlin=5, A__paris=5)
    doc = toy.order_doc("near", sku="A")
    doc["shipping_address"] = {
        "line1": "1 Rue",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
        "latitude": 48.87,
        "longitude": 2.33,
    }
    o = await _ingest(net_hub, Order.model_validate({**doc, "id": new_id("ord"), "connection": "shop"}))
    assert [a.location for a in o.allocations] == ["paris"]
    d = [x for x in o.decisions if x.kind == "allocation"][-1]
    assert d.details["strategy"] == "nearest" and d.details["chosen"] == ["paris"]
    assert {c["location"] for c in d.details["candidates"]} >= {"paris", "berlin"}
    assert o.promise is not None and o.promise.ship_by is not None


async def test_split_shipment_partial_then_full_then_delivered(net_hub: Hub, router: respx.Router) -> None:
    await _stock(net_hub, A__berlin=1, A__munich=2)
    o = await _ingest(net_hub, _order("split", qty=3))
    assert sorted((a.location, a.quantity) for a in o.allocations) == [("berlin", 1), ("munich", 2)]
    assert o.status == OrderStatus.RELEASED
    async with net_hub.store.connect() as c:  # each partner event carries its request as stored
        requested = [e.data for e in await outbox.events_for(c, o.id) if e.type == "fulfillment.requested"]
        stored = [r.data for r in (await c.execute(select(t.fulfillments).where(t.fulfillments.c.order_id == o.id)))]
    assert sorted(requested, key=lambda d: d["id"]) == sorted(stored, key=lambda d: d["id"])
    assert sorted((d["location"], d["lines"][0]["quantity"]) for d in requested) == [("berlin", 1), ("munich", 2)]
    await drain(net_hub)
    async with net_hub.store.connect() as c:
        o = await repo.get_order(c, o.id)
    berlin = next(a for a in o.allocations if a.location == "berlin")
    munich = next(a for a in o.allocations if a.location == "munich")
    await _ship(net_hub, o.model_copy(update={"allocations": [berlin]}), {"A": 1}, "T1")
    async with net_hub.store.connect() as c:
        o = await repo.get_order(c, o.id)
        lvl = await inv.get_level(c, "A", "berlin")
    assert o.status == OrderStatus.PARTIALLY_SHIPPED
    assert (lvl.on_hand, lvl.reserved) == (0, 0)
    await _ship(net_hub, o.model_copy(update={"allocations": [munich]}), {"A": 2}, "T2")
    async with net_hub.store.begin() as c:
        o = await repo.get_order(c, o.id)
        assert o.status == OrderStatus.SHIPPED
        for tn in ("T1", "T2"):
            ev = TrackingEvent(tracking_number=tn, status=TrackingStatus.DELIVERED, occurred_at=datetime.now(UTC))
            await service.tracking_updated(net_hub, c, "carrier", ev)
        o = await repo.get_order(c, o.id)
        types = [e.type for e in await outbox.events_for(c, o.id)]
    assert o.status == OrderStatus.DELIVERED
    assert types.count("shipment.shipped") == 2 and types.count("shipment.delivered") == 2
    assert router.routes["fulfillments"].call_count == 2  # tracking pushed to the channel per shipment


async def test_cancel_releases_stock_and_cancels_at_the_3pl(net_hub: Hub, router: respx.Router) -> None:
    await _stock(net_hub, A__berlin=2)
    o = await _ingest(net_hub, _order("c1", qty=2))
    await drain(net_hub)  # submitted to the 3PL
    async with net_hub.store.begin() as c:
        o = await repo.get_order(c, o.id)
        o = await service.cancel(net_hub, c, o, reason="customer", actor="ops")
    await drain(net_hub)
    async with net_hub.store.connect() as c:
        lvl = await inv.get_level(c, "A", "berlin")
        ops = [
            r.operation
            for r in (await c.execute(select(t.sync_jobs.c.operation).where(t.sync_jobs.c.status == "done"))).all()
        ]
    assert o.status == OrderStatus.CANCELLED
    assert (lvl.on_hand, lvl.reserved) == (2, 0)
    assert "cancel_fulfillment" in ops and "push_cancellation" in ops
    assert router.routes["cancel"].call_count == 2  # once at the 3PL, once at the channel


async def test_partial_cancel_keeps_the_rest(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=3)
    o = await _ingest(net_hub, _order("pc", qty=3))
    async with net_hub.store.begin() as c:
        o = await service.cancel(net_hub, c, o, reason="out of patience", actor="ops", lines={1: 1})
        lvl = await inv.get_level(c, "A", "berlin")
    assert o.status != OrderStatus.CANCELLED
    assert o.lines[0].open_quantity == 2
    assert lvl.reserved == 2


async def test_cancel_after_shipment_is_refused_and_recorded(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=1)
    o = await _ingest(net_hub, _order("late"))
    await drain(net_hub)
    await _ship(net_hub, o, {"A": 1}, "TL")
    async with net_hub.store.begin() as c:
        o = await repo.get_order(c, o.id)
    try:
        async with net_hub.store.begin() as c:
            await service.cancel(net_hub, c, o, reason="too late", actor="ops")
        raise AssertionError("cancel after shipment must be refused")
    except Exception as exc:
        assert "cannot go from 'shipped' to 'cancelled'" in str(exc)


async def test_3pl_refusing_cancel_after_pick_becomes_a_visible_failure(net_hub: Hub, router: respx.Router) -> None:
    def cancel(request: httpx.Request) -> httpx.Response:
        if request.url.host == "toy-wms.test":
            return httpx.Response(409, json={"error": "already picked"})
        return httpx.Response(200, json={})

    router.routes["cancel"].side_effect = cancel
    await _stock(net_hub, A__berlin=1)
    o = await _ingest(net_hub, _order("picked"))
    await drain(net_hub)
    async with net_hub.store.begin() as c:
        o = await repo.get_order(c, o.id)
        await service.cancel(net_hub, c, o, reason="customer", actor="ops")
    await drain(net_hub)
    async with net_hub.store.connect() as c:
        f = (await c.execute(select(t.sync_failures).where(t.sync_failures.c.operation == "cancel_fulfillment"))).one()
        timeline = await repo.timeline(c, o.id)
        kpi = (await c.execute(select(t.kpi_facts).where(t.kpi_facts.c.order_id == o.id))).one()
    assert "already picked" in f.last_error
    assert any(e["kind"] == "exception" and "already picked" in (e["detail"] or "") for e in timeline)
    assert kpi.had_exception


async def test_fraud_hold_on_country_mismatch_over_threshold(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=500)
    doc = toy.order_doc("fraud", qty=200, sku="A")  # 2,000 EUR
    doc["billing_address"] = {"line1": "x", "city": "Lagos", "country": "NG", "postal_code": "100001"}
    o = await _ingest(
        net_hub,
        Order.model_validate({**doc, "id": new_id("ord"), "connection": "shop", "payment_status": PaymentStatus.PAID}),
    )
    assert o.status == OrderStatus.ON_HOLD and o.active_holds[0].kind == "fraud"
    async with net_hub.store.connect() as c:
        types = [e.type for e in await outbox.events_for(c, o.id)]
    assert types == ["order.created", "order.on_hold"]


async def test_job_keys_make_fulfilment_submission_idempotent(net_hub: Hub) -> None:
    await _stock(net_hub, A__berlin=1)
    o = await _ingest(net_hub, _order("idem"))
    ful = o.allocations[0].fulfillment_id
    async with net_hub.store.begin() as c:
        await jobs.enqueue(c, "wms", "submit_fulfillment", ful, {}, key=f"submit_fulfillment:{ful}")
        await jobs.enqueue(c, "wms", "submit_fulfillment", ful, {"again": 1}, key=f"submit_fulfillment:{ful}")
    async with net_hub.store.connect() as c:
        rows = (
            await c.execute(select(t.sync_jobs).where(t.sync_jobs.c.idempotency_key == f"submit_fulfillment:{ful}"))
        ).all()
    assert len(rows) == 1 and rows[0].payload == {"order_id": o.id}
