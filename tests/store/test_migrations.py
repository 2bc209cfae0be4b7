import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
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


def test_0007_turns_every_jsonb_column_into_json_keeping_the_documents_and_back() -> None:
    """Documents written as jsonb before 0007 read back the same after it (and after its downgrade);
    at head no column of the hub is jsonb any more (the server would parse every document written)."""
    import asyncio
    import uuid

    from alembic import command

    from hub.store.migrate import alembic_config, upgrade
    from tests.conftest import PG_ADMIN, _pg_admin

    name = f"orderhub_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN.rsplit("/", 1)[0]
    doc = '{"total": {"amount": "10.00", "currency": "EUR"}, "lines": [{"sku": "A", "quantity": 2}]}'

    async def column_types() -> dict[str, str]:
        c = await asyncpg.connect(f"{base}/{name}")
        try:
            rows = await c.fetch(
                "SELECT table_name || '.' || column_name AS col, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type IN ('json', 'jsonb')"
            )
            return {r["col"]: r["data_type"] for r in rows}
        finally:
            await c.close()

    async def sql(statement: str) -> Any:
        c = await asyncpg.connect(f"{base}/{name}")
        try:
            return await c.fetchval(statement)
        finally:
            await c.close()

    try:
        url = base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        upgrade(url, "0006")
        before = asyncio.run(column_types())
        assert before["outbox.data"] == "jsonb" and before["orders.data"] == "jsonb"
        asyncio.run(
            sql(
                "INSERT INTO outbox (id, type, data, created_at, dispatched) "
                f"VALUES ('evt_01JAAAAAAAAAAAAAAAAAAAAAAA', 'order.created', '{doc}', now(), false)"
            )
        )
        upgrade(url)
        after = asyncio.run(column_types())
        assert set(after) == set(before)
        assert set(after.values()) == {"json"}
        stored = asyncio.run(sql("SELECT data::text FROM outbox"))
        assert json.loads(stored) == json.loads(doc)
        lz4 = asyncio.run(sql("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"))
        compression = asyncio.run(
            sql(
                "SELECT attcompression::text FROM pg_attribute WHERE attrelid = 'outbox'::regclass AND attname = 'data'"
            )
        )
        assert compression == ("l" if lz4 else "")  # migration 0006's lz4 kept through the rewrite
        command.downgrade(alembic_config(url), "0006")
        assert asyncio.run(column_types()) == before
        assert json.loads(asyncio.run(sql("SELECT data::text FROM outbox"))) == json.loads(doc)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_queue_claims_read_the_partial_indexes_on_sqlite(tmp_path: Path) -> None:
    """Migration 0008 dropped the (status, time) indexes of the inbox and the jobs: the claims, as the
    worker compiles them (status as a bound parameter), must still be index scans, not table scans."""
    import sqlite3
    from datetime import UTC, datetime

    from sqlalchemy import and_, select
    from sqlalchemy.dialects import sqlite

    from hub.store import tables as t
    from hub.store.migrate import upgrade

    db = tmp_path / "q.db"
    upgrade(f"sqlite+aiosqlite:///{db}")
    ts = datetime.now(UTC)
    i, j = t.inbox, t.sync_jobs
    queries = {
        "ix_inbox_pending": select(i.c.id).where(i.c.status == "pending").order_by(i.c.received_at).limit(100),
        "ix_inbox_leased": select(i.c.id)
        .where(and_(i.c.status == "processing", i.c.lease_until < ts))
        .order_by(i.c.lease_until)
        .limit(100),
        "ix_sync_jobs_pending_due": select(j.c.id)
        .where(and_(j.c.status == "pending", j.c.next_run_at <= ts))
        .order_by(j.c.next_run_at)
        .limit(100),
        "ix_sync_jobs_leased": select(j.c.id)
        .where(and_(j.c.status == "running", j.c.lease_until < ts))
        .order_by(j.c.lease_until)
        .limit(100),
    }
    con = sqlite3.connect(db)
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ix_inbox_status_received" not in names and "ix_sync_jobs_status_next" not in names
        for index, q in queries.items():
            compiled = q.compile(dialect=sqlite.dialect())
            params = [compiled.params[k] for k in compiled.positiontup or []]
            params = [p.isoformat() if isinstance(p, datetime) else p for p in params]
            plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + str(compiled), params))
            assert f"USING INDEX {index}" in plan, plan
    finally:
        con.close()


def test_queue_depth_counts_read_the_partial_indexes_on_sqlite(tmp_path: Path) -> None:
    """The depth and back-pressure counts (``hub.sync.stats.open_rows``: one query per status) read the
    partial indexes, not the whole inbox, which keeps every item it ever received."""
    import sqlite3

    from sqlalchemy import func, select
    from sqlalchemy.dialects import sqlite

    from hub.store import tables as t
    from hub.store.migrate import upgrade

    db = tmp_path / "d.db"
    upgrade(f"sqlite+aiosqlite:///{db}")
    cases = [
        (t.inbox, "pending", t.inbox.c.received_at, "ix_inbox_pending"),
        (t.inbox, "processing", t.inbox.c.received_at, "ix_inbox_leased"),
        (t.sync_jobs, "pending", t.sync_jobs.c.created_at, "ix_sync_jobs_pending_due"),
        (t.sync_jobs, "running", t.sync_jobs.c.created_at, "ix_sync_jobs_leased"),
    ]
    con = sqlite3.connect(db)
    try:
        for table, status, since, index in cases:
            # the statement open_rows sends
            compiled = (
                select(func.count(), func.min(since)).where(table.c.status == status).compile(dialect=sqlite.dialect())
            )
            params = [compiled.params[k] for k in compiled.positiontup or []]
            plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + str(compiled), params))
            assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
    finally:
        con.close()


def test_outbox_pending_lists_the_events_not_fanned_out(tmp_path: Path) -> None:
    """Migration 0010: the outbox is append-only; the events not fanned out yet when it runs are
    listed in ``outbox_pending`` (the others not), ``dispatched`` and its index are gone; the fan-out's
    scan reads the new table's primary key in order, on SQLite here and on PostgreSQL."""
    import asyncio
    import sqlite3

    from sqlalchemy import select
    from sqlalchemy.dialects import postgresql, sqlite

    from hub.store import tables as t
    from hub.store.migrate import upgrade
    from tests.conftest import PG_ADMIN

    o, p = t.outbox, t.outbox_pending
    query = select(o.c.seq, o.c.id).join(p, p.c.seq == o.c.seq).order_by(p.c.seq).limit(500)  # as fan_out
    events = (
        "INSERT INTO outbox (id, type, data, created_at, dispatched) VALUES "
        "('evt_01JAAAAAAAAAAAAAAAAAAAAAA1', 'order.created', '[]', '2026-01-01 00:00:00', {f}), "
        "('evt_01JAAAAAAAAAAAAAAAAAAAAAA2', 'order.created', '[]', '2026-01-01 00:00:00', {t})"
    )
    db = tmp_path / "o.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url, "0009")
    con = sqlite3.connect(db)
    try:
        con.execute(events.format(f=0, t=1))
        con.commit()
    finally:
        con.close()
    upgrade(url)
    con = sqlite3.connect(db)
    try:
        assert [r[0] for r in con.execute("SELECT o.id FROM outbox_pending p JOIN outbox o ON o.seq = p.seq")] == [
            "evt_01JAAAAAAAAAAAAAAAAAAAAAA1"
        ]
        assert "dispatched" not in {r[1] for r in con.execute("PRAGMA table_info(outbox)")}
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ix_outbox_undispatched" not in names
        compiled = query.compile(dialect=sqlite.dialect())
        params = [compiled.params[k] for k in compiled.positiontup or []]
        plan = " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + str(compiled), params))
        assert "USE TEMP B-TREE" not in plan, plan  # read in key order, not sorted
    finally:
        con.close()

    import uuid

    from tests.conftest import _pg_admin

    name = f"orderhub_mig_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        base = PG_ADMIN.rsplit("/", 1)[0]
        pg_url = base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
        upgrade(pg_url, "0009")
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))

        async def run(statement: str) -> list[Any]:
            c = await asyncpg.connect(f"{base}/{name}")
            try:
                await c.execute("SET enable_seqscan = off")  # an empty table: ask which index serves it
                return list(await c.fetch(statement))
            finally:
                await c.close()

        asyncio.run(run(events.format(f="false", t="true")))
        upgrade(pg_url)
        listed = asyncio.run(run("SELECT o.id FROM outbox_pending p JOIN outbox o ON o.seq = p.seq"))
        assert [r[0] for r in listed] == ["evt_01JAAAAAAAAAAAAAAAAAAAAAA1"]
        plan = " ".join(r[0] for r in asyncio.run(run("EXPLAIN " + sql)))
        assert "pk_outbox_pending" in plan and "Sort" not in plan, plan
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_revision_head_is_alembics_head() -> None:
    """``hub.store.revision.HEAD`` (read by every start-up instead of alembic) names the newest migration."""
    from alembic.script import ScriptDirectory

    from hub.store.migrate import alembic_config
    from hub.store.revision import HEAD

    assert ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://")).get_current_head() == HEAD


async def test_at_head_on_a_migrated_database_and_not_on_an_empty_one(store: Store, tmp_path: Path) -> None:
    from hub.store.revision import at_head, current

    assert await at_head(store)
    empty = Store(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        assert await current(empty) == []
        assert not await at_head(empty)
    finally:
        await empty.close()


async def test_hub_open_migrates_a_database_behind_head_and_skips_alembic_at_head(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: Any
) -> None:
    """Hub.open upgrades a database one migration behind; at head it does not run alembic at all."""
    from hub.config import HubConfig, Settings
    from hub.runtime import Hub
    from hub.store import migrate
    from hub.store.revision import HEAD, current

    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    migrate.upgrade(url, "0008")
    settings = Settings(database_url=url, redis_url=redis_url, redis_prefix=redis_prefix)
    runs: list[str] = []
    real = migrate.upgrade_async

    async def counting(u: str, revision: str = "head") -> None:
        runs.append(u)
        await real(u, revision)

    monkeypatch.setattr(migrate, "upgrade_async", counting)
    for expected_runs in (1, 1):  # the second open finds the database at head
        hub = await Hub.open(settings, HubConfig())
        try:
            assert await current(hub.store) == [HEAD]
        finally:
            await hub.close()
        assert len(runs) == expected_runs
