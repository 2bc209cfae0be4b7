"""PostgreSQL: a flush's buffered inserts as one statement.

``executemany`` sends one statement per table, and PostgreSQL runs each of its rows as an execution
of its own: a chunk of orders written to ten tables is ten round trips, each paying the driver's,
SQLAlchemy's and the event loop's fixed cost, and a thousand executions. Here consecutive plain
inserts (and ``ON CONFLICT ... DO NOTHING`` ones, and the lock-only ``ON CONFLICT ... DO UPDATE SET
c = EXCLUDED.c WHERE false`` of coalesced jobs) become one statement of data-modifying CTEs, each
reading its rows from arrays (``INSERT ... SELECT * FROM unnest(...)``): one round trip, one
execution per table. Rows keep their order (serial ids are given, and conflicting rows locked, in the
order written); foreign keys between the tables of one statement are checked at its end, once every
row is in. :class:`ArrayUpdate` does the same for an UPDATE of many rows with values of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects.postgresql.dml import OnConflictDoNothing, OnConflictDoUpdate
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnClause, False_

Rows = list[dict[str, Any]]
_Processors = list[list[Callable[[Any], Any] | None]]

# statement text and bind processors by shape (tables, columns and conflict targets, in order)
_SHAPES: dict[tuple[Any, ...], tuple[TextClause, _Processors]] = {}


def _array_of(dialect: Dialect, column: Any) -> tuple[str, Callable[[Any], Any] | None]:
    """The SQL array type of ``column`` and its type's bind processor."""
    return f"{column.type.compile(dialect=dialect)}[]", column.type._cached_bind_processor(dialect)


def _values(rows: Rows, column: str, proc: Callable[[Any], Any] | None) -> list[Any]:
    """``column`` of every row, as ``executemany`` would send it (through the bind processor)."""
    values = [r[column] for r in rows]
    return [proc(v) for v in values] if proc is not None else values


def _sets(clause: OnConflictDoUpdate) -> list[tuple[Any, Any]]:
    sets = clause.update_values_to_set
    return list(sets.items() if isinstance(sets, dict) else sets)


def combinable(stmt: Insert) -> bool:
    """A plain ``insert(table)``, one with ``ON CONFLICT (columns) DO NOTHING``, or one with
    ``ON CONFLICT (columns) DO UPDATE SET c = EXCLUDED.c WHERE false`` (it locks the conflicting row and
    writes nothing): rows only, no values of its own, nothing returned."""
    if stmt._values is not None or stmt._multi_values or stmt._returning or stmt.select is not None:
        return False
    clause = stmt._post_values_clause
    if clause is None:
        return True
    if isinstance(clause, OnConflictDoUpdate) and not _lock_only(clause):
        return False
    if (
        not isinstance(clause, (OnConflictDoNothing, OnConflictDoUpdate))
        or clause.inferred_target_whereclause is not None
    ):
        return False
    target = clause.inferred_target_elements or []
    return bool(target) and all(isinstance(e, str) for e in target)


def _lock_only(clause: OnConflictDoUpdate) -> bool:
    """``DO UPDATE SET c = EXCLUDED.c, ... WHERE false``."""
    sets = _sets(clause)
    return (
        isinstance(clause.update_whereclause, False_)
        and bool(sets)
        and all(
            isinstance(k, str)
            and isinstance(v, ColumnClause)
            and v.name == k
            and getattr(v.table, "name", None) == "excluded"
            for k, v in sets
        )
    )


Conflict = tuple[str, tuple[str, ...], tuple[str, ...]]  # ("nothing" or "lock", target columns, columns set)


def _conflict(stmt: Insert) -> Conflict | None:
    """The statement's ON CONFLICT clause (None: a plain insert), as part of a shape's key."""
    clause = stmt._post_values_clause
    if not isinstance(clause, (OnConflictDoNothing, OnConflictDoUpdate)):
        return None
    target = tuple(str(e) for e in clause.inferred_target_elements or [])
    if isinstance(clause, OnConflictDoNothing):
        return ("nothing", target, ())
    return ("lock", target, tuple(sorted(str(k) for k, _ in _sets(clause))))


def _on_conflict(quote: Callable[[str], str], conflict: Conflict | None) -> str:
    if conflict is None:
        return ""
    kind, target, sets = conflict
    on = f" ON CONFLICT ({', '.join(quote(k) for k in target)})"
    if kind == "nothing":
        return on + " DO NOTHING"
    return on + f" DO UPDATE SET {', '.join(f'{quote(c)} = EXCLUDED.{quote(c)}' for c in sets)} WHERE false"


def _build(dialect: Dialect, groups: list[tuple[Insert, Rows]]) -> tuple[TextClause, _Processors]:
    quote = dialect.identifier_preparer.quote
    ctes: list[str] = []
    names: list[str] = []
    processors: _Processors = []
    for i, (stmt, rows) in enumerate(groups):
        table = stmt.table
        columns = list(rows[0])
        arrays: list[str] = []
        procs: list[Callable[[Any], Any] | None] = []
        for c in columns:
            name = f"c{len(names)}"
            names.append(name)
            array_type, proc = _array_of(dialect, table.c[c])
            arrays.append(f"CAST(:{name} AS {array_type})")
            procs.append(proc)
        on_conflict = _on_conflict(quote, _conflict(stmt))
        ctes.append(
            f"w{i} AS (INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"SELECT * FROM unnest({', '.join(arrays)}){on_conflict})"
        )
        processors.append(procs)
    sql = text("WITH " + ", ".join(ctes) + " SELECT 1").bindparams(*(bindparam(n) for n in names))
    return sql, processors


def combined(dialect: Dialect, groups: list[tuple[Insert, Rows]]) -> tuple[TextClause, dict[str, Any]]:
    """One statement writing every group's rows, and its parameters (a column's values as one array,
    each value through the column type's bind processor, as ``executemany`` would send it)."""
    shape = tuple((stmt.table.name, _conflict(stmt), tuple(rows[0])) for stmt, rows in groups)
    hit = _SHAPES.get(shape)
    if hit is None:
        if len(_SHAPES) > 1000:
            _SHAPES.clear()
        hit = _SHAPES[shape] = _build(dialect, groups)
    sql, processors = hit
    params: dict[str, Any] = {}
    for (_stmt, rows), procs in zip(groups, processors, strict=True):
        for c, proc in zip(rows[0], procs, strict=True):
            params[f"c{len(params)}"] = _values(rows, c, proc)
    return sql, params


class ArrayUpdate:
    """PostgreSQL: ``UPDATE table SET sets FROM unnest(arrays) AS u(columns) WHERE table.key = u.key``,
    many rows' changes in one statement and one execution (``executemany`` runs an UPDATE per row).

    ``sets`` is SQL text naming the rows' values ``u.<column>`` and the statement's own parameters
    ``:name``. Declared at import; the statement is built once per dialect."""

    def __init__(self, table: Any, columns: list[str], sets: str, *, key: str = "id") -> None:
        self.table, self.columns, self.sets, self.key = table, columns, sets, key
        self._built: dict[str, tuple[TextClause, list[Callable[[Any], Any] | None]]] = {}

    def _build(self, dialect: Dialect) -> tuple[TextClause, list[Callable[[Any], Any] | None]]:
        quote = dialect.identifier_preparer.quote
        typed = [_array_of(dialect, self.table.c[c]) for c in self.columns]
        arrays = [f"CAST(:a{i} AS {array_type})" for i, (array_type, _) in enumerate(typed)]
        name = quote(self.table.name)
        sql = text(
            f"UPDATE {name} SET {self.sets} FROM unnest({', '.join(arrays)}) "
            f"AS u({', '.join(quote(c) for c in self.columns)}) WHERE {name}.{quote(self.key)} = u.{quote(self.key)}"
        )
        return sql, [proc for _, proc in typed]

    def statement(self, dialect: Dialect, rows: Rows, **scalars: Any) -> tuple[TextClause, dict[str, Any]]:
        """The statement and its parameters for ``rows`` (dicts of ``columns``) and its own ``scalars``."""
        built = self._built.get(dialect.name)
        if built is None:
            built = self._built[dialect.name] = self._build(dialect)
        sql, procs = built
        params: dict[str, Any] = dict(scalars)
        for i, (c, proc) in enumerate(zip(self.columns, procs, strict=True)):
            params[f"a{i}"] = _values(rows, c, proc)
        return sql, params
