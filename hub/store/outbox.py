"""The partner event outbox: events are written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.model import EVENT_TYPES, Event, new_id
from hub.store import tables as t
from hub.store._any import DIALECTS, one_of_param
from hub.store._pending import Deferred, flush_pending, pending, write
from hub.store.engine import RawJson, document

_INSERT = insert(t.outbox)  # built once: emit is on every order's path


async def emit(
    conn: AsyncConnection,
    type_: str,
    data: BaseModel | dict[str, Any] | RawJson,
    *,
    object_id: str | None = None,
    connection: str | None = None,
) -> str:
    """Append a partner event to the outbox inside the caller's transaction; returns its id.

    ``data`` is a model (written as its JSON), a JSON-ready dict, or a model's :func:`document`
    already made for another row of the same transaction."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}; known: {sorted(EVENT_TYPES)}")
    event_id = new_id("evt")
    row = {
        "id": event_id,
        "type": type_,
        "object_id": object_id,
        "connection": connection,
        # a model is written as JSON text at once (pydantic's serialiser, no intermediate dict)
        "data": document(data) if isinstance(data, BaseModel) else data,
        "created_at": now(),
    }
    await write(conn, _INSERT, row)  # inserted with the others just before the commit
    buf = pending(conn)
    if buf is not None and not buf.flushing:  # listed to fan out by one statement after the inserts
        waiting = buf.deferred("outbox_pending", _ToFanOut)
        assert isinstance(waiting, _ToFanOut)
        waiting.ids.append(event_id)
    else:
        await conn.execute(_PENDING[conn.dialect.name], {"b_ids": [event_id]})
    return event_id


# the events just written, listed to fan out (their seq is the database's: read back by id)
_PENDING = {
    d: insert(t.outbox_pending).from_select(
        ["seq"], select(t.outbox.c.seq).where(one_of_param(t.outbox.c.id, "b_ids", d))
    )
    for d in DIALECTS
}


class _ToFanOut(Deferred):
    """The events a transaction wrote, listed in ``outbox_pending`` by one statement at its flush,
    after the inserts of the events themselves."""

    table = "outbox_pending"

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, conn: Connection) -> None:
        if self.ids:
            conn.execute(_PENDING[conn.dialect.name], {"b_ids": self.ids})


async def events_for(conn: AsyncConnection, object_id: str) -> list[Event]:
    """Every event about one object, in the order they were written."""
    await flush_pending(conn)
    rows = (
        await conn.execute(select(t.outbox).where(t.outbox.c.object_id == object_id).order_by(t.outbox.c.seq))
    ).all()
    return [
        Event(id=r.id, type=r.type, timestamp=r.created_at, object_id=r.object_id, connection=r.connection, data=r.data)
        for r in rows
    ]
