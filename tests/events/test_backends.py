"""The engine's SQL (claims, ordering, lease fence, fan-out) on both backends: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from standardwebhooks.webhooks import Webhook
from webhook_helpers import MiniHub, Partner, add_endpoint, drain, emit, inventory, make_config

from hub import events
from hub.events._engine import _claim
from hub.store import Store


async def test_engine_delivers_in_order_with_retries_and_leases(store: Store, partner: Partner) -> None:
    hub = MiniHub(store=store, config=make_config())
    try:
        ep = await add_endpoint(hub, partner.url())
        partner.on("/hook", 500)
        a1 = await emit(hub, "inventory.changed", inventory("A", 1), object_id="A")
        a2 = await emit(hub, "inventory.changed", inventory("A", 2), object_id="A")
        b1 = await emit(hub, "inventory.changed", inventory("B", 1), object_id="B")

        assert await events.fan_out(hub) == 3
        [first, b_claim] = await _claim(hub, 10, lease_seconds=0.2)  # A1 and B1; A2 waits behind A1
        assert {first.event.id, b_claim.event.id} == {a1, b1}
        await asyncio.sleep(0.3)  # that worker died; its leases expire
        await drain(hub)

        ids = [r.headers["webhook-id"] for r in partner.requests()]
        assert [i for i in ids if i != b1] == [a1, a1, a2]
        for r in partner.requests():
            Webhook(ep.secret).verify(r.body, r.headers)
        items, _ = await events.list_deliveries(hub)
        assert {d.status for d in items} == {"delivered"}
    finally:
        await events.close(hub)
