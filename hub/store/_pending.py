"""Write-behind of a transaction's inserts (see ``Store.begin``).

Rows that nothing reads back in the same transaction (partner events, timeline entries,
ledger rows, allocations, fulfilment requests, backorders, order lines, KPI facts, sync
jobs) are buffered and inserted together just before the commit: on PostgreSQL the plain
inserts of a flush as one statement (``hub.store._combined``), any other one ``executemany``
per statement. A transaction that writes fifty orders sends a few statements for them, not
a thousand.

Correctness does not depend on callers remembering this: any statement that reads or
changes a table with buffered rows first flushes the buffer (like an ORM's autoflush,
from a ``before_execute`` hook on the engine). Code that rolls back to a SAVEPOINT must not
leave buffered rows of the undone work behind (``inventory.reserve_all`` compensates instead).

Two more things live here for the same transactions:

- facts learnt up front (``Pending.remember``: the stock levels a chunk read, the orders it
  knows to be new), dropped as soon as another statement writes the table they describe;
- deferred writes (``Deferred``: a chunk's stock reservations, the list of its events to fan
  out), each written by one statement at the flush. The flush writes new rows first, then the
  deferred writes (the stock reservations, which lock shared rows, last of them), then the upserts
  that lock shared rows (``late``), so shared rows are locked only at its end and always in the
  same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.util import find_tables

from hub.store._combined import combinable, combined


class Pending:
    """The buffered inserts of one transaction, grouped by statement, in first-written order."""

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], tuple[Insert, list[dict[str, Any]]]] = {}
        self.tables: set[str] = set()
        self.flushing = False
        self.prepare: dict[tuple[Any, ...], Callable[[list[dict[str, Any]]], list[dict[str, Any]]]] = {}
        self.facts: dict[str, Any] = {}  # what the transaction learnt up front (see orders.prefetch)
        # facts that a write to a table makes stale, unless it is one of the statements that keep them
        self.watch: dict[str, tuple[str, tuple[Any, ...]]] = {}
        # changes kept in memory and written by one statement at the flush (before the inserts)
        self.updates: dict[str, Deferred] = {}
        self.late: set[tuple[Any, ...]] = set()

    def deferred(self, name: str, factory: Callable[[], Deferred]) -> Deferred:
        """The deferred change ``name`` of this transaction (made by ``factory`` the first time)."""
        if name not in self.updates:
            self.updates[name] = factory()
            self.tables.add(self.updates[name].table)
        return self.updates[name]

    @property
    def dirty(self) -> bool:
        return bool(self.groups or self.updates)

    def remember(self, fact: str, value: Any, *, table: str, kept_by: tuple[Any, ...] = ()) -> None:
        """Keep ``value`` for the transaction until a statement other than ``kept_by`` writes ``table``."""
        self.facts[fact] = value
        self.watch[fact] = (table, kept_by)

    def add(
        self,
        stmt: Insert,
        row: dict[str, Any],
        *,
        variant: str = "",
        prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
        late: bool = False,
    ) -> None:
        key = (stmt.table.name, variant, tuple(row))
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = (stmt, [row])
            self.tables.add(key[0])
            if prepare is not None:
                self.prepare[key] = prepare
            if late:
                self.late.add(key)
        else:
            group[1].append(row)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Buffered rows of ``table`` (to update them in place before they are written)."""
        return [r for (name, *_), (_s, rows) in self.groups.items() if name == table for r in rows]

    def take(self) -> list[tuple[Insert, list[dict[str, Any]]] | Deferred]:
        """Everything buffered, in the order to write it: inserts of new rows (orders first: the other
        tables refer to them), then the deferred updates, then the writes that lock shared rows
        (``late``). Row locks on shared rows are so held only from the end of the flush to the commit,
        and always taken in the same order: stock rows, then job rows."""
        keys = sorted(self.groups, key=lambda k: (k in self.late, k[0] != "orders"))
        inserts = [
            (self.groups[k][0], self.prepare[k](self.groups[k][1]) if k in self.prepare else self.groups[k][1])
            for k in keys
        ]
        n_early = sum(1 for k in keys if k not in self.late)
        out: list[tuple[Insert, list[dict[str, Any]]] | Deferred] = [
            *inserts[:n_early],
            *sorted(self.updates.values(), key=lambda d: d.locks_shared_rows),  # the locking ones last
            *inserts[n_early:],
        ]
        self.groups, self.prepare, self.tables, self.late, self.updates = {}, {}, set(), set(), {}
        return out


class Deferred:
    """A change that a transaction keeps in memory and writes with one statement at its flush."""

    table: str = ""
    #: whether the statement locks rows other transactions write (stock levels): such changes run
    #: after the other deferred ones, so the rows are held for as little of the flush as possible
    locks_shared_rows: bool = False

    def run(self, conn: Connection) -> None:
        """Write the change (synchronous: called inside SQLAlchemy's greenlet); raise if it does not hold."""
        raise NotImplementedError


#: The buffer of each transaction open in ``Store.begin``, by the id of its (sync) ``Connection``:
#: one dict lookup, where ``conn.info`` goes through four of SQLAlchemy's proxy properties (the hot
#: path asks about thirty times an order). An entry lives exactly as long as its transaction.
_OPEN: dict[int, Pending] = {}


def attach(conn: AsyncConnection) -> Pending:
    """Give the transaction on ``conn`` a buffer (``Store.begin``); :func:`detach` when it ends."""
    buf = _OPEN[id(conn.sync_connection)] = Pending()
    return buf


def detach(conn: AsyncConnection) -> None:
    """Forget the buffer of the transaction on ``conn`` (whatever it still holds is dropped)."""
    _OPEN.pop(id(conn.sync_connection), None)


def pending(conn: AsyncConnection | Connection) -> Pending | None:
    """The buffer of a transaction opened by ``Store.begin`` (None: write at once)."""
    sync = conn.sync_connection if type(conn) is AsyncConnection else conn
    return _OPEN.get(id(sync))


async def write(
    conn: AsyncConnection,
    stmt: Insert,
    row: dict[str, Any],
    *,
    variant: str = "",
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    late: bool = False,
) -> None:
    """Insert ``row`` with ``stmt``: buffered until the flush inside ``Store.begin``, at once elsewhere.

    ``variant`` separates statements on one table that differ (ON CONFLICT clauses);
    ``prepare`` may reorder or de-duplicate a group's rows just before they are written;
    ``late`` marks a statement that locks shared rows (an upsert): written last.
    """
    buf = pending(conn)
    if buf is not None and not buf.flushing:
        buf.add(stmt, row, variant=variant, prepare=prepare, late=late)
        return
    rows = prepare([row]) if prepare else [row]
    await conn.execute(stmt, rows)


Step = tuple[Any, Any] | Deferred


def _steps(dialect: Dialect, taken: list[tuple[Insert, list[dict[str, Any]]] | Deferred]) -> list[Step]:
    """The statements of a flush: on PostgreSQL each run of consecutive inserts that can be combined
    is one statement (``hub.store._combined``); every other insert is one ``executemany``."""
    out: list[Step] = []
    run: list[tuple[Insert, list[dict[str, Any]]]] = []

    def close_run() -> None:
        if run:
            out.append(combined(dialect, run))
            run.clear()

    for step in taken:
        if isinstance(step, Deferred):
            close_run()
            out.append(step)
        elif step[1]:
            if dialect.name == "postgresql" and combinable(step[0]):
                run.append(step)
            else:
                close_run()
                out.append(step)
    close_run()
    return out


async def flush_pending(conn: AsyncConnection) -> None:
    """Insert the buffered rows now (before the commit, or before reading them back)."""
    buf = pending(conn)
    if not buf or not buf.dirty:
        return
    buf.flushing = True
    try:
        for step in _steps(conn.dialect, buf.take()):
            if isinstance(step, Deferred):
                await conn.run_sync(step.run)
            else:
                await conn.execute(step[0], step[1])
    finally:
        buf.flushing = False


def _flush_sync(conn: Connection, buf: Pending) -> None:
    buf.flushing = True
    try:
        for step in _steps(conn.dialect, buf.take()):
            if isinstance(step, Deferred):
                step.run(conn)
            else:
                conn.execute(step[0], step[1])
    finally:
        buf.flushing = False


def _touched(clause: Any) -> set[str] | None:
    """Names of the tables a statement reads or writes (None: unknown, e.g. textual SQL).

    Savepoints and table-less statements touch nothing."""
    if not isinstance(clause, ClauseElement) or isinstance(clause, TextClause):
        return None
    names: set[str] = set()
    for tb in find_tables(clause, include_crud=True):
        name = getattr(tb, "name", None)
        if name is None:
            return None
        names.add(str(name))
    if isinstance(clause, UpdateBase):
        names.add(str(getattr(clause.table, "name", "")))
    return names


_TOUCHED: dict[Any, frozenset[str] | None] = {}


def _touched_cached(clause: Any) -> frozenset[str] | None:
    """``_touched`` memoised by the statement's structure (SQLAlchemy's cache key, which the
    statement memoises and the compiled cache reuses), so a hot statement is analysed once."""
    ck = clause._generate_cache_key() if isinstance(clause, ClauseElement) else None
    if ck is None:
        found = _touched(clause)
        return frozenset(found) if found is not None else None
    if ck.key not in _TOUCHED:
        if len(_TOUCHED) > 5000:
            _TOUCHED.clear()
        found = _touched(clause)
        _TOUCHED[ck.key] = frozenset(found) if found is not None else None
    return _TOUCHED[ck.key]


def _autoflush(conn: Connection, clause: Any, *_args: Any, **_kw: Any) -> None:
    buf = _OPEN.get(id(conn))
    if buf is None or buf.flushing:
        return
    if buf.watch and (
        isinstance(clause, UpdateBase) or not isinstance(clause, ClauseElement) or isinstance(clause, TextClause)
    ):
        written = _touched_cached(clause)
        for fact, (table, kept_by) in list(buf.watch.items()):
            if (written is None or table in written) and not any(clause is k for k in kept_by):
                buf.facts.pop(fact, None)
                del buf.watch[fact]
    if not buf.dirty:
        return
    # even an INSERT into a buffered table flushes first: rows keep the order they were written in
    touched = _touched_cached(clause)
    if touched is None or touched & buf.tables:
        _flush_sync(conn, buf)


def install_autoflush(engine: Engine) -> None:
    """Flush a transaction's buffer before any statement that touches a buffered table."""
    if not event.contains(engine, "before_execute", _autoflush):
        event.listen(engine, "before_execute", _autoflush)
