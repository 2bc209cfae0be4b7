"""What the channel did on its side: refunds and returns stored once, credit notes to the ERP, nothing
pushed back. Shopify payloads are tests/connectors/shopify/fixtures (Shopify's documented order 450789469
and its refund 509562969, mapped by the Shopify connector)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from connectors.shopify import ShopifyConnector, ShopifySettings
from hub.clock import now
from hub.errors import NotFound
from hub.model import Money, Refund, Return, ReturnLine, new_id
from hub.orders import service as orders
from hub.plugins import InboundEvent, RefundCreated, ReturnRequested
from hub.returns import LineToRefund
from hub.returns import service as returns
from hub.runtime import Hub
from hub.store import outbox
from hub.store import tables as t
from tests.returns_service.conftest import delivered_order, place
from tests.sync import toy

SHOPIFY = Path(__file__).parents[1] / "connectors" / "shopify" / "fixtures"


def shopify() -> ShopifyConnector:
    settings = ShopifySettings(shop_domain="test-shop.myshopify.com", access_token="shpat_x", client_secret="shpss_x")
    return ShopifyConnector("shop", settings)


def shopify_refund_message() -> RefundCreated:
    body = (SHOPIFY / "refunds_create.json").read_bytes()
    event = InboundEvent(event_id="b54557e4-refund", topic="refunds/create", object_key="order:450789469")
    (msg,) = shopify().parse_webhook(event, {}, body)
    assert isinstance(msg, RefundCreated)
    return msg


async def count(h: Hub, table: Any, *where: Any) -> int:
    async with h.store.connect() as c:
        return int((await c.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def apply(h: Hub, msg: Any) -> None:
    async with h.store.begin() as c:
        await orders.apply_messages(h, c, "shop", [msg], source="test")


async def test_a_channel_refund_is_stored_once_with_a_credit_note_and_no_push_back(hub: Hub) -> None:
    order = shopify().map_order(orjson.loads((SHOPIFY / "orders_create.json").read_bytes()))
    async with hub.store.begin() as c:
        order = await orders.ingest_order(hub, c, order)
    msg = shopify_refund_message()
    await apply(hub, msg)
    await asyncio.gather(*(apply(hub, msg) for _ in range(3)))  # replays, also concurrent
    await apply(hub, msg.model_copy(update={"refund": msg.refund.model_copy(update={"id": new_id("ref")})}))

    assert await count(hub, t.refunds) == 1
    async with hub.store.connect() as c:
        row = (await c.execute(select(t.refunds))).one()
        events = [e.type for e in await outbox.events_for(c, order.id)]
        trail = await returns.money_trail_for(c, order)
    assert (row.connection, row.external_id, row.order_id) == ("shop", "509562969", order.id)
    assert Refund.model_validate(row.data).amount == Money.of("209.00", "USD")
    assert events.count("refund.issued") == 1
    assert await count(hub, t.sync_jobs, t.sync_jobs.c.operation == "post_credit_note") == 1
    assert await count(hub, t.sync_jobs, t.sync_jobs.c.operation == "push_refund") == 0
    assert trail["paid"] == {"amount": "598.94", "currency": "USD"}
    assert trail["refunded"] == {"amount": "209.00", "currency": "USD"}
    assert trail["outstanding"] == {"amount": "389.94", "currency": "USD"}


async def test_a_channel_refund_for_an_unknown_order_waits_to_be_retried(hub: Hub) -> None:
    with pytest.raises(NotFound, match="unknown order 450789469; it will be retried"):
        await apply(hub, shopify_refund_message())
    assert await count(hub, t.refunds) == 0


async def test_the_channels_echo_of_a_refund_the_hub_pushed_is_not_counted_twice(hub: Hub) -> None:
    order = await place(hub, toy.order_doc("C-100", qty=2))
    async with hub.store.begin() as c:
        ref = await returns.refund(hub, c, actor="ops", order_id=order.id, lines=[LineToRefund(1, 1)])
    echo = Refund(
        id=new_id("ref"), order_id="C-100", external_id="R-77", amount=Money.of("10.00", "EUR"), created_at=now()
    )
    await apply(hub, RefundCreated(external_order_id="C-100", refund=echo))
    async with hub.store.connect() as c:
        rows = (await c.execute(select(t.refunds))).all()
    assert [(r.id, r.connection, r.external_id) for r in rows] == [(ref.id, "shop", "R-77")]
    assert await count(hub, t.sync_jobs, t.sync_jobs.c.operation == "post_credit_note") == 1


async def test_a_channel_return_is_created_once_through_the_policy(hub: Hub) -> None:
    order = await delivered_order(hub, toy.order_doc("C-200", qty=2), now())
    ret = Return(
        id=new_id("ret"),
        order_id="C-200",
        external_id="RMA-1",
        lines=[ReturnLine(sku="SKU-1", quantity=1, reason="defective")],
        requested_at=now(),
    )
    msg = ReturnRequested(external_order_id="C-200", ret=ret)
    await apply(hub, msg)
    await apply(hub, msg)
    async with hub.store.connect() as c:
        rows = (await c.execute(select(t.returns))).all()
    assert len(rows) == 1
    assert (rows[0].connection, rows[0].external_id, rows[0].order_id, rows[0].status) == (
        "shop",
        "RMA-1",
        order.id,
        "approved",
    )
