"""A coalesced job absorbs a newer identical one by locking its row until the newer change commits,
without rewriting it (real PostgreSQL): no worker pushes stale stock meanwhile, and a hot SKU's
pending push is not rewritten for every order that changes its stock."""

from __future__ import annotations

from sqlalchemy import func, select, text

from hub.runtime import Hub
from hub.store import tables as t
from hub.store._pending import flush_pending
from hub.sync import jobs


async def _push(conn: object, sku: str) -> None:
    await jobs.enqueue(conn, "shop", "push_inventory", sku, {}, coalesce=True, delay=0)  # type: ignore[arg-type]


async def test_an_absorbed_push_is_locked_until_the_change_commits_and_not_rewritten(hub: Hub) -> None:
    async with hub.store.begin() as conn:
        await _push(conn, "SKU-HOT")
    async with hub.store.connect() as c:
        (version,) = (await c.execute(text("SELECT xmin::text FROM sync_jobs WHERE object_id = 'SKU-HOT'"))).one()

    async with hub.store.begin() as conn:
        await _push(conn, "SKU-HOT")  # absorbed by the pending job
        await flush_pending(conn)  # written now, as at the commit of an order's transaction
        assert await jobs.claim(hub, 10) == []  # the pending push is locked: no claim can take it yet
    claimed = await jobs.claim(hub, 10)
    assert [j.object_id for j in claimed] == ["SKU-HOT"]  # committed: the push runs, reading the new stock

    async with hub.store.connect() as c:
        n = (await c.execute(select(func.count()).select_from(t.sync_jobs))).scalar_one()
        (after,) = (await c.execute(text("SELECT xmin::text FROM sync_jobs WHERE object_id = 'SKU-HOT'"))).one()
    assert n == 1  # one job for the SKU
    assert after != version  # (the claim itself rewrote it: running)


async def test_absorbing_writes_no_new_row_version(hub: Hub) -> None:
    async with hub.store.begin() as conn:
        await _push(conn, "SKU-HOT")
    q = text("SELECT xmin::text, updated_at FROM sync_jobs WHERE object_id = 'SKU-HOT'")
    async with hub.store.connect() as c:
        before = (await c.execute(q)).one()
    for _ in range(3):
        async with hub.store.begin() as conn:
            await _push(conn, "SKU-HOT")
    async with hub.store.connect() as c:
        assert (await c.execute(q)).one() == before
