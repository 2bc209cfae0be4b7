"""The load generator: a separate process that sends pre-built requests over loopback.

    python -m bench._load SPEC.json OUT.json

SPEC: ``{"base": "http://127.0.0.1:P", "requests": [[method, path, headers, body], ...],
"rate": per-second or null (as fast as ``concurrency`` allows), "concurrency": N}``.
OUT: ``{"start": epoch, "end": epoch, "ack_ms": [...], "status": {code: count}, "errors": [...]}``.
With a ``rate`` the schedule is open-loop (request i is due at start + i/rate, whatever the
answers do), so a slow hub shows up as latency, not as a lower offered rate.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson


def shopify_orders(n: int, skus: list[str], max_lines: int, id_base: int, secret: str, path: str) -> list[list[Any]]:
    """``n`` signed ``orders/create`` webhooks: REST Order JSON built by the sandbox Shopify store
    (sandbox/shopify/app.py, the shape of Shopify's documented example order), with the headers
    Shopify sends (X-Shopify-Topic, -Webhook-Id, -Hmac-Sha256 = base64 HMAC-SHA256 of the body)."""
    import base64
    import hashlib
    import hmac
    import random
    import uuid

    from sandbox._common import Product, dumps
    from sandbox.shopify.app import ShopifySettings, ShopifyStore

    catalog = tuple(Product(sku, f"Bench item {sku}", "19.99", 250, 0) for sku in skus)
    store = ShopifyStore(ShopifySettings(catalog=catalog, seed=id_base))
    rng = random.Random(id_base)
    out: list[list[Any]] = []
    for i in range(n):
        picked = rng.sample(skus, k=rng.randint(1, min(max_lines, len(skus))))
        order = store.build_order([(s, 1) for s in picked])
        oid = id_base + i
        order["id"] = oid
        order["admin_graphql_api_id"] = f"gid://shopify/Order/{oid}"
        body = dumps(order)
        sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Shop-Domain": "bench.myshopify.com",
            "X-Shopify-API-Version": "2026-07",
            "X-Shopify-Webhook-Id": str(uuid.UUID(int=rng.getrandbits(128))),
            "X-Shopify-Triggered-At": order["created_at"],
            "X-Shopify-Hmac-Sha256": sig,
        }
        out.append(["POST", path, headers, body])
    return out


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    base: str = spec["base"]
    reqs: list[list[Any]] = spec.get("requests") or []
    if spec.get("orders"):
        reqs = shopify_orders(**spec["orders"])
    url = urlsplit(base)
    wire = [render(method, path, headers, body, url.netloc) for method, path, headers, body in reqs]
    del reqs
    client = Client(url.hostname or "127.0.0.1", url.port or 80, wire, int(spec.get("concurrency") or 64))
    # the pre-built requests are long-lived: keep the collector from re-scanning them (a full
    # collection paused this process for 0.6-0.8 s and showed up as the hub's ack latency)
    gc.collect()
    gc.freeze()
    print("go", flush=True)  # the orchestrator starts its CPU window here
    start = time.time()
    await client.run(spec.get("rate"))
    end = time.time()
    return {"start": start, "end": end, "ack_ms": client.ack_ms, "status": client.status, "errors": client.errors}


def render(method: str, path: str, headers: dict[str, str], body: str | bytes, netloc: str) -> bytes:
    """One HTTP/1.1 request as the bytes sent (keep-alive, Content-Length)."""
    data = body.encode() if isinstance(body, str) else body
    lines = [f"{method} {path} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class Client:
    """A minimal HTTP/1.1 client for loopback load: up to ``concurrency`` keep-alive connections, one
    request in flight on each, driven by callbacks (no task per request).

    aiohttp's client cost 0.4-0.5 ms of CPU per request here, on the same two cores as the hub it
    measures (a quarter of a core at 500 requests/s); this costs a fraction of that. It reads
    exactly what the hub's aiohttp server sends: a status line, headers, and a body of
    ``Content-Length`` bytes or in chunks."""

    def __init__(self, host: str, port: int, wire: list[bytes], concurrency: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port, self.wire, self.concurrency = host, port, wire, concurrency
        self.ack_ms: list[float] = [0.0] * len(wire)
        self.status: dict[str, int] = {}
        self.errors: list[str] = []
        self.idle: list[_Conn] = []
        self.opening = 0
        self.open = 0
        self.waiting: collections.deque[int] = collections.deque()
        self.left = len(wire)
        self.done: asyncio.Future[None] = self.loop.create_future()

    async def run(self, rate: float | None) -> None:
        """Send every request: open loop at ``rate`` per second (request i is due at start + i/rate,
        whatever the answers do), or as fast as the connections allow."""
        if not self.wire:
            return
        if not rate:
            for i in range(len(self.wire)):
                self.send(i)
        else:
            t0 = time.perf_counter()
            i = 0
            while i < len(self.wire):
                due = int((time.perf_counter() - t0) * rate) + 1  # every request due by now
                while i < min(due, len(self.wire)):
                    self.send(i)
                    i += 1
                if i < len(self.wire):
                    await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        await self.done

    def send(self, i: int) -> None:
        if self.idle:
            self.idle.pop().request(i)
        elif self.open + self.opening < self.concurrency:
            self.waiting.append(i)
            self.opening += 1
            self.loop.create_task(self._connect())
        else:
            self.waiting.append(i)

    async def _connect(self) -> None:
        try:
            _t, conn = await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
        except OSError as exc:
            self.opening -= 1
            if self.waiting:
                self.finished(self.waiting.popleft(), "error", f"{type(exc).__name__}: {exc}")
            if self.waiting and self.open + self.opening == 0:
                self.send(self.waiting.popleft())  # try again for the rest (each failure is counted)
            return
        self.opening -= 1
        self.open += 1
        self.ready(conn)

    def ready(self, conn: _Conn) -> None:
        """``conn`` is free: it takes the next waiting request or goes idle."""
        if self.waiting:
            conn.request(self.waiting.popleft())
        else:
            self.idle.append(conn)

    def finished(self, i: int, code: str, error: str | None = None) -> None:
        self.status[code] = self.status.get(code, 0) + 1
        if error is not None and len(self.errors) < 20:
            self.errors.append(error)
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)

    def lost(self, conn: _Conn) -> None:
        self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if self.waiting and self.open + self.opening < self.concurrency:
            self.opening += 1
            self.loop.create_task(self._connect())


class _Conn(asyncio.Protocol):
    """One keep-alive connection of :class:`Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.i = -1
        self.t0 = 0.0
        self.buf = bytearray()
        self.code = ""
        self.need = -1  # body bytes still expected (-1: headers not read yet; -2: chunked)
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, i: int) -> None:
        assert self.transport is not None
        self.i, self.need, self.close_after = i, -1, False
        self.buf.clear()
        self.t0 = time.perf_counter()
        self.transport.write(self.client.wire[i])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need == -1:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            del self.buf[: end + 4]
            self.code = head[0].split(" ", 2)[1]
            fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
            self.close_after = fields.get("connection", "").lower() == "close"
            if fields.get("transfer-encoding", "").lower() == "chunked":
                self.need = -2
            else:
                self.need = int(fields.get("content-length", "0"))
        if self.need == -2:
            if not self._chunks_complete():
                return
        elif len(self.buf) < self.need:
            return
        self._done(self.code)

    def _chunks_complete(self) -> bool:
        """Whether the buffer holds a whole chunked body (size lines, data, the zero-size last chunk)."""
        pos = 0
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return False
            size = int(bytes(self.buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                return self.buf.find(b"\r\n", eol + 2) >= 0  # the end of the (empty) trailer
            pos = eol + 2 + size + 2
            if pos > len(self.buf):
                return False

    def _done(self, code: str, error: str | None = None) -> None:
        i, self.i = self.i, -1
        self.client.ack_ms[i] = (time.perf_counter() - self.t0) * 1000
        self.client.finished(i, code, error)
        if self.close_after and self.transport is not None:
            self.transport.close()
        elif error is None:
            self.client.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.i >= 0:
            self._done("error", f"connection lost: {exc or 'closed by the server'}")
        self.client.lost(self)


def main() -> None:
    spec = orjson.loads(Path(sys.argv[1]).read_bytes())
    out = asyncio.run(run(spec))
    Path(sys.argv[2]).write_bytes(orjson.dumps(out))


if __name__ == "__main__":
    main()
