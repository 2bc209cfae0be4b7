"""Engines: each process kind names its PostgreSQL sessions, so an operator can tell in
pg_stat_activity which sessions are the API's and which a worker's."""

from __future__ import annotations

from sqlalchemy import text

from hub.store import Store


async def test_sessions_carry_the_process_kind(pg_url: str) -> None:
    store = Store(pg_url, application_name="orderhub-worker")
    try:
        async with store.engine.connect() as conn:
            name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar()
    finally:
        await store.close()
    assert name == "orderhub-worker"
