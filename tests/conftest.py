"""Shared fixtures: a private PostgreSQL database and Redis key prefix per test run.

PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) must be running: a missing
service fails the run, it never skips (override with ORDERHUB_TEST_PG / ORDERHUB_TEST_REDIS).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from hub.store import Store
from hub.store.migrate import upgrade
from hub.store.tables import metadata

PG_ADMIN = os.environ.get("ORDERHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("ORDERHUB_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]


async def _pg_admin(sql: str) -> None:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable at {PG_ADMIN}: {exc}", pytrace=False)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head."""
    name = f"orderhub_t_{RUN_ID}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    p = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{p}")
    return p


_TRUNCATE = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)


async def _fresh_pg(pg_url: str) -> Store:
    store = Store(pg_url, pool_size=20)
    async with store.begin() as conn:
        await conn.execute(text(f"TRUNCATE {_TRUNCATE} RESTART IDENTITY CASCADE"))
    return store


def _fresh_sqlite(template: Path, tmp_path: Path) -> Store:
    db = tmp_path / "hub.db"
    shutil.copy(template, db)
    return Store(f"sqlite+aiosqlite:///{db}")


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    """A truncated PostgreSQL store."""
    store = await _fresh_pg(pg_url)
    yield store
    await store.close()


@pytest.fixture
async def sqlite_store(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Store]:
    store = _fresh_sqlite(sqlite_template, tmp_path)
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_url: str
) -> AsyncIterator[Store]:
    """The same test against SQLite and the real PostgreSQL."""
    s = _fresh_sqlite(sqlite_template, tmp_path) if request.param == "sqlite" else await _fresh_pg(pg_url)
    yield s
    await s.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A Redis key prefix private to this test; its keys are deleted afterwards."""
    prefix = f"ohtest:{RUN_ID}:{uuid.uuid4().hex[:6]}"
    client = aioredis.from_url(REDIS)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Redis is required for the tests and is not reachable at {REDIS}: {exc}", pytrace=False)
    yield prefix
    # arq names its cron runs "arq:job:cron:<queue>:..." (a day's TTL): the queue carries the prefix
    keys = [k for m in (f"{prefix}*", f"arq:*{prefix}*") async for k in client.scan_iter(match=m, count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def redis_url() -> str:
    return REDIS
