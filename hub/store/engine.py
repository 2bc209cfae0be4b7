"""Async engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), one code path."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class RawJson(str):
    """A document already serialised to JSON text: a ``Json`` column stores it as it is.

    Pydantic writes a model's JSON straight from Rust (``document``), about a third faster than
    building the dict and dumping that; the hot paths store order documents and partner events so.
    """

    __slots__ = ()


def document(model: BaseModel) -> RawJson:
    """``model`` as JSON text (Decimals as strings, datetimes ISO-8601), ready for a ``Json`` column;
    the same JSON as ``orjson.dumps(model.model_dump(mode="json"))``."""
    return RawJson(model.__pydantic_serializer__.to_json(model).decode())


def _json_dumps(obj: Any) -> str:
    if type(obj) is RawJson:
        return obj
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
