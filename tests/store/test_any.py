"""``one_of``: IN lists of any length as one statement text on PostgreSQL, the same rows everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select

from hub.store import Store
from hub.store import tables as t
from hub.store._any import constant, one_of

T = t.cursors


async def _seed(store: Store, n: int) -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    async with store.begin() as conn:
        await conn.execute(
            insert(T), [{"connection": "c", "name": f"k{i}", "value": str(i), "updated_at": ts} for i in range(n)]
        )


async def test_one_of_selects_exactly_the_listed_rows(store: Store) -> None:
    await _seed(store, 12)
    async with store.connect() as conn:
        for wanted in (["k1"], ["k2", "k5", "k11", "absent"], [f"k{i}" for i in range(12)], []):
            rows = (await conn.execute(select(T.c.name).where(one_of(conn, T.c.name, wanted)))).scalars().all()
            assert sorted(rows) == sorted(w for w in wanted if w != "absent")


async def test_lists_of_every_length_share_one_statement_on_postgresql(store: Store) -> None:
    """An IN list rendered one text per length, each prepared again by asyncpg; ANY($1) is one text."""
    await _seed(store, 30)
    texts: set[str] = set()

    def seen(_c: Any, _cur: Any, sql: str, *_a: Any) -> None:
        if "cursors" in sql:
            texts.add(sql)

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with store.connect() as conn:
            for n in range(1, 30):
                q = select(T.c.value).where(one_of(conn, T.c.name, [f"k{i}" for i in range(n)]), T.c.connection == "c")
                assert len((await conn.execute(q)).all()) == n
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert len(texts) == (1 if store.dialect == "postgresql" else 29)


async def test_constant_is_written_into_the_statement(store: Store) -> None:
    await _seed(store, 3)
    texts: list[str] = []

    def seen(_c: Any, _cur: Any, sql: str, *_a: Any) -> None:
        texts.append(sql)

    event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with store.connect() as conn:
            rows = (await conn.execute(select(T.c.name).where(T.c.connection == constant("c")))).all()
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert len(rows) == 3
    assert "'c'" in texts[-1]
