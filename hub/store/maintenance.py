"""Store upkeep where the database does none: VACUUM and ANALYZE of the hub's tables.

The hub's queue tables (inbox, sync jobs, the outbox's pending list, partner deliveries) turn over all day: every
row is written pending and updated when done, leaving a dead row version and dead index entries
behind. PostgreSQL's autovacuum normally removes them and keeps the planner's statistics current.
A server running with ``autovacuum = off`` (seen on managed test servers and on this project's
benchmark machine) does neither, and the hub degrades as it runs:

- a claim that should read 100 pending jobs walks tens of thousands of dead index entries;
- a table that was empty when last analysed (never, on a new database) keeps its "few rows"
  estimate, so a lookup of 25 orders by ``(connection, external_id)`` scans every order of the
  connection (measured: 4.6 ms at 9,100 orders instead of 0.07 ms).

Each worker runs :func:`maintain` every ``[store] maintenance_interval_seconds``. In ``auto``
mode (the default) it does nothing while autovacuum is on; otherwise it reads
``pg_stat_user_tables`` and vacuums or analyses the tables past their thresholds, one worker
at a time (a session advisory lock). SQLite needs nothing: its tables are small and its
planner keeps no row estimates that go stale this way.

It paces itself as autovacuum does, so that upkeep does not take the CPU from the webhooks and
orders it is there to keep fast:

- its VACUUM and ANALYZE are cost-throttled with autovacuum's defaults (``vacuum_cost_delay``
  2 ms every ``vacuum_cost_limit`` 200), where a manual command runs unthrottled;
- a table is analysed again at most once a minute (autovacuum's ``autovacuum_naptime``) unless
  its changes since the last analysis reach its size (it doubled, or was never analysed): the
  plans go wrong on a table analysed empty, not on one that grew by a tenth. Measured on the
  benchmark machine before this (ingest at 500 orders/s after a burst of 20,000): every 5 s the
  upkeep analysed every append-only table again (outbox 130-200 ms, orders 40-180 ms...), about
  one second of CPU in five, and each of those rounds was a spike of the webhooks' p99 ack (10-15
  ms to 33-67 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import String

from hub.logging import get_logger
from hub.store import tables

__all__ = ["HOT_TABLES", "Action", "TableStats", "maintain", "plan"]

log = get_logger("hub.store.maintenance")

# tables whose rows are updated seconds after they are written (queues) or all day (stock levels):
# vacuumed after 1 % of dead rows
HOT_TABLES = frozenset({"inbox", "sync_jobs", "outbox_pending", "webhook_deliveries", "inventory_levels"})
_LOCK_KEY = 0x0F_0B_5A_C0  # pg_try_advisory_lock key: one worker maintains at a time
ANALYZE_INTERVAL_SECONDS = 60.0  # autovacuum_naptime's default: a table's analyses at most this often...
# ...unless its changes since reach its size; autovacuum's cost throttling, for the session's commands:
_THROTTLE = "SET vacuum_cost_delay = '2ms'"
_UNTHROTTLE = "RESET vacuum_cost_delay"

Action = Literal["vacuum", "analyze", "vacuum analyze"]


@dataclass(frozen=True)
class TableStats:
    """What PostgreSQL counts of one table since its last VACUUM / ANALYZE."""

    table: str
    live: int
    dead: int
    modified_since_analyze: int
    seconds_since_analyze: float | None = None  # None: never analysed (by the hub or autovacuum)


def plan(stats: Sequence[TableStats]) -> list[tuple[str, Action]]:
    """The tables to vacuum and / or analyse, by autovacuum's own rule: more than
    ``base + scale * live`` dead rows (vacuum) or changed rows (analyze). The busy tables
    (:data:`HOT_TABLES`) are vacuumed after 1 % of dead rows, as migration 0005 sets their
    autovacuum options; the others at PostgreSQL's defaults (20 %). Every table is analysed
    after 10 % of changed rows (PostgreSQL's default), and a new table after its first 50; a
    table analysed less than :data:`ANALYZE_INTERVAL_SECONDS` ago waits, unless it has changed
    by as many rows as it holds (a new or doubled table: its old statistics mislead the planner)."""
    out: list[tuple[str, Action]] = []
    for s in stats:
        hot = s.table in HOT_TABLES
        vacuum = s.dead > (200 if hot else 50) + (0.01 if hot else 0.2) * s.live
        analyze = s.modified_since_analyze > 50 + 0.1 * s.live and (
            s.seconds_since_analyze is None
            or s.seconds_since_analyze >= ANALYZE_INTERVAL_SECONDS
            or s.modified_since_analyze >= s.live
        )
        if vacuum or analyze:
            out.append((s.table, "vacuum analyze" if vacuum and analyze else "vacuum" if vacuum else "analyze"))
    return out


_STATS = text(
    "SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, "
    "extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)) FROM pg_stat_user_tables s "
    "WHERE s.relid IN (SELECT to_regclass(n) FROM unnest(:names) AS n)"
).bindparams(bindparam("names", type_=ARRAY(String)))


async def maintain(engine: AsyncEngine, mode: Literal["auto", "always", "off"] = "auto") -> list[tuple[str, Action]]:
    """Vacuum / analyse the hub's PostgreSQL tables that need it (see the module docstring);
    returns what was done. Does nothing on SQLite, with ``mode="off"``, with ``mode="auto"``
    while autovacuum is on, or while another worker is at it."""
    if mode == "off" or engine.dialect.name != "postgresql":
        return []
    names = sorted(tables.metadata.tables)
    done: list[tuple[str, Action]] = []
    todo: list[tuple[str, Action]] = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if mode == "auto" and (await conn.execute(text("SELECT current_setting('autovacuum')"))).scalar() == "on":
            return []
        if not (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY})).scalar():
            return []
        try:
            rows = (await conn.execute(_STATS, {"names": names})).all()
            todo = plan(
                [TableStats(r[0], int(r[1]), int(r[2]), int(r[3]), None if r[4] is None else float(r[4])) for r in rows]
            )
            if todo:
                await conn.execute(text(_THROTTLE))
            for table, action in todo:
                quoted = conn.dialect.identifier_preparer.quote(table)  # a known table name: never user input
                sql = {"vacuum": "VACUUM", "analyze": "ANALYZE", "vacuum analyze": "VACUUM (ANALYZE)"}[action]
                await conn.execute(text(f"{sql} {quoted}"))
                done.append((table, action))
        finally:
            if todo:  # the pooled connection goes back as it came
                await conn.execute(text(_UNTHROTTLE))
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    if done:
        log.info("store maintenance", extra={"fields": {"done": [f"{a} {t}" for t, a in done]}})
    return done
