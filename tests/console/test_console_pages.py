"""The ops console over HTTP: login and sessions, scopes, CSRF, escaping, every page, replay, access log.

Real PostgreSQL and Redis; inbound data are the toy channel's signed webhooks (tests/sync/toy.py).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub import events
from hub.events import EndpointIn
from hub.logging import JsonFormatter
from hub.runtime import Hub
from hub.store import outbox
from hub.store import tables as t
from hub.sync import inbox
from tests.console.conftest import OPS_TOKEN, READ_TOKEN, csrf_of, login
from tests.sync import toy
from tests.sync.conftest import drain, webhook

Client = TestClient[Any, Any]


async def _orders(hub: Hub, *exts: str) -> None:
    for ext in exts:
        headers, body = webhook({"id": f"evt-{ext}", "order": toy.order_doc(ext)})
        await inbox.accept(hub, "shop", headers, body)
    await drain(hub)


async def _garbage(hub: Hub, event_id: str = "evt-garbage") -> str:
    """An authenticated webhook without an order: kept, and a sync failure once the worker tried it."""
    headers, body = webhook({"id": event_id, "topic": "order"})
    await inbox.accept(hub, "shop", headers, body)
    await drain(hub)
    async with hub.store.connect() as c:
        return str((await c.execute(select(t.sync_failures.c.id))).scalars().one())


async def _status(hub: Hub, failure_id: str) -> str:
    async with hub.store.connect() as c:
        q = select(t.sync_failures.c.status).where(t.sync_failures.c.id == failure_id)
        return str((await c.execute(q)).scalar_one())


# --------------------------------------------------------------------------- login and sessions


async def test_pages_redirect_to_the_login_when_there_is_no_session(client: Client) -> None:
    for path in ("/console/", "/console/orders", "/console/failures", "/console/inventory", "/console/webhooks"):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 303, path
        assert r.headers["Location"].startswith("/console/login?next=")
    r = await client.get("/console/login")
    assert r.status == 200 and 'name="token"' in await r.text()


async def test_a_wrong_token_is_refused_and_never_echoed(client: Client) -> None:
    wrong = "wrong-token-<b>bold</b>-0123456789"
    r = await client.post("/console/login", data={"token": wrong}, allow_redirects=False)
    assert r.status == 401
    html = await r.text()
    assert "not valid" in html and wrong not in html and "bold" not in html
    assert "orderhub_console" not in r.headers.get("Set-Cookie", "")


async def test_login_sets_an_httponly_samesite_strict_cookie_that_is_not_the_token(hub: Hub, client: Client) -> None:
    r = await client.post("/console/login", data={"token": OPS_TOKEN, "next": "/console/orders"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/console/orders"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("orderhub_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert OPS_TOKEN not in cookie
    # the session kept in Redis has the token's name, never the token
    values = [await hub.redis.get(k) async for k in hub.redis.scan_iter(match=hub.key("console", "*"))]
    assert values and all(OPS_TOKEN.encode() not in (v or b"") for v in values)
    r = await client.get("/console/orders")
    assert r.status == 200 and "ops (ops)" in await r.text()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/v1/orders", "/console\\@evil"])
async def test_login_never_redirects_outside_the_console(client: Client, target: str) -> None:
    r = await client.post("/console/login", data={"token": OPS_TOKEN, "next": target}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/console/"


async def test_a_login_posted_from_another_site_is_refused(client: Client) -> None:
    r = await client.post(
        "/console/login", data={"token": OPS_TOKEN}, headers={"Origin": "https://evil.example"}, allow_redirects=False
    )
    assert r.status == 403
    assert "orderhub_console" not in r.headers.get("Set-Cookie", "")


async def test_logout_ends_the_session(client: Client) -> None:
    html = await login(client, READ_TOKEN)
    r = await client.post("/console/logout", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/console/login"
    r = await client.get("/console/", allow_redirects=False)
    assert r.status == 303


async def test_repeated_wrong_logins_are_throttled(client: Client) -> None:
    for _ in range(20):
        assert (await client.post("/console/login", data={"token": "x" * 20})).status == 401
    r = await client.post("/console/login", data={"token": OPS_TOKEN}, allow_redirects=False)
    assert r.status == 429


# --------------------------------------------------------------------------- scopes and CSRF


async def test_a_read_token_sees_every_page_but_cannot_replay(hub: Hub, client: Client) -> None:
    fid = await _garbage(hub)
    html = await login(client, READ_TOKEN)
    for path in ("/console/orders", "/console/inventory", "/console/failures", "/console/webhooks"):
        assert (await client.get(path)).status == 200, path
    page = await (await client.get(f"/console/failures/{fid}")).text()
    assert "Replay now" not in page and "Replay all" not in page
    toy.STRICT["on"] = False
    r = await client.post(f"/console/failures/{fid}/replay", data={"csrf": csrf_of(html)})
    assert r.status == 403 and "lacks the &#39;ops&#39; scope" in await r.text()
    assert await _status(hub, fid) == "open"


async def test_a_post_without_the_session_csrf_token_changes_nothing(hub: Hub, client: Client) -> None:
    fid = await _garbage(hub)
    await login(client, OPS_TOKEN)
    toy.STRICT["on"] = False
    for data in ({}, {"csrf": "forged"}):
        r = await client.post(f"/console/failures/{fid}/replay", data=data)
        assert r.status == 422 and "reload and retry" in await r.text()
    assert await _status(hub, fid) == "open"


# --------------------------------------------------------------------------- failures and replay


async def test_failure_page_shows_the_errors_and_a_replay_after_the_fix_resolves_it(hub: Hub, client: Client) -> None:
    fid = await _garbage(hub)
    await login(client, OPS_TOKEN)
    listing = await (await client.get("/console/failures?connection=shop&error=no+order")).text()
    assert fid in listing and "no order in payload" in listing
    page = await (await client.get(f"/console/failures/{fid}")).text()
    assert "no order in payload" in page and "toy.yaml" in page and "Replay now" in page
    # still broken: the replay fails and says why
    r = await client.post(f"/console/failures/{fid}/replay", data={"csrf": csrf_of(page)})
    assert r.status == 200 and "Replay of" in (await r.text()) and await _status(hub, fid) == "open"
    toy.STRICT["on"] = False  # the fix
    page = await (await client.get(f"/console/failures/{fid}")).text()
    r = await client.post(f"/console/failures/{fid}/replay", data={"csrf": csrf_of(page)})
    html = await r.text()
    assert r.status == 200 and f"Replay of {fid}: resolved" in html
    assert 'id="failure-status">resolved<' in html
    assert await _status(hub, fid) == "resolved"
    # the message is shown once
    assert "Replay of" not in await (await client.get(f"/console/failures/{fid}")).text()


async def test_replay_all_matching_replays_the_filtered_failures_and_reports_the_counts(
    hub: Hub, client: Client
) -> None:
    ids = [await _garbage(hub, f"evt-g{i}") for i in range(1)] + [await _garbage_more(hub, f"evt-g{i}") for i in (2, 3)]
    html = await login(client, OPS_TOKEN)
    toy.STRICT["on"] = False
    r = await client.post("/console/failures/replay", data={"csrf": csrf_of(html), "connection": "shop"})
    text = await r.text()
    assert r.status == 200 and "Replayed 3: 3 resolved" in text
    assert [await _status(hub, f) for f in ids] == ["resolved"] * 3


async def _garbage_more(hub: Hub, event_id: str) -> str:
    headers, body = webhook({"id": event_id, "topic": "order"})
    await inbox.accept(hub, "shop", headers, body)
    await drain(hub)
    async with hub.store.connect() as c:
        q = select(t.sync_failures.c.id).order_by(t.sync_failures.c.id.desc()).limit(1)
        return str((await c.execute(q)).scalar_one())


async def test_a_bad_failure_filter_is_explained(client: Client) -> None:
    await login(client, READ_TOKEN)
    r = await client.get("/console/failures?since=yesterday")
    assert r.status == 422 and "since is not a date and time" in await r.text()


# --------------------------------------------------------------------------- dashboard, orders, inventory


async def test_dashboard_shows_throughput_queues_failures_and_charts(hub: Hub, client: Client) -> None:
    await _orders(hub, "1001", "1002", "1003")
    await _garbage(hub)
    await login(client, READ_TOKEN)
    r = await client.get("/console/")
    html = await r.text()
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert re.search(r"Orders, last hour</div><div class=\"v\">3<", html)
    assert re.search(r"Open sync failures</div><div class=\"v\"><a href=\"/console/failures\">1<", html)
    assert html.count("<svg") == 3 and "Orders created per minute" in html
    assert "Queue: inbox" in html and "Perfect order rate" in html
    assert "<script" not in html


async def test_orders_search_and_detail_explain_the_allocation(hub: Hub, client: Client) -> None:
    await _orders(hub, "1001", "1002")
    await login(client, READ_TOKEN)
    html = await (await client.get("/console/orders?external_id=1002")).text()
    assert "1002" in html and ">1001<" not in html
    order_id = re.search(r'href="/console/orders/(ord_[0-9A-Z]+)"', html)
    assert order_id
    page = await (await client.get(f"/console/orders/{order_id.group(1)}")).text()
    assert "Allocation decision" in page and "allocated 1 of 1 unit(s) at w1" in page
    assert "Status timeline" in page and "Money trail" in page and "10.00 EUR" in page
    assert "1002@example.com" not in page  # no customer PII on the page
    r = await client.get("/console/orders/ord_00000000000000000000000000")
    assert r.status == 404 and "does not exist" in await r.text()


async def test_orders_are_paged_with_a_cursor(hub: Hub, client: Client) -> None:
    await _orders(hub, *(str(2000 + i) for i in range(55)))
    await login(client, READ_TOKEN)
    first = await (await client.get("/console/orders")).text()
    nxt = re.search(r'<a href="(/console/orders\?cursor=[^"]+)">Older', first)
    assert nxt and first.count('href="/console/orders/ord_') == 50
    second = await (await client.get(nxt.group(1).replace("&amp;", "&"))).text()
    assert second.count('href="/console/orders/ord_') == 5 and "Older" not in second


async def test_inventory_shows_levels_channel_atp_and_the_ledger(hub: Hub, client: Client) -> None:
    await _orders(hub, "1001")
    await login(client, READ_TOKEN)
    listing = await (await client.get("/console/inventory")).text()
    assert "/console/inventory?sku=SKU-1" in listing
    html = await (await client.get("/console/inventory?sku=SKU-1")).text()
    cells = re.findall(r'<td class="num">(?:<strong>)?(\d+)', html)
    assert cells[:4] == ["100", "1", "0", "99"]  # on hand, reserved, safety stock, available at w1
    assert '<td>shop</td><td class="num">99</td>' in html
    assert "receipt" in html


async def test_everything_shown_is_escaped(hub: Hub, client: Client) -> None:
    evil = '<script>alert("x")</script>'
    await _orders(hub, evil)
    await login(client, READ_TOKEN)
    for path in ("/console/orders", f"/console/orders?external_id={evil}"):
        html = await (await client.get(path, params=None)).text()
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    async with hub.store.connect() as c:
        oid = (await c.execute(select(t.orders.c.id))).scalar_one()
    html = await (await client.get(f"/console/orders/{oid}")).text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html


# --------------------------------------------------------------------------- partner webhooks


async def test_webhooks_pages_hide_url_secrets_show_attempts_and_replay(hub: Hub, client: Client) -> None:
    ep = await events.create_endpoint(hub, EndpointIn(url="http://127.0.0.1:9/hook?token=supersecret", events=["*"]))
    async with hub.store.begin() as conn:
        await outbox.emit(conn, "order.created", {"id": "ord_x"}, object_id="ord_x")
    await events.fan_out(hub)
    await events.deliver_due(hub)
    await events.close(hub)
    html = await login(client, OPS_TOKEN)
    page = await (await client.get("/console/webhooks")).text()
    assert ep.id in page and "http://127.0.0.1:9/hook?…" in page
    assert "supersecret" not in page and ep.secret not in page
    did = re.search(r'href="/console/webhooks/deliveries/([^"]+)"', page)
    assert did
    detail = await (await client.get(f"/console/webhooks/deliveries/{did.group(1)}")).text()
    assert "order.created" in detail and "Send again" in detail and "supersecret" not in detail
    assert "Not attempted yet" not in detail  # the refused connection is in the attempts log
    r = await client.post(f"/console/webhooks/deliveries/{did.group(1)}/replay", data={"csrf": csrf_of(html)})
    assert r.status == 200 and "queued again (status pending)" in await r.text()
    # the whole endpoint: failed deliveries since a time go again
    await events.deliver_due(hub)
    await events.close(hub)
    r = await client.post(
        f"/console/webhooks/endpoints/{ep.id}/replay", data={"csrf": csrf_of(html), "since": "2020-01-01T00:00"}
    )
    assert r.status == 200 and f"Endpoint {ep.id}: 1 failed deliveries queued again, 0 missed events" in await r.text()


# --------------------------------------------------------------------------- logs


async def test_console_access_is_logged_with_the_token_name_and_never_the_token(
    hub: Hub, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.console")
    await client.post("/console/login", data={"token": "wrong-" + OPS_TOKEN})
    await login(client, OPS_TOKEN)
    await client.get("/console/orders")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "hub.console"]
    docs = [json.loads(line) for line in lines]
    assert any(d["msg"] == "console login" and d["actor"] == "ops" for d in docs)
    assert any(d["msg"] == "console request" and d["path"] == "/console/orders" and d["status"] == 200 for d in docs)
    assert any(d["msg"] == "console login failed" for d in docs)
    assert all(OPS_TOKEN not in line for line in lines)
