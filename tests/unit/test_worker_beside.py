"""A worker's poll and backorder sweep run beside its jobs: the arq job that starts one returns at
once, so that a long poll holds none of the worker's job slots (it runs one job at a time)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.sync import worker


async def test_a_poll_runs_beside_the_jobs_once_at_a_time_and_stops_with_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def slow_poll(ctx: dict[str, Any]) -> int:
        started.append(1)
        await release.wait()
        return 0

    monkeypatch.setattr(worker, "poll_now", slow_poll)
    ctx: dict[str, Any] = {}
    assert await asyncio.wait_for(worker.poll(ctx), 1) is True  # the job returns while the poll runs
    await asyncio.sleep(0)
    assert started == [1]
    assert await worker.poll(ctx) is False  # the previous poll still runs: no second one
    release.set()
    await ctx["beside"]["poll"]
    assert await worker.poll(ctx) is True  # done: the next cron run starts another
    await worker.shutdown(ctx)  # cancelled with the worker (no hub in this ctx)
    assert ctx["beside"]["poll"].cancelled()


async def test_a_failed_or_endless_poll_is_logged_and_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(ctx: dict[str, Any]) -> int:
        raise ConnectionError("the channel is down")

    async def endless(ctx: dict[str, Any]) -> int:
        await asyncio.Event().wait()
        return 0

    monkeypatch.setattr(worker, "poll_now", failing)
    ctx: dict[str, Any] = {}
    assert await worker.poll(ctx)
    await ctx["beside"]["poll"]  # the task itself never raises
    assert any("poll failed" in r.getMessage() for r in caplog.records)
    caplog.clear()
    monkeypatch.setattr(worker, "poll_now", endless)
    monkeypatch.setattr(worker, "BESIDE_TIMEOUT_S", 0.05)
    assert await worker.poll(ctx)
    await asyncio.wait_for(ctx["beside"]["poll"], 2)  # ended by its timeout, as arq's job timeout did
    errors = [r.fields["error"] for r in caplog.records if r.getMessage() == "poll failed"]  # type: ignore[attr-defined]
    assert len(errors) == 1 and errors[0].startswith("TimeoutError")
