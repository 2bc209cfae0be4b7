"""Locations from the config, mirrored in the database (for joins and the console)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.model import Location
from hub.store import tables as t
from hub.store._upsert import dialect_insert


async def sync(conn: AsyncConnection, configured: Sequence[Location]) -> None:
    """Insert or update every configured location (removed ones are kept: history refers to them)."""
    for loc in configured:
        ins = dialect_insert(conn, t.locations).values(
            id=loc.id, kind=str(loc.kind), data=loc.to_json(), updated_at=now()
        )
        await conn.execute(
            ins.on_conflict_do_update(
                index_elements=["id"],
                set_={"kind": ins.excluded.kind, "data": ins.excluded.data, "updated_at": ins.excluded.updated_at},
            )
        )


async def all_locations(conn: AsyncConnection) -> list[Location]:
    rows = (await conn.execute(select(t.locations.c.data).order_by(t.locations.c.id))).all()
    return [Location.model_validate(r.data) for r in rows]
