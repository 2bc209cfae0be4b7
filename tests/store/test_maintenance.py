"""Store upkeep (``hub.store.maintenance``): what is vacuumed or analysed, and that it is done
on the real PostgreSQL, by one worker at a time."""

from __future__ import annotations

import asyncpg
from sqlalchemy import event, text

from hub.store import Store
from hub.store.maintenance import _LOCK_KEY, ANALYZE_INTERVAL_SECONDS, TableStats, maintain, plan
from tests.conftest import PG_ADMIN


def test_busy_tables_are_vacuumed_at_one_percent_the_others_at_twenty() -> None:
    assert plan([TableStats("sync_jobs", live=100_000, dead=1_300, modified_since_analyze=0)]) == [
        ("sync_jobs", "vacuum")
    ]
    assert plan([TableStats("orders", live=100_000, dead=1_300, modified_since_analyze=0)]) == []
    assert plan([TableStats("orders", live=100_000, dead=20_100, modified_since_analyze=0)]) == [("orders", "vacuum")]


def test_a_table_is_analysed_after_ten_percent_of_changes_and_a_new_one_after_fifty_rows() -> None:
    assert plan([TableStats("orders", live=0, dead=0, modified_since_analyze=51)]) == [("orders", "analyze")]
    assert plan([TableStats("orders", live=10_000, dead=0, modified_since_analyze=900)]) == []
    assert plan([TableStats("orders", live=10_000, dead=0, modified_since_analyze=1_100)]) == [("orders", "analyze")]
    assert plan([TableStats("inbox", live=10_000, dead=500, modified_since_analyze=1_100)]) == [
        ("inbox", "vacuum analyze")
    ]


def test_a_table_analysed_within_the_minute_waits_unless_it_doubled() -> None:
    recent, old = ANALYZE_INTERVAL_SECONDS / 2, ANALYZE_INTERVAL_SECONDS + 1

    def grown(modified: int, since: float | None) -> TableStats:
        return TableStats("orders", live=20_000, dead=0, modified_since_analyze=modified, seconds_since_analyze=since)

    assert plan([grown(3_000, recent)]) == []  # past 10 %, but analysed half a minute ago
    assert plan([grown(3_000, old)]) == [("orders", "analyze")]
    assert plan([grown(3_000, None)]) == [("orders", "analyze")]  # never analysed
    assert plan([grown(20_000, recent)]) == [("orders", "analyze")]  # as many changes as rows: doubled
    # a busy table's dead rows are vacuumed whenever they pass 1 %; its analysis keeps the pace
    hot = TableStats("inbox", live=20_000, dead=500, modified_since_analyze=3_000, seconds_since_analyze=recent)
    assert plan([hot]) == [("inbox", "vacuum")]


async def _churn(store: Store, rows: int) -> None:
    """Dead rows in ``cursors``: insert then delete, and make the counts visible now."""
    async with store.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO cursors (connection, name, value, updated_at) "
                "SELECT 'c', 'n' || g, 'v', now() FROM generate_series(1, :n) g"
            ),
            {"n": rows},
        )
        await conn.execute(text("DELETE FROM cursors"))
    async with store.engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_force_next_flush()"))
        await conn.commit()


async def _cursor_stats(store: Store) -> tuple[int, object]:
    async with store.engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = (
            await conn.execute(
                text("SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables WHERE relid = 'cursors'::regclass")
            )
        ).one()
    return int(row[0]), row[1]


async def test_dead_rows_are_vacuumed_on_postgres(pg_store: Store) -> None:
    await _churn(pg_store, 300)
    dead, _ = await _cursor_stats(pg_store)
    assert dead >= 300

    done = await maintain(pg_store.engine, "always")

    assert ("cursors", "vacuum analyze") in done
    dead, last_vacuum = await _cursor_stats(pg_store)
    assert dead == 0 and last_vacuum is not None
    assert await maintain(pg_store.engine, "always") == []  # nothing left to do


async def test_commands_run_throttled_as_autovacuum_and_the_connection_is_reset(pg_store: Store) -> None:
    """The upkeep's VACUUM and ANALYZE run with autovacuum's cost delay (a manual command runs
    unthrottled), and the pooled connection goes back with the server's own setting."""
    async with pg_store.engine.connect() as conn:
        default = (await conn.execute(text("SELECT current_setting('vacuum_cost_delay')"))).scalar()
    statements: list[str] = []

    def _spy(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    await _churn(pg_store, 300)
    event.listen(pg_store.engine.sync_engine, "before_cursor_execute", _spy)
    try:
        done = await maintain(pg_store.engine, "always")
    finally:
        event.remove(pg_store.engine.sync_engine, "before_cursor_execute", _spy)

    assert ("cursors", "vacuum analyze") in done
    commands = [i for i, st in enumerate(statements) if st.startswith(("VACUUM", "ANALYZE"))]
    throttle = statements.index("SET vacuum_cost_delay = '2ms'")
    reset = statements.index("RESET vacuum_cost_delay")
    assert throttle < min(commands) and max(commands) < reset
    async with pg_store.engine.connect() as conn:  # the pooled connection the upkeep used: not throttled
        assert (await conn.execute(text("SELECT current_setting('vacuum_cost_delay')"))).scalar() == default


async def test_auto_follows_the_servers_autovacuum_setting(pg_store: Store) -> None:
    await _churn(pg_store, 300)
    async with pg_store.engine.connect() as conn:
        autovacuum = (await conn.execute(text("SELECT current_setting('autovacuum')"))).scalar()

    done = await maintain(pg_store.engine, "auto")

    if autovacuum == "on":  # the server keeps the tables; the hub leaves it alone
        assert done == []
    else:
        assert ("cursors", "vacuum analyze") in done


async def test_off_and_sqlite_do_nothing(pg_store: Store, sqlite_store: Store) -> None:
    await _churn(pg_store, 300)
    assert await maintain(pg_store.engine, "off") == []
    assert await maintain(sqlite_store.engine, "always") == []
    dead, _ = await _cursor_stats(pg_store)
    assert dead >= 300


async def test_one_worker_at_a_time(pg_store: Store, pg_url: str) -> None:
    await _churn(pg_store, 300)
    other = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + pg_url.rsplit("/", 1)[1])
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY)
        assert await maintain(pg_store.engine, "always") == []  # another worker is at it
        await other.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        assert ("cursors", "vacuum analyze") in await maintain(pg_store.engine, "always")
    finally:
        await other.close()
