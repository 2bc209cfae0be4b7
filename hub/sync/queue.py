"""The hub's small queue interface, with arq behind it.

Durable work lives in the database (the inbox, sync jobs, the outbox); the queue only
carries *nudges* ("there is work") and cron ticks, so losing a queued job loses no data
and the queue library can be swapped by implementing :class:`Queue`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from arq import create_pool
from arq.connections import ArqRedis

from hub.redis_urls import arq_settings


class Queue(Protocol):
    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> bool:
        """Queue ``function(*args)``; False when a job with ``job_id`` is already queued (coalesced)."""
        ...

    async def close(self) -> None: ...


def queue_name(prefix: str) -> str:
    return f"{prefix}:queue"


class ArqQueue:
    """:class:`Queue` on arq/Redis."""

    def __init__(self, pool: ArqRedis, prefix: str) -> None:
        self.pool = pool
        self.name = queue_name(prefix)

    @classmethod
    async def connect(cls, redis_url: str, prefix: str) -> ArqQueue:
        pool = await create_pool(arq_settings(redis_url), default_queue_name=queue_name(prefix))
        return cls(pool, prefix)

    async def enqueue(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> bool:
        job = await self.pool.enqueue_job(function, *args, _job_id=job_id, _defer_by=defer_by, _queue_name=self.name)
        return job is not None

    async def close(self) -> None:
        await self.pool.aclose()


def bucket_id(name: str, period: float = 0.05) -> str:
    """A job id shared by every nudge within ``period`` seconds: a burst of nudges runs one job,
    and a nudge that arrives while that job runs gets the next bucket (so no work is missed)."""
    return f"{name}:{int(time.time() / period)}"
