"""The real httpx-aiohttp transport against a local aiohttp server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from hub.errors import RetriableError
from hub.http import ConnectionTransport, RetryPolicy, call, client_for
from hub.plugins import Connector


@pytest.fixture
async def server() -> AsyncIterator[str]:
    hits = {"flaky": 0}

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"token": request.headers.get("X-Shopify-Access-Token"), "q": request.query_string})

    async def flaky(request: web.Request) -> web.Response:
        hits["flaky"] += 1
        if hits["flaky"] < 3:
            return web.json_response({"errors": "Internal Server Error"}, status=500)
        return web.json_response({"attempt": hits["flaky"]})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({})

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/ok", "Set-Cookie": "session=abc; Path=/"})

    async def gzipped(request: web.Request) -> web.Response:
        body = gzip.compress(b'{"compressed": true}')
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(3):
            await resp.write(b"x" * 1000)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_post("/flaky", flaky)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", moved)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzipped", gzipped)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_client_uses_the_aiohttp_transport_with_auth_headers(demo: Connector, server: str) -> None:
    async with client_for(demo) as client:
        assert isinstance(client._transport, ConnectionTransport)
        assert isinstance(client._transport.inner, AiohttpTransport)
        resp = await client.get(f"{server}/ok", params={"limit": 5})
    assert resp.json() == {"token": "shpat_0123456789abcdef", "q": "limit=5"}


async def test_connections_share_one_verifying_tls_context(demo: Connector) -> None:
    import ssl

    async with client_for(demo) as a, client_for(demo) as b:
        ctx_a = a._transport.inner.ssl_context  # type: ignore[attr-defined]
        assert ctx_a is b._transport.inner.ssl_context  # type: ignore[attr-defined]
    assert ctx_a.verify_mode == ssl.CERT_REQUIRED and ctx_a.check_hostname


async def test_call_retries_real_500s(demo: Connector, server: str) -> None:
    async with client_for(demo, retry=RetryPolicy(initial=0.001, max_backoff=0.01)) as client:
        resp = await call(client, "POST", f"{server}/flaky", json={})
    assert resp.json() == {"attempt": 3}


async def test_a_read_timeout_becomes_a_retriable_error(demo: Connector, server: str) -> None:
    async with client_for(demo, timeout=0.1, retry=RetryPolicy(attempts=2, initial=0.001)) as client:
        with pytest.raises(RetriableError, match="failed after 2 attempt"):
            await call(client, "GET", f"{server}/slow")


async def test_the_configured_max_concurrency_wins_over_the_connector_class(demo: Connector) -> None:
    import httpx

    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json={})

    # the class allows 64 at once; the connection is configured for 3
    client = client_for(demo, transport=httpx.MockTransport(handler), max_concurrency=3)
    await asyncio.gather(*(client.get("/x") for _ in range(12)))
    await client.aclose()
    assert peak == 3


async def test_a_response_read_whole_is_freed_without_the_garbage_collector(demo: Connector, server: str) -> None:
    """No reference cycle keeps a response (and its request, headers and body) alive once the caller
    drops it: with the collector off, dropping the last reference frees it."""
    import gc
    import weakref

    async with client_for(demo) as client:
        gc.disable()
        try:
            resp = await client.get(f"{server}/ok")
            assert resp.json()["q"] == ""
            gone = weakref.ref(resp)
            del resp
            assert gone() is None
        finally:
            gc.enable()


async def test_the_short_send_path_gives_what_httpx_gives(demo: Connector, server: str) -> None:
    """A connection's client sends straight to its transport (no auth, hooks or redirects to
    handle); its responses carry what httpx's own path sets, and a client with an event hook still
    takes httpx's path."""
    import httpx

    async with client_for(demo) as client:
        assert client._plain()
        moved = await client.get(f"{server}/moved")
        assert moved.status_code == 302 and moved.request.url == f"{server}/moved"
        assert moved.next_request is not None and moved.next_request.url == f"{server}/ok"
        assert moved.elapsed.total_seconds() > 0
        assert client.cookies.get("session") == "abc"
        plain = await client.get(f"{server}/ok")  # read whole by the transport
        assert plain.is_stream_consumed and plain.is_closed and plain.num_bytes_downloaded == len(plain.content)
        assert (await client.get(f"{server}/gzipped")).json() == {"compressed": True}  # decoded by httpx
        body = await client.get(f"{server}/chunked")  # no Content-Length: streamed by the transport, read here
        assert body.content == b"x" * 3000 and isinstance(body.stream, httpx.ByteStream)
        seen: list[str] = []

        async def hook(request: httpx.Request) -> None:
            seen.append(str(request.url))

        client.event_hooks = {"request": [hook], "response": []}
        assert not client._plain()
        assert (await client.get(f"{server}/ok")).json()["q"] == ""
        assert seen == [f"{server}/ok"]
    with pytest.raises(RuntimeError, match="closed"):
        await client.get(f"{server}/ok")


async def test_memoised_header_merges_follow_changes_of_the_client_headers(demo: Connector, server: str) -> None:
    async with client_for(demo) as client:
        assert (await client.get(f"{server}/ok")).json()["token"] == "shpat_0123456789abcdef"
        client.headers["X-Shopify-Access-Token"] = "shpat_rotated"  # in place
        assert (await client.get(f"{server}/ok")).json()["token"] == "shpat_rotated"
        client.headers = {"X-Shopify-Access-Token": "shpat_assigned"}
        assert (await client.get(f"{server}/ok", headers={"X-Other": "1"})).json()["token"] == "shpat_assigned"
