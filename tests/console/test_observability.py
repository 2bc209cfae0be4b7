"""/metrics passes the Prometheus text exposition format check; /healthz and /readyz.

The format check is ``prometheus_client.parser.text_string_to_metric_families`` (always) and
``promtool check metrics`` when promtool is on PATH (it is not installed by scripts/bootstrap:
Debian's ``prometheus`` package is about 100 MB installed for one checker).
"""

from __future__ import annotations

import asyncio
import shutil
from asyncio.subprocess import PIPE, STDOUT
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hub.runtime import Hub
from hub.store import Store
from hub.sync import inbox
from tests.sync import toy
from tests.sync.conftest import drain, webhook

Client = TestClient[Any, Any]

#: Family name (as the parser reports it: counters without ``_total``) -> type and label names.
EXPECTED = {
    "orderhub_queue_depth": ("gauge", {"queue"}),
    "orderhub_queue_oldest_age_seconds": ("gauge", {"queue"}),
    "orderhub_job_latency_seconds": ("histogram", {"job"}),
    "orderhub_jobs": ("counter", {"job", "outcome"}),
    "orderhub_sync_failures": ("counter", {"connection", "operation"}),
    "orderhub_sync_retries": ("counter", {"connection", "operation"}),
    "orderhub_webhooks_received": ("counter", {"connection", "outcome"}),
    "orderhub_webhook_deliveries": ("counter", {"outcome"}),
    "orderhub_allocation_latency_seconds": ("histogram", set()),
    "orderhub_orders": ("gauge", {"status"}),
}


async def _activity(hub: Hub) -> None:
    for ext in ("m-1", "m-2"):
        headers, body = webhook({"id": f"evt-{ext}", "order": toy.order_doc(ext)})
        await inbox.accept(hub, "shop", headers, body)
    headers, body = webhook({"id": "evt-bad", "topic": "order"})
    await inbox.accept(hub, "shop", headers, body)
    await drain(hub)


async def test_metrics_is_valid_prometheus_text_with_the_expected_families(hub: Hub, client: Client) -> None:
    await _activity(hub)
    r = await client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}  # raises on a malformed exposition
    for name, (kind, labels) in EXPECTED.items():
        assert name in families, f"{name} missing from /metrics"
        fam = families[name]
        assert fam.type == kind, name
        assert fam.documentation, f"{name} has no HELP text"
        for s in fam.samples:
            assert labels <= set(s.labels), (name, s.labels)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("orderhub_orders", (("status", "released"),))] == 2
    for q in ("inbox", "sync_jobs", "webhook_deliveries"):
        assert ("orderhub_queue_depth", (("queue", q),)) in samples
    assert samples[("orderhub_allocation_latency_seconds_count", ())] >= 2
    assert samples[("orderhub_job_latency_seconds_count", (("job", "inbox"),))] >= 2
    assert samples[("orderhub_webhooks_received_total", (("connection", "shop"), ("outcome", "accepted")))] >= 3
    # histogram buckets are cumulative and end in +Inf = count
    buckets = [
        s
        for s in families["orderhub_allocation_latency_seconds"].samples
        if s.name.endswith("_bucket") and not s.labels.keys() - {"le"}
    ]
    values = [s.value for s in buckets]
    assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == samples[("orderhub_allocation_latency_seconds_count", ())]

    promtool = shutil.which("promtool")
    if promtool:
        proc = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(text.encode()), 60)
        assert proc.returncode == 0, out.decode()


async def test_healthz_answers_while_the_process_runs(client: Client) -> None:
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json()) == {"status": "ok"}


async def test_readyz_is_ok_when_database_and_redis_answer(client: Client) -> None:
    r = await client.get("/readyz")
    assert r.status == 200
    assert await r.json() == {"status": "ok", "database": True, "redis": True}


async def test_readyz_is_503_when_the_database_is_unreachable(hub: Hub, client: Client) -> None:
    real = hub.store
    hub.store = Store("postgresql+asyncpg://postgres@127.0.0.1:1/unreachable")
    try:
        r = await client.get("/readyz")
        assert r.status == 503
        assert await r.json() == {"status": "unavailable", "database": False, "redis": True}
    finally:
        await hub.store.close()
        hub.store = real


async def test_readyz_is_503_when_redis_is_unreachable(hub: Hub, client: Client) -> None:
    real = hub.redis
    hub.redis = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        r = await client.get("/readyz")
        assert r.status == 503
        assert (await r.json())["redis"] is False
    finally:
        await hub.redis.aclose()
        hub.redis = real
