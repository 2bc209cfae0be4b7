"""Two hubs on one Redis (each with its ORDERHUB_REDIS_PREFIX) each get their own periodic runs:
arq records a cron run in Redis as ``arq:job:<cron name>:<time>`` whatever the queue, so runs of
two hubs named alike would be taken for one and the second hub's tick skipped."""

from __future__ import annotations

import redis.asyncio as aioredis

from hub.config import Settings
from hub.sync.queue import ArqQueue
from hub.sync.worker import make_worker

RUN_AT_MS = 1_795_300_000_000  # one schedule time, as both hubs' workers compute it


async def test_two_hubs_sharing_redis_both_enqueue_their_tick_of_the_same_second(
    redis_url: str, redis_prefix: str
) -> None:
    direct = aioredis.from_url(redis_url)
    job_ids: list[str] = []
    try:
        for hub in ("a", "b"):
            prefix = f"{redis_prefix}{hub}"
            worker = make_worker(Settings(redis_prefix=prefix), redis_url)
            tick = next(c for c in worker.cron_jobs if c.name.endswith("tick"))
            queue = await ArqQueue.connect(redis_url, prefix)
            try:
                job_ids.append(f"{tick.name}:{RUN_AT_MS}")  # the id arq's run_cron gives this run
                assert await queue.enqueue(tick.name, job_id=job_ids[-1]), f"hub {hub}'s tick was taken as a duplicate"
            finally:
                await queue.close()
        assert job_ids[0] != job_ids[1]
    finally:
        await direct.delete(*(f"arq:job:{j}" for j in job_ids))
        await direct.aclose()
