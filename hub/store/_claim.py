"""The claim of a work queue table (inbox items, sync jobs): rows leased to one worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Integer, Select, Table, any_, bindparam, func, select, union_all, update

if TYPE_CHECKING:
    from hub.store import Store

#: The parameter of a claim that bounds how many rows it takes.
LIMIT = "b_limit"


class Claim:
    """``UPDATE table SET values`` on the first ``limit`` rows of ``scans`` (taken in turn: a later
    scan only when the earlier ones leave the claim short), returned in ``order``.

    On PostgreSQL one autocommit statement, each scan ``FOR UPDATE SKIP LOCKED``, instead of BEGIN,
    a SELECT per scan, an UPDATE, a SELECT of the rows and COMMIT; the ids are looked up by primary
    key (``= ANY(ARRAY(...))``: an ``IN`` subquery was hashed against a scan of the whole table).
    Built once, at import, with parameters: building the statement cost about 0.35 ms a claim.
    SQLite (one writer at a time) runs the scans, the UPDATE and the read in one transaction."""

    def __init__(
        self, table: Table, scans: Sequence[Select[Any]], values: Mapping[str, Any], order: Column[Any]
    ) -> None:
        self.table, self.scans, self.values, self.order = table, list(scans), dict(values), order
        limit = bindparam(LIMIT, type_=Integer())
        ctes = [q.limit(limit).with_for_update(skip_locked=True, of=table).cte(f"scan{i}") for i, q in enumerate(scans)]
        picked = union_all(*(select(c.c.id) for c in ctes)).subquery()
        chosen = func.array(select(picked.c.id).limit(limit).scalar_subquery())
        self.statement = update(table).where(table.c.id == any_(chosen)).values(**values).returning(*table.c)

    async def run(self, store: Store, params: Mapping[str, Any], limit: int) -> list[Any]:
        """The rows leased (``params`` binds the scans' and the values' parameters)."""
        params = {**params, LIMIT: limit}
        if store.dialect == "postgresql":
            async with store.autocommit() as conn:
                rows = list((await conn.execute(self.statement, params)).all())
            rows.sort(key=lambda r: getattr(r, self.order.key))
            return rows
        t = self.table
        async with store.begin() as conn:
            ids: list[Any] = []
            for q in self.scans:
                if len(ids) >= limit:
                    break
                ids += [r.id for r in (await conn.execute(q.limit(limit - len(ids)), params)).all()]
            if not ids:
                return []
            await conn.execute(update(t).where(t.c.id.in_(ids)).values(**self.values), params)
            return list((await conn.execute(select(t).where(t.c.id.in_(ids)).order_by(self.order))).all())
