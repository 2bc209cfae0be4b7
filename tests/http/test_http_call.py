"""hub.http.call: retries, typed errors and redacted snapshots (responses in the systems' real formats)."""

from __future__ import annotations

import httpx
import pytest
import respx

from hub.errors import FatalError, RetriableError
from hub.http import HubClient, RetryPolicy, call, client_for
from hub.plugins import Connector

FAST = RetryPolicy(attempts=3, initial=0.001, max_backoff=0.01, budget=1.0)
URL = "https://demo.myshopify.com/admin/api/2026-07/inventory_levels/set.json"
# Shopify's documented inventory_levels/set body (FORMATS.md 1.4)
BODY = {"location_id": 655441491, "inventory_item_id": 808950810, "available": 42}
# Shopify REST 429 body
THROTTLED = {
    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
}


def mocked(demo: Connector, router: respx.Router, policy: RetryPolicy = FAST) -> HubClient:
    return client_for(demo, transport=httpx.MockTransport(router.async_handler), retry=policy)


async def test_call_retries_a_503_then_succeeds(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).mock(side_effect=[httpx.Response(503), httpx.Response(200, json={"inventory_level": {}})])
    async with mocked(demo, router) as client:
        resp = await call(client, "POST", "/inventory_levels/set.json", json=BODY)
    assert resp.status_code == 200
    assert route.call_count == 2


async def test_call_honours_retry_after_on_429(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.0"}, json=THROTTLED), httpx.Response(200)]
    )
    async with mocked(demo, router) as client:
        assert (await call(client, "POST", URL, json=BODY)).status_code == 200
    assert route.call_count == 2


async def test_call_retries_timeouts_and_connection_errors(demo: Connector) -> None:
    router = respx.Router()
    route = router.get(URL).mock(
        side_effect=[httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"), httpx.Response(200)]
    )
    async with mocked(demo, router) as client:
        assert (await call(client, "GET", URL)).status_code == 200
    assert route.call_count == 3


async def test_call_gives_up_after_three_attempts_with_a_retriable_error(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).respond(502, text="<html>Bad Gateway</html>")
    async with mocked(demo, router) as client:
        with pytest.raises(RetriableError) as info:
            await call(client, "POST", URL, json=BODY)
    assert route.call_count == 3
    err = info.value
    assert err.connection == "shop-eu"
    assert err.response is not None and err.response["status"] == 502
    assert err.request is not None and err.request["body"] == BODY
    assert "502" in err.detail and "shop-eu" in err.detail


async def test_a_long_retry_after_is_handed_back_to_the_sync_engine_at_once(demo: Connector) -> None:
    # ShipBob: 150 requests/minute; over it 429 with x-retry-after in seconds (FORMATS.md 3.1)
    router = respx.Router()
    route = router.get("https://api.shipbob.com/2026-07/order").respond(
        429,
        headers={"x-retry-after": "25", "x-remaining-calls": "0"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 25 seconds."},
    )
    async with mocked(demo, router) as client:
        with pytest.raises(RetriableError) as info:
            await call(client, "GET", "https://api.shipbob.com/2026-07/order")
    assert route.call_count == 1
    assert info.value.retry_after == 25.0


async def test_a_4xx_is_fatal_and_not_retried(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).respond(422, json={"errors": {"available": ["must be an integer"]}})
    async with mocked(demo, router) as client:
        with pytest.raises(FatalError) as info:
            await call(client, "POST", URL, json=BODY)
    assert route.call_count == 1
    assert info.value.response == {
        "status": 422,
        "headers": {"content-length": "47", "content-type": "application/json"},
        "body": {"errors": {"available": ["must be an integer"]}},
    }
    assert "must be an integer" in info.value.detail


async def test_a_401_tells_to_check_credentials(demo: Connector) -> None:
    router = respx.Router()
    router.get(URL).respond(
        401, json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    )
    async with mocked(demo, router) as client:
        with pytest.raises(FatalError, match="credentials"):
            await call(client, "GET", URL)


async def test_retry_false_sends_once(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).respond(503)
    async with mocked(demo, router) as client:
        with pytest.raises(RetriableError):
            await call(client, "POST", URL, json=BODY, retry=False)
    assert route.call_count == 1


async def test_plain_httpx_calls_keep_working_and_do_not_raise(demo: Connector) -> None:
    router = respx.Router()
    router.post(URL).respond(422, json={"errors": "bad"})
    async with mocked(demo, router) as client:
        resp = await client.post("/inventory_levels/set.json", json=BODY)
    assert resp.status_code == 422
    assert resp.request.headers["X-Shopify-Access-Token"] == "shpat_0123456789abcdef"


async def test_respx_mock_using_httpx_intercepts_the_aiohttp_transport(demo: Connector) -> None:
    """How connector tests mock: respx's default mocker patches httpcore, which the aiohttp transport
    bypasses; ``respx.mock(using="httpx")`` patches the client and works."""
    client = client_for(demo, retry=FAST)
    async with client:
        with respx.mock(using="httpx") as router:
            router.post(URL).mock(side_effect=[httpx.Response(500), httpx.Response(201, json={"ok": True})])
            resp = await call(client, "POST", "/inventory_levels/set.json", json=BODY)
    assert resp.json() == {"ok": True}


async def test_relative_paths_follow_a_changed_base_url(demo: Connector) -> None:
    router = respx.Router()
    a = router.get("https://a.example.com/v1/orders").respond(200)
    b = router.get("https://b.example.com/v2/orders").respond(200)
    async with mocked(demo, router) as client:
        client.base_url = httpx.URL("https://a.example.com/v1")
        await client.get("/orders")
        await client.get("/orders")
        client.base_url = httpx.URL("https://b.example.com/v2")
        await client.get("/orders")
    assert (a.call_count, b.call_count) == (2, 1)


async def test_a_json_body_is_sent_as_compact_utf8_json_with_its_content_type(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).respond(200)
    body = {**BODY, "note": "Grüße", 7: ["a", None, True]}  # a non-string key, as the standard encoder allows
    async with mocked(demo, router) as client:
        await call(client, "POST", URL, json=body)
        await call(client, "POST", URL, json=BODY, headers={"Content-Type": "application/vnd.api+json"})
    first, second = (c.request for c in route.calls)
    assert first.headers["content-type"] == "application/json"
    assert first.content == b'{"location_id":655441491,"inventory_item_id":808950810,"available":42,' + (
        '"note":"Grüße","7":["a",null,true]}'.encode()
    )
    assert first.headers["content-length"] == str(len(first.content))
    assert second.headers["content-type"] == "application/vnd.api+json"  # the caller's own type is kept


async def test_a_calls_headers_merge_with_the_clients_and_follow_their_changes(demo: Connector) -> None:
    router = respx.Router()
    route = router.post(URL).respond(200)
    token = {"X-Shopify-Access-Token": demo.auth_headers()["X-Shopify-Access-Token"]}
    async with mocked(demo, router) as client:
        await call(client, "POST", URL, json=BODY, headers=demo.auth_headers())  # as the connectors pass them
        await call(client, "POST", URL, json=BODY, headers={**token, "X-Request-Id": "r1"})
        client.headers = {"X-Shopify-Access-Token": "rotated"}  # a new token replaces the defaults
        await call(client, "POST", URL, json=BODY, headers=demo.auth_headers())
        await call(client, "POST", URL, json=BODY)
    first, second, third, fourth = (c.request for c in route.calls)
    assert first.headers.get_list("x-shopify-access-token") == [token["X-Shopify-Access-Token"]]
    assert first.headers["content-type"] == "application/json"
    assert second.headers["x-request-id"] == "r1"
    # the call's own headers win over the client's changed defaults, as in httpx
    assert third.headers.get_list("x-shopify-access-token") == [token["X-Shopify-Access-Token"]]
    assert fourth.headers.get_list("x-shopify-access-token") == ["rotated"]


async def test_a_call_answered_at_once_builds_no_retry_machinery(
    demo: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt goes out without tenacity (whose objects live in reference cycles until the
    garbage collector walks them); tenacity takes over from a transient first failure only."""
    import hub.http._call as call_module

    built: list[object] = []
    real = call_module.AsyncRetrying

    def counting(*a: object, **k: object) -> object:
        built.append(a)
        return real(*a, **k)

    monkeypatch.setattr(call_module, "AsyncRetrying", counting)
    router = respx.Router(base_url="https://demo.myshopify.com/admin/api/2026-07")
    router.get("/ok").respond(200, json={"ok": True})
    router.get("/flaky").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={"n": 2})])
    async with mocked(demo, router) as client:
        assert (await call(client, "GET", "/ok")).json() == {"ok": True}
        assert built == []
        assert (await call(client, "GET", "/flaky")).json() == {"n": 2}
        assert len(built) == 1
