"""Redis Sentinel (``ORDERHUB_REDIS_URL=redis+sentinel://...``): the hub's client and the arq queue
find the master through a real sentinel process watching the test Redis, enqueue on it, and an
arq worker consumes from it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from hub.redis_urls import client
from hub.sync.queue import ArqQueue, queue_name
from tests.conftest import REDIS
from tests.sync.conftest import burst_worker

SERVICE = "orderhub-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def sentinel_url(tmp_path: Path) -> Iterator[str]:
    """A sentinel on a free port, monitoring the test Redis as ``orderhub-test``."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is required for the Sentinel tests (it runs as the sentinel)", pytrace=False)
    target = urlsplit(REDIS)
    port = _free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor {SERVICE} {target.hostname} {target.port or 6379} 1\n"
        f"sentinel down-after-milliseconds {SERVICE} 60000\n"
    )
    proc = subprocess.Popen([server, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(f"SENTINEL get-master-addr-by-name {SERVICE}\r\n".encode())
                    if b"$" in s.recv(256):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"the sentinel on port {port} did not start", pytrace=False)
            time.sleep(0.05)
        db = (target.path or "/0").strip("/") or "0"
        yield f"redis+sentinel://127.0.0.1:{port}/{SERVICE}/{db}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_hub_client_writes_to_the_master_the_sentinel_names(sentinel_url: str, redis_prefix: str) -> None:
    via_sentinel = client(sentinel_url)
    direct = aioredis.from_url(REDIS)
    try:
        key = f"{redis_prefix}:sentinel-probe"
        await via_sentinel.set(key, "through the sentinel")
        assert await direct.get(key) == b"through the sentinel"
    finally:
        await via_sentinel.aclose()
        await direct.aclose()


RAN: list[str] = []


async def probe(ctx: dict[str, Any], value: str) -> str:
    """A job for the worker of the test below."""
    RAN.append(value)
    return value


# arq's Worker.close() calls redis-py's deprecated close(): arq's code, not the hub's
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_arq_enqueues_and_consumes_through_the_sentinel(sentinel_url: str, redis_prefix: str) -> None:
    RAN.clear()
    queue = await ArqQueue.connect(sentinel_url, redis_prefix)
    direct = aioredis.from_url(REDIS)
    try:
        job_id = f"probe-{uuid.uuid4().hex[:6]}"
        assert await queue.enqueue("probe", "hello", job_id=job_id)
        assert not await queue.enqueue("probe", "hello", job_id=job_id)  # coalesced, as on one server
        assert await direct.zcard(queue_name(redis_prefix)) == 1  # on the real master

        worker = burst_worker([probe], sentinel_url, redis_prefix)
        try:
            await asyncio.wait_for(worker.main(), 20)
        finally:
            await worker.close()
        assert RAN == ["hello"]
        assert await direct.zcard(queue_name(redis_prefix)) == 0
    finally:
        await queue.close()
        await direct.aclose()
