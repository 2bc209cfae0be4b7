"""Replaying dead-lettered syncs in bulk: concurrent yet once per job, in order per object, audited
(real PostgreSQL and Redis, the toy 3PL behind respx)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from click.testing import CliRunner
from sqlalchemy import func, select, update

from hub import http
from hub.cli.failures import failures as failures_cli
from hub.clock import now
from hub.errors import NotFound
from hub.runtime import Hub
from hub.store import tables as t
from hub.sync import failures, inbox, jobs
from hub.sync.operations import OPERATIONS
from tests.sync import toy
from tests.sync.conftest import drain, webhook

LABEL = "toy_print_label"  # a second 3PL operation per fulfilment, so one object has several failures


@dataclass
class ThreePL:
    """The fake 3PL's log, and how it answers."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (fulfilment id, what), in arrival order
    orders: Any = None  # httpx.Response factory for POST /orders
    labels: Any = None  # and for POST /labels
    in_flight: int = 0
    max_in_flight: int = 0
    overlap: asyncio.Event = field(default_factory=asyncio.Event)
    label_pause: Any = None  # seconds a label job of number n dawdles before calling (to tempt reordering)


@pytest.fixture
def threepl(router: respx.Router, monkeypatch: pytest.MonkeyPatch) -> ThreePL:
    fake = ThreePL()
    fake.orders = lambda: httpx.Response(422, json={"error": "unknown SKU SKU-1"})
    fake.labels = lambda: httpx.Response(422, json={"error": "no label printer"})

    def orders(request: httpx.Request) -> httpx.Response:
        ref = json.loads(request.content)["reference"]
        response: httpx.Response = fake.orders()
        if response.status_code < 300:
            fake.calls.append((ref, "submit"))
            return httpx.Response(response.status_code, json={"id": f"W-{ref}"})
        return response

    def labels(request: httpx.Request) -> httpx.Response:
        doc = json.loads(request.content)
        response: httpx.Response = fake.labels()
        if response.status_code < 300:
            fake.calls.append((doc["reference"], f"label{doc['n']}"))
        return response

    router.routes["wms_orders"].side_effect = orders
    router.post(url__regex=r"https://toy-wms\.test/labels$", name="labels").side_effect = labels

    async def print_label(hub: Hub, job: Any) -> dict[str, Any]:
        """Counts the label jobs running at once; the first waits (bounded) for a second, so a replay
        that runs objects one at a time shows up as max_in_flight == 1."""
        fake.in_flight += 1
        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            if fake.in_flight >= 2:
                fake.overlap.set()
            else:
                try:
                    await asyncio.wait_for(fake.overlap.wait(), 10)
                except TimeoutError:
                    pass
            if fake.label_pause is not None:
                await asyncio.sleep(fake.label_pause(job.payload["n"]))
            connector = hub.connector(job.connection)
            await http.call(
                connector.http,  # type: ignore[arg-type]
                "POST",
                "/labels",
                json={"reference": job.object_id, "n": job.payload["n"]},
                retry=False,
            )
            return {}
        finally:
            fake.in_flight -= 1

    monkeypatch.setitem(OPERATIONS, LABEL, print_label)
    monkeypatch.setattr(jobs, "BASE_DELAY", 0.01)
    return fake


async def dead_letter(hub: Hub, objects: int, labels: int) -> list[str]:
    """``objects`` fulfilments whose submission the 3PL refused, each followed by ``labels`` refused label
    jobs; the failure ids, oldest first."""
    for i in range(objects):
        headers, body = webhook({"id": f"e{i}", "order": toy.order_doc(f"o{i}")})
        await inbox.accept(hub, "shop", headers, body)
    await drain(hub)
    async with hub.store.begin() as c:
        fulfilments = [r.id for r in (await c.execute(select(t.fulfillments.c.id).order_by(t.fulfillments.c.id)))]
        for n in range(labels):
            for ful in fulfilments:
                await jobs.enqueue(c, "wms", LABEL, ful, {"n": n}, key=f"{LABEL}:{ful}:{n}")
    await drain(hub)
    async with hub.store.connect() as c:
        ids = [r.id for r in (await c.execute(select(t.sync_failures.c.id).order_by(t.sync_failures.c.id)))]
    assert len(fulfilments) == objects and len(ids) == objects * (1 + labels)
    return ids


def recovered(fake: ThreePL) -> None:
    fake.orders = lambda: httpx.Response(201, json={})
    fake.labels = lambda: httpx.Response(200, json={})


async def statuses(hub: Hub) -> Counter[str]:
    async with hub.store.connect() as c:
        return Counter(r.status for r in (await c.execute(select(t.sync_failures.c.status))).all())


async def audit(hub: Hub) -> list[Any]:
    async with hub.store.connect() as c:
        return list((await c.execute(select(t.replays).order_by(t.replays.c.id))).all())


async def test_concurrent_replay_calls_the_3pl_once_per_job_in_order_per_object_within_the_connection_limit(
    hub: Hub, threepl: ThreePL
) -> None:
    hub.config.connection("wms").max_concurrency = 3
    ids = await dead_letter(hub, objects=50, labels=3)  # 200 failures across 50 fulfilments
    recovered(threepl)
    seen: list[str] = []

    results = await failures.replay_matching(
        hub,
        failures.FailureFilter(connection="wms"),
        actor="test",
        concurrency=32,
        progress=lambda r: seen.append(r.failure_id),
    )

    assert [r.failure_id for r in results] == ids and sorted(seen) == ids
    assert Counter(r.result for r in results) == {"resolved": 200}
    submits = Counter(ref for ref, what in threepl.calls if what == "submit")
    assert len(submits) == 50 and set(submits.values()) == {1}  # each fulfilment created once at the 3PL
    for ref in submits:
        assert [what for r, what in threepl.calls if r == ref] == ["submit", "label0", "label1", "label2"]
    assert 2 <= threepl.max_in_flight <= 3  # objects in parallel, within the connection's max_concurrency
    assert await statuses(hub) == {"resolved": 200}
    rows = await audit(hub)
    assert sorted(r.failure_id for r in rows) == ids and {(r.result, r.dry_run, r.actor) for r in rows} == {
        ("resolved", False, "test")
    }
    async with hub.store.connect() as c:
        submitted = (
            await c.execute(
                select(func.count()).select_from(t.fulfillments).where(t.fulfillments.c.status == "submitted")
            )
        ).scalar_one()
    assert submitted == 50


async def test_one_objects_failures_replay_in_creation_order_even_when_later_ones_are_quicker(
    hub: Hub, threepl: ThreePL, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.config.connection("wms").max_concurrency = 32
    await dead_letter(hub, objects=4, labels=10)  # several failures of one object in one page, many slots
    recovered(threepl)
    submit = OPERATIONS["submit_fulfillment"]

    async def slow_submit(h: Hub, job: Any) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return await submit(h, job)

    monkeypatch.setitem(OPERATIONS, "submit_fulfillment", slow_submit)
    threepl.label_pause = lambda n: 0.003 * (10 - n)  # a later label would overtake an earlier one if it could

    results = await failures.replay_matching(hub, failures.FailureFilter(), actor="test", concurrency=32)

    assert {r.result for r in results} == {"resolved"} and len(threepl.calls) == 44
    for ref in {ref for ref, _ in threepl.calls}:
        assert [what for r, what in threepl.calls if r == ref] == ["submit"] + [f"label{n}" for n in range(10)]
    assert threepl.max_in_flight >= 2


async def test_replaying_twice_changes_nothing(hub: Hub, threepl: ThreePL) -> None:
    ids = await dead_letter(hub, objects=4, labels=1)
    recovered(threepl)
    first = await failures.replay_matching(hub, failures.FailureFilter(), actor="test", ids=ids)
    calls = list(threepl.calls)

    again = await failures.replay_matching(hub, failures.FailureFilter(), actor="test", ids=list(reversed(ids)))
    by_filter = await failures.replay_matching(hub, failures.FailureFilter(connection="wms"), actor="test")

    assert {r.result for r in first} == {"resolved"} and len(calls) == 8
    assert [r.failure_id for r in again] == list(reversed(ids))  # reported in the order asked
    assert {r.result for r in again} == {"already_resolved"} and by_filter == []
    assert threepl.calls == calls
    detail = await failures_detail(hub, ids[0])
    assert [x["result"] for x in detail["replays"]] == ["resolved", "already_resolved"]


async def failures_detail(hub: Hub, fid: str) -> dict[str, Any]:
    async with hub.store.connect() as c:
        return await failures.get_failure(c, fid)


async def test_two_replays_at_once_run_each_job_once(hub: Hub, threepl: ThreePL) -> None:
    ids = await dead_letter(hub, objects=20, labels=1)
    recovered(threepl)
    flt = failures.FailureFilter(connection="wms")

    a, b = await asyncio.gather(
        failures.replay_matching(hub, flt, actor="a", concurrency=8),
        failures.replay_matching(hub, flt, actor="b", ids=ids, concurrency=8),
    )

    assert Counter(threepl.calls) == {(ref, what): 1 for ref, what in threepl.calls} and len(threepl.calls) == 40
    results: dict[str, list[str]] = {}
    for r in [*a, *b]:
        results.setdefault(r.failure_id, []).append(r.result)
    for fid in ids:
        assert results[fid].count("resolved") == 1, results[fid]
        assert set(results[fid]) <= {"resolved", "already_resolved", "in_progress"}
    assert await statuses(hub) == {"resolved": 40}


async def test_a_still_failing_3pl_keeps_the_failures_open_with_the_new_error_and_audits_each_attempt(
    hub: Hub, threepl: ThreePL
) -> None:
    ids = await dead_letter(hub, objects=3, labels=1)
    threepl.orders = lambda: httpx.Response(422, json={"error": "warehouse closed"})  # permanent
    threepl.labels = lambda: httpx.Response(503, json={"error": "printer warming up"})  # transient

    for _ in range(2):
        results = await failures.replay_matching(hub, failures.FailureFilter(connection="wms"), actor="test")
        assert {r.result for r in results} == {"failed"}
        assert all("warehouse closed" in (r.detail or "") or "503" in (r.detail or "") for r in results)

    assert threepl.calls == []
    assert await statuses(hub) == {"open": 6}
    async with hub.store.connect() as c:
        rows = (await c.execute(select(t.sync_failures).order_by(t.sync_failures.c.id))).all()
        job_status = {
            r.operation: r.status
            for r in await c.execute(
                select(t.sync_jobs.c.operation, t.sync_jobs.c.status).where(t.sync_jobs.c.connection == "wms")
            )
        }
    submits = [r for r in rows if r.operation == "submit_fulfillment"]
    labels = [r for r in rows if r.operation == LABEL]
    assert all("warehouse closed" in r.last_error for r in submits)
    assert all("503" in r.last_error and "no label printer" not in r.last_error for r in labels)
    assert job_status == {"submit_fulfillment": "failed", LABEL: "pending"}  # the worker retries the transient ones
    per_failure = Counter(r.failure_id for r in await audit(hub))
    assert per_failure == dict.fromkeys(ids, 2)


async def test_dry_run_calls_nothing_and_audits_each_failure(hub: Hub, threepl: ThreePL) -> None:
    ids = await dead_letter(hub, objects=3, labels=1)
    recovered(threepl)

    results = await failures.replay_matching(hub, failures.FailureFilter(), actor="test", dry_run=True)

    assert [r.result for r in results] == ["would_replay"] * 6
    assert results[0].detail is not None and "submit_fulfillment on wms" in results[0].detail
    assert threepl.calls == []
    assert await statuses(hub) == {"open": 6}
    rows = await audit(hub)
    assert sorted(r.failure_id for r in rows) == ids and {(r.dry_run, r.result) for r in rows} == {
        (True, "would_replay")
    }
    async with hub.store.connect() as c:
        assert {
            r.status
            for r in (await c.execute(select(t.sync_jobs.c.status).where(t.sync_jobs.c.connection == "wms"))).all()
        } == {"failed"}


async def test_a_job_held_by_a_worker_is_not_run_again(hub: Hub, threepl: ThreePL) -> None:
    [submit] = await dead_letter(hub, objects=1, labels=0)
    recovered(threepl)
    async with hub.store.begin() as c:  # a worker (or another replay) holds the job right now
        await c.execute(update(t.sync_jobs).values(status="running", lease_until=now() + timedelta(minutes=1)))

    r = await failures.replay_one(hub, submit, actor="test")

    assert r.result == "in_progress" and r.detail is not None and "not run again" in r.detail
    assert threepl.calls == [] and await statuses(hub) == {"open": 1}


async def test_unknown_ids_raise_before_anything_runs(hub: Hub, threepl: ThreePL) -> None:
    ids = await dead_letter(hub, objects=1, labels=0)
    recovered(threepl)
    with pytest.raises(NotFound, match="fail_nope"):
        await failures.replay_matching(hub, failures.FailureFilter(), actor="test", ids=[*ids, "fail_nope"])
    assert threepl.calls == [] and await audit(hub) == []


def test_the_cli_refuses_a_concurrency_below_one() -> None:
    r = CliRunner().invoke(failures_cli, ["replay", "--all", "--concurrency", "0"])
    assert r.exit_code == 2 and "--concurrency" in r.output


async def test_failures_split_for_several_processes_keep_each_object_whole_and_in_order(
    hub: Hub, threepl: ThreePL
) -> None:
    ids = await dead_letter(hub, objects=12, labels=2)  # per fulfilment: its submission, then two label jobs
    async with hub.store.connect() as c:
        object_of = {r.id: r.object_id for r in (await c.execute(select(t.sync_failures))).all()}

    shards = await failures.shard_matching(hub, failures.FailureFilter(), 3)

    assert len(shards) == 3 and sorted(i for s in shards for i in s) == sorted(ids)  # each once
    assert all(s == sorted(s) for s in shards)  # creation order within a process
    where = {object_of[i]: n for n, s in enumerate(shards) for i in s}
    assert all(where[object_of[i]] == n for n, s in enumerate(shards) for i in s)  # an object in one process
    assert sum(1 for s in shards if s) >= 2  # 12 objects spread over the processes
    assert await failures.shard_matching(hub, failures.FailureFilter(), 3, ids=ids[:3]) != [[], [], []]
    with pytest.raises(NotFound):
        await failures.shard_matching(hub, failures.FailureFilter(), 3, ids=["fail_unknown"])
