"""The claim of a work queue table (inbox items, sync jobs) on PostgreSQL, as one statement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Integer, Select, Table, Update, any_, bindparam, func, select, union_all, update

#: The parameter of a claim statement that bounds how many rows it takes.
LIMIT = "b_limit"


def claim_statement(table: Table, scans: Sequence[Select[Any]], values: Mapping[str, Any]) -> Update:
    """``UPDATE table SET values`` on the first ``:b_limit`` rows of ``scans`` (taken in turn, each
    ``FOR UPDATE SKIP LOCKED``), ``RETURNING`` them.

    One statement in autocommit instead of BEGIN, a SELECT per scan, an UPDATE, a SELECT of the rows
    and COMMIT; a later scan runs only when the earlier ones leave the claim short. The ids are looked
    up by primary key (``= ANY(ARRAY(...))``: an ``IN`` subquery was hashed against a scan of the
    whole table). Build it once, with parameters: building it cost about 0.35 ms a claim."""
    limit = bindparam(LIMIT, type_=Integer())
    ctes = [q.limit(limit).with_for_update(skip_locked=True, of=table).cte(f"scan{i}") for i, q in enumerate(scans)]
    picked = union_all(*(select(c.c.id) for c in ctes)).subquery()
    chosen = func.array(select(picked.c.id).limit(limit).scalar_subquery())
    return update(table).where(table.c.id == any_(chosen)).values(**values).returning(*table.c)
