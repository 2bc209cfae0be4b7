"""Async engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), one code path."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def _json_dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, application_name: str = "orderhub"
) -> AsyncEngine:
    """An engine for ``url``.

    SQLite runs in WAL mode with a busy timeout and takes the write lock at ``BEGIN``
    (``BEGIN IMMEDIATE``), so that concurrent writers queue instead of failing with
    "database is locked" when a read transaction upgrades to a write.
    """
    if is_sqlite(url):
        engine = create_async_engine(
            url,
            echo=echo,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            pool_size=4,
            max_overflow=0,
            connect_args={"timeout": 60},
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        echo=echo,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        # bounded: every API node and worker process holds at most pool_size + 4 connections, so several
        # workers stay well under PostgreSQL's max_connections (100 by default)
        max_overflow=4,
        pool_timeout=60,
        pool_pre_ping=False,
        # names the process kind in pg_stat_activity (orderhub-api, orderhub-worker...)
        connect_args={"server_settings": {"application_name": application_name}},
    )
