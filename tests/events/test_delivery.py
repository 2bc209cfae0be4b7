"""The delivery engine against a local partner receiver, on the real PostgreSQL.

Signatures are checked with the reference ``standardwebhooks`` library (PyPI, the Python
library of standard-webhooks/standard-webhooks), not only with hub.signing.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from webhook_helpers import MiniHub, Partner, add_endpoint, drain, emit, inventory, order

from hub import clock, events
from hub.events._engine import _claim, _record, _Result
from hub.model import Order, SyncFailed
from hub.store import tables as t

pytestmark = pytest.mark.postgres


def verified(secret: str, rec: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(rec.body, rec.headers)
    return payload


async def delivery_rows(hub: MiniHub) -> list[Any]:
    async with hub.store.connect() as conn:
        return list((await conn.execute(select(t.webhook_deliveries).order_by(t.webhook_deliveries.c.event_seq))).all())


async def test_delivery_follows_standard_webhooks_and_verifies_with_the_reference_library(
    hub: MiniHub, partner: Partner
) -> None:
    ep = await add_endpoint(hub, partner.url())
    o = order()
    event_id = await emit(hub, "order.created", o, object_id=o.id, connection="shop")

    assert await events.run_once(hub) == 1

    [rec] = partner.requests()
    assert rec.headers["webhook-id"] == event_id
    assert abs(int(rec.headers["webhook-timestamp"]) - time.time()) < 60
    assert rec.headers["webhook-signature"].startswith("v1,")
    assert rec.headers["Content-Type"] == "application/json"
    payload = verified(ep.secret, rec)
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "order.created"
    assert Order.model_validate(payload["data"]) == o
    with pytest.raises(WebhookVerificationError):
        Webhook(ep.secret).verify(rec.body.replace(b"1001", b"1002"), rec.headers)

    detail = await events.get_delivery(hub, (await delivery_rows(hub))[0].id)
    assert detail.status == "delivered"
    assert detail.attempts == 1
    [attempt] = detail.log
    assert attempt.status_code == 204
    assert attempt.latency_ms is not None and attempt.latency_ms >= 0


async def test_endpoint_failing_twice_gets_the_event_a_third_time_with_the_same_webhook_id(
    hub: MiniHub, partner: Partner
) -> None:
    ep = await add_endpoint(hub, partner.url())
    partner.on("/hook", 500, (503, {}, b"maintenance"))
    event_id = await emit(hub, "inventory.changed", inventory(), object_id="A")

    assert await drain(hub) == 3

    reqs = partner.requests()
    assert [r.status for r in reqs] == [500, 503, 204]
    assert {r.headers["webhook-id"] for r in reqs} == {event_id}
    assert len({r.body for r in reqs}) == 1, "the body is the same on every attempt"
    for r in reqs:
        verified(ep.secret, r)
    [row] = await delivery_rows(hub)
    detail = await events.get_delivery(hub, row.id)
    assert (detail.status, detail.attempts) == ("delivered", 3)
    assert [a.status_code for a in detail.log] == [500, 503, 204]
    assert detail.log[1].response_snippet == "maintenance"


async def test_retries_wait_for_the_schedule_and_fail_after_the_last(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(retry_schedule=[300])
    await add_endpoint(hub, partner.url())
    partner.on("/hook", 500, 500)
    await emit(hub, "inventory.changed", inventory(), object_id="A")

    before = clock.now()
    assert await events.run_once(hub) == 1
    [row] = await delivery_rows(hub)
    assert row.status == "pending"
    assert timedelta(seconds=299) < row.next_attempt_at - before < timedelta(seconds=310)
    assert await events.run_once(hub) == 0, "not due before the schedule says so"

    async with hub.store.begin() as conn:
        await conn.execute(update(t.webhook_deliveries).values(next_attempt_at=clock.now()))
    assert await events.run_once(hub) == 1
    [row] = await delivery_rows(hub)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert await events.run_once(hub) == 0


async def test_retry_after_of_a_429_is_honoured(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(retry_schedule=[5])
    await add_endpoint(hub, partner.url())
    partner.on("/hook", (429, {"Retry-After": "120"}, b"slow down"))
    await emit(hub, "inventory.changed", inventory(), object_id="A")

    before = clock.now()
    await events.run_once(hub)
    [row] = await delivery_rows(hub)
    assert row.status == "pending" and row.last_status_code == 429
    assert timedelta(seconds=119) < row.next_attempt_at - before < timedelta(seconds=130)


async def test_timeout_is_recorded_and_retried(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(timeout_seconds=0.3)
    await add_endpoint(hub, partner.url())
    partner.delay["/hook"] = 1.0
    await emit(hub, "inventory.changed", inventory(), object_id="A")

    await events.run_once(hub)
    [row] = await delivery_rows(hub)
    assert row.status == "pending" and row.attempts == 1
    [attempt] = (await events.get_delivery(hub, row.id)).log
    assert attempt.status_code is None
    assert attempt.error == "no answer within 0.3 s"


async def test_redirect_is_a_failure_not_followed(hub: MiniHub, partner: Partner) -> None:
    await add_endpoint(hub, partner.url())
    partner.on("/hook", (302, {"Location": partner.url("/elsewhere")}, b""))
    await emit(hub, "inventory.changed", inventory(), object_id="A")

    await events.run_once(hub)
    assert partner.requests("/elsewhere") == []
    [row] = await delivery_rows(hub)
    assert (row.status, row.last_status_code) == ("pending", 302)


async def test_event_committed_before_a_crash_is_delivered_by_a_fresh_engine(make_hub: Any, partner: Partner) -> None:
    first = make_hub()
    await add_endpoint(first, partner.url())
    kept = await emit(first, "inventory.changed", inventory(), object_id="A")
    with pytest.raises(RuntimeError):
        async with first.store.begin() as conn:
            from hub.store import outbox

            await outbox.emit(conn, "inventory.changed", inventory("B"), object_id="B")
            raise RuntimeError("the change failed: its event must not be sent")
    # the process dies here, before any fan-out or delivery; a new worker starts
    restarted = make_hub()
    assert await drain(restarted) == 1
    assert [r.headers["webhook-id"] for r in partner.requests()] == [kept]


async def test_claim_whose_lease_expired_is_taken_over_and_the_late_result_is_ignored(
    hub: MiniHub, partner: Partner
) -> None:
    await add_endpoint(hub, partner.url())
    event_id = await emit(hub, "inventory.changed", inventory(), object_id="A")
    await events.fan_out(hub)
    [crashed] = await _claim(hub, 10, lease_seconds=0.2)  # a worker claims, then dies
    assert await events.deliver_due(hub) == 0, "a live lease is respected"

    await asyncio.sleep(0.3)
    assert await events.deliver_due(hub) == 1
    [row] = await delivery_rows(hub)
    assert row.status == "delivered"
    assert [r.headers["webhook-id"] for r in partner.requests()] == [event_id]

    # the first worker wakes up and reports a failure: the attempt is logged, the outcome is not changed
    assert await _record(hub, crashed, _Result(status_code=500, error=None)) == "superseded"
    [row] = await delivery_rows(hub)
    assert row.status == "delivered"


async def test_rotation_signs_with_both_secrets_for_24_hours(hub: MiniHub, partner: Partner) -> None:
    old = await add_endpoint(hub, partner.url())
    new = await events.rotate_secret(hub, old.id)
    assert new.secret != old.secret
    assert new.previous_secret_expires_at is not None
    assert timedelta(hours=23, minutes=59) < new.previous_secret_expires_at - clock.now() <= timedelta(hours=24)
    await emit(hub, "inventory.changed", inventory(), object_id="A")
    await events.run_once(hub)

    [rec] = partner.requests()
    sigs = rec.headers["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    assert verified(old.secret, rec) == verified(new.secret, rec)

    async with hub.store.begin() as conn:  # 24 hours later
        await conn.execute(update(t.webhook_endpoints).values(previous_secret_expires_at=clock.now()))
    await emit(hub, "inventory.changed", inventory(on_hand=4), object_id="A")
    await events.run_once(hub)
    later = partner.requests()[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    verified(new.secret, later)
    with pytest.raises(WebhookVerificationError):
        verified(old.secret, later)


async def test_events_of_one_object_wait_for_the_earlier_one(hub: MiniHub, partner: Partner) -> None:
    await add_endpoint(hub, partner.url())
    partner.on("/hook", 500)  # the first request (A1) fails
    a1 = await emit(hub, "inventory.changed", inventory("A", 1), object_id="A")
    a2 = await emit(hub, "inventory.changed", inventory("A", 2), object_id="A")
    b1 = await emit(hub, "inventory.changed", inventory("B", 1), object_id="B")
    a3 = await emit(hub, "inventory.changed", inventory("A", 3), object_id="A")

    assert await events.run_once(hub) == 2
    assert [r.headers["webhook-id"] for r in partner.requests()] == [a1, b1], "A2 waits while A1 is undelivered"
    await drain(hub)
    ids = [r.headers["webhook-id"] for r in partner.requests()]
    assert [i for i in ids if i != b1] == [a1, a1, a2, a3]


async def test_concurrency_per_endpoint_is_bounded(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(max_concurrency_per_endpoint=2)
    await add_endpoint(hub, partner.url())
    partner.delay["/hook"] = 0.2
    for i in range(6):
        await emit(hub, "inventory.changed", inventory(f"S{i}"), object_id=f"S{i}")

    assert await events.run_once(hub) == 2
    assert await drain(hub) == 4
    assert partner.max_inflight["/hook"] == 2


async def test_slow_partner_does_not_hold_back_the_others(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(max_concurrency_per_endpoint=1)
    await add_endpoint(hub, partner.url("/slow"))
    await add_endpoint(hub, partner.url("/fast"))
    partner.delay["/slow"] = 5.0
    for i in range(4):
        await emit(hub, "inventory.changed", inventory(f"S{i}"), object_id=f"S{i}")

    stop = asyncio.Event()
    task = asyncio.create_task(events.serve(hub, stop, poll_interval=0.05))
    for _ in range(2000):  # until the fast partner has all four (bounded)
        if len([r for r in partner.requests("/fast") if r.status]) == 4:
            break
        await asyncio.sleep(0.01)
    # ordering, not timing: every fast delivery finished while the slow partner was still answering its first
    slow_answered = len([r for r in partner.requests("/slow") if r.status])
    stop.set()
    await task

    assert len(partner.requests("/fast")) == 4
    assert slow_answered == 0, "the fast partner waited behind the slow one"
    assert partner.max_inflight["/slow"] == 1
    assert len(partner.requests("/slow")) <= 2


async def test_endpoint_failing_past_the_window_is_disabled_with_a_sync_failed_event(
    hub: MiniHub, partner: Partner
) -> None:
    ep = await add_endpoint(hub, partner.url(), ["inventory.changed"])
    watcher = await add_endpoint(hub, partner.url("/ops"), ["sync.failed"])
    partner.on("/hook", 500, 500)
    await emit(hub, "inventory.changed", inventory("A"), object_id="A")
    await emit(hub, "inventory.changed", inventory("B"), object_id="B")
    await events.run_once(hub)
    assert (await events.get_endpoint(hub, ep.id)).failing_since is not None

    async with hub.store.begin() as conn:  # five days and a bit later, still failing
        await conn.execute(
            update(t.webhook_endpoints)
            .where(t.webhook_endpoints.c.id == ep.id)
            .values(failing_since=clock.now() - timedelta(days=5, minutes=1))
        )
    partner.on("/hook", 500, 500)
    await events.run_once(hub)

    assert (await events.get_endpoint(hub, ep.id)).status == "disabled"
    rows = [r for r in await delivery_rows(hub) if r.endpoint_id == ep.id]
    assert {r.status for r in rows} == {"failed"}
    await drain(hub)
    [alert] = partner.requests("/ops")
    payload = verified(watcher.secret, alert)
    assert payload["type"] == "sync.failed"
    failed = SyncFailed.model_validate(payload["data"])
    assert failed.endpoint_id == ep.id
    assert "more than 5 days" in failed.error and "/replay" in failed.error
    assert partner.url() not in failed.error or "127.0.0.1" in failed.error


async def test_410_gone_disables_the_endpoint_at_once(hub: MiniHub, partner: Partner) -> None:
    ep = await add_endpoint(hub, partner.url(), ["inventory.changed"])
    partner.on("/hook", 410)
    await emit(hub, "inventory.changed", inventory("A"), object_id="A")
    await emit(hub, "inventory.changed", inventory("A", 2), object_id="A")
    await drain(hub)

    assert (await events.get_endpoint(hub, ep.id)).status == "disabled"
    assert len(partner.requests()) == 1
    async with hub.store.connect() as conn:
        types = (await conn.execute(select(t.outbox.c.type, t.outbox.c.object_id))).all()
    assert ("sync.failed", ep.id) in [tuple(x) for x in types]


async def test_response_body_is_read_only_up_to_the_limit(hub: MiniHub, partner: Partner) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        for _ in range(400):  # 40 MB over 20 s unless the client hangs up
            await resp.write(b"x" * 100_000)
            await asyncio.sleep(0.05)
        return resp

    await add_endpoint(hub, partner.url())
    partner.on("/hook", endless, (200, {}, b"y" * 1_000_000))
    await emit(hub, "inventory.changed", inventory("A"), object_id="A")
    await emit(hub, "inventory.changed", inventory("B"), object_id="B")

    started = time.monotonic()
    await drain(hub)
    assert time.monotonic() - started < 3
    for row in await delivery_rows(hub):
        detail = await events.get_delivery(hub, row.id)
        assert detail.status == "delivered"
        assert detail.log[0].response_snippet is not None
        assert len(detail.log[0].response_snippet) == events.RESPONSE_LIMIT


async def test_fan_out_matches_event_types_and_connection_and_is_idempotent(hub: MiniHub, partner: Partner) -> None:
    all_ = await add_endpoint(hub, partner.url("/all"))
    orders_only = await add_endpoint(hub, partner.url("/orders"), ["order.created"])
    shop_only = await add_endpoint(hub, partner.url("/shop"), ["*"], connection="shop")
    gone = await add_endpoint(hub, partner.url("/gone"))
    await events.delete_endpoint(hub, gone.id)
    o = order()
    created = await emit(hub, "order.created", o, object_id=o.id, connection="shop")
    other = await emit(hub, "order.created", order(connection="amazon"), object_id="x", connection="amazon")
    inv = await emit(hub, "inventory.changed", inventory(), object_id="A")

    assert await events.fan_out(hub) == 3 + 2 + 1
    assert await events.fan_out(hub) == 0
    got = {(r.endpoint_id, r.event_id) for r in await delivery_rows(hub)}
    assert got == {
        (all_.id, created),
        (all_.id, other),
        (all_.id, inv),
        (orders_only.id, created),
        (orders_only.id, other),
        (shop_only.id, created),
    }


async def test_replayed_delivery_is_sent_again_with_the_same_webhook_id(make_hub: Any, partner: Partner) -> None:
    hub = make_hub(retry_schedule=[])
    await add_endpoint(hub, partner.url())
    partner.on("/hook", 500)
    event_id = await emit(hub, "inventory.changed", inventory(), object_id="A")
    await drain(hub)
    [row] = await delivery_rows(hub)
    assert row.status == "failed"

    replayed = await events.replay_delivery(hub, row.id)
    assert (replayed.status, replayed.attempts) == ("pending", 0)
    await drain(hub)
    assert [r.headers["webhook-id"] for r in partner.requests()] == [event_id, event_id]
    assert [r.status for r in partner.requests()] == [500, 204]


async def test_endpoint_replay_reenables_it_and_sends_what_it_missed(hub: MiniHub, partner: Partner) -> None:
    since = clock.now()
    ep = await add_endpoint(hub, partner.url(), ["inventory.changed"])
    partner.on("/hook", 410)
    first = await emit(hub, "inventory.changed", inventory("A"), object_id="A")
    await drain(hub)
    assert (await events.get_endpoint(hub, ep.id)).status == "disabled"
    missed = await emit(hub, "inventory.changed", inventory("B"), object_id="B")  # while disabled
    await drain(hub)

    result = await events.replay_endpoint(hub, ep.id, since)
    assert (result.replayed, result.backfilled, result.reenabled) == (1, 1, True)
    await drain(hub)
    assert (await events.get_endpoint(hub, ep.id)).status == "active"
    assert [r.headers["webhook-id"] for r in partner.requests()] == [first, first, missed]


async def test_partner_rebuilds_each_order_from_the_events_alone(hub: MiniHub, partner: Partner) -> None:
    """A receiver that keeps the latest accepted event per order id ends with the hub's final orders."""
    order_events = ["order.created", "order.updated", "order.on_hold", "order.allocated", "order.backordered"]
    ep = await add_endpoint(hub, partner.url(), [*order_events, "order.cancelled"])
    state: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        payload = Webhook(ep.secret).verify(body, dict(request.headers))
        if len(seen) % 3 == 1 and request.headers["webhook-id"] not in seen:
            seen.add(request.headers["webhook-id"])
            return web.Response(status=503)  # every third new event fails once
        seen.add(request.headers["webhook-id"])
        state[payload["data"]["id"]] = payload["data"]
        return web.Response(status=200)

    partner.on("/hook", *([receiver] * 100))
    one, two = order(), order(external_id="1002", status="received")
    flows = {
        one.id: ["on_hold", "received", "allocated", "released", "shipped", "delivered"],
        two.id: ["backordered", "allocated", "cancelled"],
    }
    kinds = {
        "on_hold": "order.on_hold",
        "allocated": "order.allocated",
        "backordered": "order.backordered",
        "cancelled": "order.cancelled",
    }
    current = {one.id: one, two.id: two}
    await emit(hub, "order.created", one, object_id=one.id, connection="shop")
    await emit(hub, "order.created", two, object_id=two.id, connection="shop")
    for step in range(max(len(f) for f in flows.values())):
        for oid, flow in flows.items():
            if step < len(flow):
                current[oid] = Order.model_validate({**current[oid].model_dump(), "status": flow[step]})
                data = json.loads(current[oid].model_dump_json())
                await emit(hub, kinds.get(flow[step], "order.updated"), data, object_id=oid, connection="shop")
        await events.run_once(hub)  # deliveries interleave with new changes
    await drain(hub, rounds=50)

    assert set(state) == set(current)
    for oid, final in current.items():
        assert Order.model_validate(state[oid]) == final
    assert {r.status for r in await delivery_rows(hub)} == {"delivered"}
