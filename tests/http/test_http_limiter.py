"""The Redis rate limiter, against the real Redis: shared by every client of a connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from hub.errors import RetriableError
from hub.http import RateLimiter, client_for
from hub.plugins import Connector


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def _recording_transport(stamps: list[float]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(200, json={})

    return httpx.MockTransport(handler)


def _max_in_window(stamps: list[float], window: float) -> int:
    s = sorted(stamps)
    best, j = 0, 0
    for i in range(len(s)):
        while s[i] - s[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_concurrent_callers_on_two_clients_share_one_rate(
    demo: Connector, redis: aioredis.Redis, redis_prefix: str
) -> None:
    """Two clients (as two worker processes would have) x 20 concurrent callers, 40 requests/s, burst 4:
    no 0.5 s window sees more than 20 + 4 requests, and 60 requests take at least (60 - 4) / 40 s."""
    rate, burst, n = 40.0, 4.0, 60
    stamps: list[float] = []
    clients = []
    for _ in range(2):
        c = client_for(
            demo, transport=_recording_transport(stamps), redis=redis, prefix=redis_prefix, rate_per_second=rate
        )
        assert c.limiter is not None
        c.limiter.burst = burst
        c.limiter._args[1] = repr(burst)
        clients.append(c)

    sem = asyncio.Semaphore(40)

    async def one(i: int) -> None:
        async with sem:
            await clients[i % 2].get("https://demo.myshopify.com/x")

    await asyncio.gather(*(one(i) for i in range(n)))
    for c in clients:
        await c.aclose()
    assert len(stamps) == n
    assert _max_in_window(stamps, 0.5) <= rate * 0.5 + burst + 1
    assert max(stamps) - min(stamps) >= (n - burst) / rate * 0.95


async def test_limiter_keys_live_under_the_prefix(redis: aioredis.Redis, redis_prefix: str) -> None:
    lim = RateLimiter(redis, prefix=redis_prefix, connection="shipbob-us", rate_per_second=2.5)
    await lim.acquire()
    assert await redis.exists(f"{redis_prefix}:ratelimit:shipbob-us") == 1


async def test_a_saturated_limiter_raises_retriable_instead_of_waiting_long(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    lim = RateLimiter(redis, prefix=redis_prefix, connection="amazon-eu", rate_per_second=1.0, burst=1, max_wait=0.5)
    assert await lim.acquire() == 0.0
    with pytest.raises(RetriableError) as info:  # the next slot is about 1 s away: above max_wait
        await lim.acquire()
    assert info.value.connection == "amazon-eu"
    assert info.value.retry_after is not None and 0.5 < info.value.retry_after <= 1.0


async def test_pause_after_429_makes_every_client_wait(redis: aioredis.Redis, redis_prefix: str) -> None:
    a = RateLimiter(redis, prefix=redis_prefix, connection="shop", rate_per_second=100, max_wait=0.1)
    b = RateLimiter(redis, prefix=redis_prefix, connection="shop", rate_per_second=100, max_wait=0.1)
    await a.pause(5.0)
    with pytest.raises(RetriableError) as info:
        await b.acquire()
    assert info.value.retry_after is not None and 4.0 < info.value.retry_after <= 5.0


async def test_amazon_rate_header_is_learned_by_every_process(
    demo: Connector, redis: aioredis.Redis, redis_prefix: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # getOrderItems answers with its real rate (FORMATS.md 2.1)
        return httpx.Response(200, headers={"x-amzn-RateLimit-Limit": "0.5", "x-amzn-RequestId": "r-1"}, json={})

    async with client_for(
        demo, transport=httpx.MockTransport(handler), redis=redis, prefix=redis_prefix, rate_per_second=50
    ) as client:
        await client.get("https://sellingpartnerapi-na.amazon.com/orders/v0/orders/1/orderItems")
    assert float(await redis.get(f"{redis_prefix}:ratelimit:shop-eu:rate")) == 0.5
    other = RateLimiter(redis, prefix=redis_prefix, connection="shop-eu", rate_per_second=50, burst=1, max_wait=0.2)
    await other.acquire()
    with pytest.raises(RetriableError):  # at the learned 0.5/s the next slot is about 2 s away
        await other.acquire()


async def test_high_rates_reserve_blocks_of_slots_and_still_respect_the_rate(
    redis: aioredis.Redis, redis_prefix: str
) -> None:
    """2000/s with a burst of 100: each EVALSHA reserves 40 slots (20 ms), and two processes' worth of
    callers stay within rate x window + burst + one block per process."""
    rate, burst = 2000.0, 100.0
    lims = [
        RateLimiter(redis, prefix=redis_prefix, connection="fast", rate_per_second=rate, burst=burst) for _ in range(2)
    ]
    calls = 0
    for lim in lims:
        orig = lim._acquire

        async def counted(*a: object, _orig: object = orig, **k: object) -> object:
            nonlocal calls
            calls += 1
            return await _orig(*a, **k)  # type: ignore[operator]

        lim._acquire = counted
    stamps: list[float] = []

    async def caller(lim: RateLimiter) -> None:
        for _ in range(25):
            await lim.acquire()
            stamps.append(time.monotonic())

    await asyncio.gather(*(caller(lims[i % 2]) for i in range(32)))
    assert len(stamps) == 800
    assert calls <= 800 / 40 + 4
    assert _max_in_window(stamps, 0.1) <= rate * 0.1 + burst + 2 * 40
    assert max(stamps) - min(stamps) >= (800 - burst - 2 * 40) / rate * 0.95
