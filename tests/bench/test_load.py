"""The load generator's HTTP client (bench._load.Client) against a real aiohttp server: every
request is answered once, whatever the response framing, and failures are counted, not lost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench._load import run


@pytest.fixture
async def server(unused_tcp_port: int) -> AsyncIterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.read())
        if request.path == "/chunked":
            resp = web.StreamResponse(status=201)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b'{"a":')
            await resp.write(b"10}")
            await resp.write_eof()
            return resp
        if request.path == "/close":
            return web.Response(status=202, text="x", headers={"Connection": "close"})
        return web.json_response({"n": len(bodies)}, status=202)

    app = web.Application()
    app.router.add_route("*", "/{p}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield f"http://127.0.0.1:{unused_tcp_port}", bodies
    await runner.cleanup()


@pytest.mark.parametrize("rate", [None, 3000.0])
async def test_every_request_is_sent_once_and_answered(server: tuple[str, list[bytes]], rate: float | None) -> None:
    base, bodies = server
    reqs = (
        [["POST", "/ok", {"X-A": "1"}, f"body-{i}"] for i in range(200)]
        + [["POST", "/chunked", {}, "c"]] * 40
        + [["POST", "/close", {}, ""]] * 20
    )
    out = await run({"base": base, "requests": reqs, "rate": rate, "concurrency": 8})
    assert out["status"] == {"202": 220, "201": 40}
    assert out["errors"] == []
    assert sorted(b for b in bodies if b.startswith(b"body-")) == sorted(f"body-{i}".encode() for i in range(200))
    assert all(ms > 0 for ms in out["ack_ms"])
    if rate:  # open loop: the schedule takes len / rate seconds at least
        assert out["end"] - out["start"] >= (len(reqs) - 1) / rate


async def test_a_refused_connection_counts_every_request_as_an_error(unused_tcp_port: int) -> None:
    reqs = [["POST", "/ok", {}, "x"]] * 5
    out = await run({"base": f"http://127.0.0.1:{unused_tcp_port}", "requests": reqs, "concurrency": 2})
    assert out["status"] == {"error": 5}
    assert "ConnectionRefusedError" in out["errors"][0]
