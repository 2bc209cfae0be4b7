import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from hub.store import Store
from hub.store.tables import metadata


def test_db_upgrade_on_empty_sqlite_twice(tmp_path: Path) -> None:
    env = {**os.environ, "ORDERHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-m", "hub", "db", "upgrade"], env=env, capture_output=True, text=True, check=False
        )
        assert r.returncode == 0, r.stderr
        assert "is at head" in r.stdout


async def test_migrated_schema_has_every_table(store: Store) -> None:
    async with store.connect() as c:
        names = await c.run_sync(lambda sc: set(inspect(sc).get_table_names()))
    assert set(metadata.tables) <= names


def test_db_upgrade_on_an_empty_postgres_database_twice() -> None:
    import asyncio
    import uuid

    from tests.conftest import PG_ADMIN, _pg_admin

    name = f"orderhub_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        env = {**os.environ, "ORDERHUB_DATABASE_URL": url}
        for _ in range(2):
            r = subprocess.run(
                [sys.executable, "-m", "hub", "db", "upgrade"], env=env, capture_output=True, text=True, check=False
            )
            assert r.returncode == 0, r.stderr
            assert "is at head" in r.stdout
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
