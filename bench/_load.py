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
import gc
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
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
    rate: float | None = spec.get("rate")
    sem = asyncio.Semaphore(int(spec.get("concurrency") or 64))
    ack_ms: list[float] = [0.0] * len(reqs)
    status: dict[str, int] = {}
    errors: list[str] = []
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:

        async def send(i: int) -> None:
            method, path, headers, body = reqs[i]
            data = body.encode() if isinstance(body, str) else body
            async with sem:
                t0 = time.perf_counter()
                try:
                    async with session.request(method, base + path, headers=headers, data=data) as resp:
                        await resp.read()
                        code = str(resp.status)
                except Exception as exc:
                    code = "error"
                    if len(errors) < 20:
                        errors.append(f"{type(exc).__name__}: {exc}")
                ack_ms[i] = (time.perf_counter() - t0) * 1000
                status[code] = status.get(code, 0) + 1

        # the pre-built requests are long-lived: keep the collector from re-scanning them (a full
        # collection paused this process for 0.6-0.8 s and showed up as the hub's ack latency)
        gc.collect()
        gc.freeze()
        print("go", flush=True)  # the orchestrator starts its CPU window here
        start = time.time()
        t_start = time.perf_counter()
        tasks = []
        if rate:
            for i in range(len(reqs)):
                due = t_start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(i)))
        else:
            tasks = [asyncio.create_task(send(i)) for i in range(len(reqs))]
        await asyncio.gather(*tasks)
        end = time.time()
    return {"start": start, "end": end, "ack_ms": ack_ms, "status": status, "errors": errors}


def main() -> None:
    spec = orjson.loads(Path(sys.argv[1]).read_bytes())
    out = asyncio.run(run(spec))
    Path(sys.argv[2]).write_bytes(orjson.dumps(out))


if __name__ == "__main__":
    main()
