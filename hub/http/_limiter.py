"""A per-connection rate limiter shared by every worker process through Redis.

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp) in a Lua script:
a request *reserves* the next free slot with one ``EVALSHA`` and then sleeps until that
slot, so callers never poll. At high rates one call reserves a small block of consecutive
slots (at most ~20 ms worth) that this process's next requests use in turn. The clock is Redis's own (``TIME``), so processes on different
machines agree. Keys: ``{prefix}:ratelimit:{connection}`` (the theoretical arrival time, µs)
and ``{prefix}:ratelimit:{connection}:rate`` (a rate learned from the API's headers).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from hub.errors import RetriableError

#: KEYS: tat, learned rate. ARGV: rate/s, burst, max wait µs, slots to reserve (k).
#: Reserves k consecutive slots and returns {first, interval}: slot i may be used ``first + i * interval`` µs
#: from now (<= 0: at once); or {-1, wait} when the first slot is further than the maximum wait away
#: (nothing is reserved then).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local burst = tonumber(ARGV[2])
local k = tonumber(ARGV[4])
local interval = math.floor(1000000 / rate)
if interval < 1 then interval = 1 end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local first = tat + interval - burst * interval - now
if first > tonumber(ARGV[3]) then return {-1, math.floor(first)} end
local new_tat = tat + k * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return {math.floor(first), interval}
"""

#: KEYS: tat, learned rate. ARGV: rate/s, burst, pause µs. Nobody gets a slot before now + pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[1])
local interval = math.floor(1000000 / rate)
local target = now + tonumber(ARGV[3]) + (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < target then
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', math.floor((target - now) / 1000) + 1000)
end
return 1
"""


class RateLimiter:
    """At most ``rate_per_second`` requests (bursts of ``burst``) for one connection, across all processes.

    ``await limiter.acquire()`` before each request; ``pause(seconds)`` after a 429 so that every
    worker backs off; ``learn(rate)`` when the API states its real rate (Amazon's ``x-amzn-RateLimit-Limit``).
    """

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str,
        connection: str,
        rate_per_second: float,
        burst: float | None = None,
        max_wait: float = 30.0,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"connection {connection}: rate_per_second must be > 0 (got {rate_per_second})")
        self.redis = redis
        self.connection = connection
        self.rate = float(rate_per_second)
        self.burst = float(burst if burst is not None else max(1.0, self.rate))
        self.max_wait = max_wait
        self.key = f"{prefix}:ratelimit:{connection}"
        self.rate_key = f"{self.key}:rate"
        self._keys = [self.key, self.rate_key]
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)
        self._args = [repr(self.rate), repr(self.burst), str(int(max_wait * 1_000_000))]
        self.learned: float | None = None
        self._slots: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._stale = 1.0

    def _block(self) -> int:
        # Reserve at most ~20 ms of slots per round trip: one EVALSHA per request at API-like rates,
        # one per up to 64 requests at very high rates.
        # A process holds at most one block of unused slots, so it can run ahead of the shared schedule by
        # at most one block: keep that within the burst.
        return max(1, min(64, int((self.learned or self.rate) * 0.02), int(self.burst)))

    async def acquire(self) -> float:
        """Wait for this process's next slot; returns the seconds waited.

        Raises :class:`~hub.errors.RetriableError` (with ``retry_after``) instead of waiting longer than
        ``max_wait``: the job is better re-queued than holding a worker.
        """
        slots = self._slots
        while True:
            now = time.monotonic()
            while slots and slots[0] < now - self._stale:
                slots.popleft()  # reserved over a second ago and unused: let it go
            if slots:
                at = slots.popleft()
                break
            async with self._lock:
                if slots:
                    continue
                k = self._block()
                first, interval = await self._acquire(keys=self._keys, args=[*self._args, str(k)])
                first, interval = int(first), int(interval)
                if first == -1:
                    wait = interval / 1_000_000
                    raise RetriableError(
                        f"connection {self.connection}: outbound rate limit of {self.learned or self.rate:g} "
                        f"requests/s is saturated; next free slot in {wait:.1f}s. The sync will retry.",
                        connection=self.connection,
                        retry_after=wait,
                    )
                base = time.monotonic()
                self._stale = max(interval / 1_000_000, 1.0)
                slots.extend(base + max(0, first + i * interval) / 1_000_000 for i in range(k))
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
            return delay
        return 0.0

    async def pause(self, seconds: float) -> None:
        """No slot for anyone on this connection before ``seconds`` from now (after a 429 with Retry-After)."""
        self._slots.clear()
        await self._pause(keys=self._keys, args=[*self._args[:2], str(int(seconds * 1_000_000))])

    async def learn(self, rate_per_second: float, ttl: int = 300) -> None:
        """Use the rate the API announced (for ``ttl`` seconds, in every process) instead of the configured one."""
        if rate_per_second <= 0 or rate_per_second == self.learned:
            return
        self.learned = rate_per_second
        self._slots.clear()
        await self.redis.set(self.rate_key, repr(float(rate_per_second)), ex=ttl)
