"""``col IN (values)`` as one SQL text whatever the number of values.

SQLAlchemy renders ``col.in_(values)`` as ``col IN ($1, $2, ...)``: one statement text per length
of the list. asyncpg prepares each new text again (a round trip, and a parse and a plan in
PostgreSQL) and keeps at most 100 of them, so the batch statements of a worker, whose lists are
1 to 100 long, were prepared again at nearly every execution (863 prepares in 4 s of a 500 orders/s
ingest). On PostgreSQL these helpers render ``col = ANY($1)`` with the values as one array
parameter: one text, prepared once per connection. SQLite keeps the IN list (it has no arrays).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, any_, bindparam, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

#: The dialects the store runs on: statements built once are built for each.
DIALECTS = ("postgresql", "sqlite")


def one_of(
    conn: AsyncConnection | Connection | str, col: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """``col IN (values)`` for the connection's dialect (``conn`` may be the dialect's name)."""
    vals = list(values)
    if _dialect(conn) == "postgresql":
        return col == any_(literal(vals, ARRAY(col.type)))
    return col.in_(vals)


def one_of_param(col: ColumnElement[Any], key: str, dialect: str) -> ColumnElement[bool]:
    """``col IN (:key)`` with the list given at execution (``{key: [...]}``), for statements built once
    per dialect."""
    if dialect == "postgresql":
        param: BindParameter[Any] = bindparam(key, type_=ARRAY(col.type))
        return col == any_(param)
    return col.in_(bindparam(key, expanding=True))


def constant(value: Any) -> ColumnElement[Any]:
    """``value`` written into the SQL text at execution, not sent as a parameter: PostgreSQL can then
    match a partial index's predicate (``WHERE status = 'pending'``) in a generic plan, which it keeps
    for a prepared statement instead of planning it at every execution."""
    return literal(value, literal_execute=True)


def _dialect(conn: AsyncConnection | Connection | str) -> str:
    return conn if isinstance(conn, str) else conn.dialect.name
