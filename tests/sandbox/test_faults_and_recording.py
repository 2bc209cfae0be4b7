"""Fault injection, call recording and the webhook sender, shared by every simulator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import Counter

import pytest

from sandbox._common import Faults, Recorder
from sandbox.odoo.app import STATE as ODOO
from sandbox.odoo.app import OdooSettings
from sandbox.odoo.app import make_app as odoo_app
from sandbox.shopify.app import STATE as SHOPIFY
from sandbox.shopify.app import ShopifySettings
from sandbox.shopify.app import make_app as shopify_app

from .conftest import Receiver, Serve

BEARER = {"Authorization": "bearer k"}


def shopify_sent(receiver: Receiver) -> list[str]:
    return [h.headers["X-Shopify-Webhook-Id"] for h in receiver.hits]


def test_faults_refuse_impossible_values_and_unknown_knobs() -> None:
    with pytest.raises(ValueError, match="rate_429"):
        Faults(rate_429=1.5)
    f = Faults()
    with pytest.raises(ValueError, match="unknown fault 'rate_4299'"):
        f.update({"rate_4299": 0.1})
    with pytest.raises(ValueError, match="outage_in and outage_for"):
        f.update({"outage_in": 1})
    f.update({"rate_5xx": 0.2, "outage_in": 10, "outage_for": 5})
    assert f.rate_5xx == 0.2 and not f.in_outage() and f.in_outage(time.time() + 12)


def test_recorder_counts_a_repeated_side_effect_key_as_a_duplicate() -> None:
    r = Recorder()
    assert r.side_effect("shipbob.order", "A") is False
    assert r.side_effect("shipbob.order", "B") is False
    assert r.side_effect("shipbob.order", "A") is True
    assert r.duplicate_side_effects == 1 and r.side_effects("shipbob.order") == 2
    assert r.summary()["duplicates"][0]["key"] == "A"


async def test_share_of_429_and_5xx_stays_within_bounds_with_a_fixed_seed(serve: Serve) -> None:
    app = odoo_app(OdooSettings(api_key="k", seed=42, faults=Faults(rate_429=0.2, rate_5xx=0.1)))
    client = await serve(app)
    statuses: Counter[int] = Counter()
    n = 400
    for _ in range(n):
        resp = await client.post("/json/2/res.partner/search", json={"domain": []}, headers=BEARER)
        statuses[resp.status] += 1
        if resp.status == 429:
            assert resp.headers["Retry-After"] == "1"
    assert 0.14 * n <= statuses[429] <= 0.26 * n
    # 5xx is drawn on the calls that were not throttled: 0.8 * 0.1 = 8 %
    assert 0.04 * n <= statuses[500] + statuses[503] <= 0.12 * n
    assert statuses[500] and statuses[503]
    assert statuses[200] + statuses[429] + statuses[500] + statuses[503] == n
    faults = Counter(c.fault for c in app[ODOO].recorder.calls)
    assert faults["throttled"] == statuses[429] and len(app[ODOO].recorder.calls) == n


async def test_outage_window_answers_503_then_recovers_and_control_routes_stay_up(serve: Serve) -> None:
    app = odoo_app(OdooSettings(api_key="k"))
    client = await serve(app)
    resp = await client.post("/_sandbox/faults", json={"outage_in": 0, "outage_for": 0.3})
    assert resp.status == 200
    resp = await client.post("/json/2/res.partner/search", json={"domain": []}, headers=BEARER)
    assert resp.status == 503 and (await resp.json())["name"] == "werkzeug.exceptions.ServiceUnavailable"
    assert (await client.get("/_sandbox/stats")).status == 200
    await asyncio.sleep(0.35)
    resp = await client.post("/json/2/res.partner/search", json={"domain": []}, headers=BEARER)
    assert resp.status == 200
    bad = await client.post("/_sandbox/faults", json={"latency": 5})
    assert bad.status == 400 and "latency" in (await bad.json())["error"]


async def test_latency_delays_replies(serve: Serve) -> None:
    client = await serve(odoo_app(OdooSettings(api_key="k", faults=Faults(latency_ms=80))))
    t0 = time.monotonic()
    await client.post("/json/2/res.partner/search", json={"domain": []}, headers=BEARER)
    assert time.monotonic() - t0 >= 0.08


async def test_webhooks_are_held_during_an_outage_and_delivered_after_it(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app(ShopifySettings(webhook_target=None))
    store = app[SHOPIFY]
    await serve(app)
    store.sender.set_target(receiver.url)
    store.faults.outage(0, 0.3)
    store.place_order()
    await asyncio.sleep(0.1)
    assert receiver.hits == [] and len(store.sender.held) == 1
    assert await store.drain(3)
    assert len(receiver.hits) == 1 and store.recorder.deliveries[0].fault == "held"


async def test_webhooks_wait_for_a_target_url(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app()
    store = app[SHOPIFY]
    client = await serve(app)
    store.place_order()
    assert len(store.sender.held) == 1
    await client.post("/_sandbox/webhook-target", json={"url": receiver.url})
    assert await store.drain(3)
    assert len(receiver.hits) == 1


async def test_duplicate_webhooks_repeat_the_same_id_and_body(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app(ShopifySettings(faults=Faults(webhook_duplicate=1.0)))
    store = app[SHOPIFY]
    await serve(app)
    store.sender.set_target(receiver.url)
    store.place_order()
    assert await store.drain(3)
    assert len(receiver.hits) == 2
    assert receiver.hits[0].body == receiver.hits[1].body and len(set(shopify_sent(receiver))) == 1


async def test_out_of_order_webhooks_arrive_after_the_next_one(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app(ShopifySettings(faults=Faults(webhook_out_of_order=1.0)))
    store = app[SHOPIFY]
    store.sender.concurrency = 1
    await serve(app)
    store.sender.set_target(receiver.url)
    ids = [store.send_webhook("orders/updated", {"n": i}) for i in range(4)]
    assert await store.drain(3)
    assert shopify_sent(receiver) == [ids[1], ids[0], ids[3], ids[2]]


async def test_malformed_webhooks_are_garbage_with_an_authentic_signature(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app(ShopifySettings(client_secret="s3", faults=Faults(webhook_malformed=1.0), seed=3))
    store = app[SHOPIFY]
    await serve(app)
    store.sender.set_target(receiver.url)
    for _ in range(6):
        store.place_order()
    assert await store.drain(3)
    for hit in receiver.hits:
        expected = base64.b64encode(hmac.new(b"s3", hit.body, hashlib.sha256).digest()).decode()
        assert hit.headers["X-Shopify-Hmac-Sha256"] == expected
        try:
            body = json.loads(hit.body)
        except ValueError:
            continue
        assert "line_items" not in body or not isinstance(body["line_items"], list)


async def test_sender_retries_5xx_with_the_same_id_and_gives_up_on_401(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app()
    store = app[SHOPIFY]
    store.sender.backoff = (0.01,)
    await serve(app)
    store.sender.set_target(receiver.url)
    receiver.replies = [500, 503]
    store.place_order()
    assert await store.drain(3)
    d = store.recorder.deliveries[0]
    assert d.statuses == [500, 503, 200] and d.ok and len(set(shopify_sent(receiver))) == 1
    receiver.replies = [401]
    store.place_order()
    assert await store.drain(3)
    assert store.recorder.deliveries[1].statuses == [401] and not store.recorder.deliveries[1].ok


async def test_a_held_back_webhook_goes_out_even_when_nothing_follows(serve: Serve, receiver: Receiver) -> None:
    app = shopify_app(ShopifySettings(faults=Faults(webhook_out_of_order=1.0)))
    store = app[SHOPIFY]
    store.sender.max_hold = 0.05
    await serve(app)
    store.sender.set_target(receiver.url)
    store.send_webhook("orders/updated", {"n": 1})
    await asyncio.sleep(0.3)
    assert len(receiver.hits) == 1


async def test_shopify_can_throttle_graphql_with_http_429(serve: Serve) -> None:
    app = shopify_app(ShopifySettings(access_token="t", throttle_http_429=True, faults=Faults(rate_429=1.0)))
    client = await serve(app)
    query = {"query": "{ productVariants(first: 1) { nodes { id } } }"}
    resp = await client.post("/admin/api/2026-07/graphql.json", json=query, headers={"X-Shopify-Access-Token": "t"})
    assert resp.status == 429 and resp.headers["Retry-After"] == "1.0"
    assert (await resp.json())["errors"][0]["extensions"]["code"] == "THROTTLED"
