"""The schema revision this code runs on, and the database's, read without importing alembic.

``Hub.open`` asks :func:`at_head` before migrating: a database already at :data:`HEAD` (every
start but the first after an upgrade) costs one query instead of importing and running alembic
(0.15-0.3 s of every API, worker and CLI start-up, and of each replay process).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.store import Store

#: The newest migration's revision (``hub/store/migrations/versions``); a test checks it is alembic's head.
HEAD = "0010"


async def current(store: Store) -> list[str]:
    """The revisions in the database's ``alembic_version`` table (empty when it has none)."""
    try:
        async with store.connect() as conn:
            return [r[0] for r in (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()]
    except DBAPIError:  # no alembic_version table: a database never migrated
        return []


async def at_head(store: Store) -> bool:
    """True when the database is at :data:`HEAD` and nothing is left to migrate."""
    return await current(store) == [HEAD]
