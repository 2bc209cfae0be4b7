"""Polling connectors (marketplaces): cursors in the database, so a restart neither skips nor repeats."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from hub.clock import now
from hub.logging import get_logger
from hub.plugins import Capability, ChannelConnector
from hub.store import tables as t
from hub.store._upsert import dialect_insert

if TYPE_CHECKING:
    from hub.runtime import Hub

log = get_logger("hub.sync.polling")
C = t.cursors


async def get_cursor(hub: Hub, connection: str, name: str = "orders") -> str | None:
    async with hub.store.connect() as conn:
        row = (
            await conn.execute(select(C.c.value).where(and_(C.c.connection == connection, C.c.name == name)))
        ).first()
    return row.value if row else None


async def set_cursor(hub: Hub, connection: str, value: str, name: str = "orders") -> None:
    async with hub.store.begin() as conn:
        ins = dialect_insert(conn, C).values(connection=connection, name=name, value=value, updated_at=now())
        await conn.execute(
            ins.on_conflict_do_update(index_elements=["connection", "name"], set_={"value": value, "updated_at": now()})
        )


def polling_connections(hub: Hub) -> list[str]:
    return [cid for cid, c in hub.connections.items() if Capability.POLL_ORDERS in c.capabilities]


async def poll_once(hub: Hub, connection: str, max_pages: int = 20) -> int:
    """Fetch orders changed since the stored cursor; each order is applied in its own
    transaction, and the cursor moves only after the page's orders are stored."""
    from hub.orders.service import apply_messages, ingest_order
    from hub.sync.stats import cached_depth

    d = await cached_depth(hub)
    if d.total > hub.config.queue.max_depth:
        log.info("poll skipped: back-pressure", extra={"fields": {"connection": connection, "depth": d.total}})
        return 0
    connector = hub.connector(connection)
    assert isinstance(connector, ChannelConnector)
    cursor = await get_cursor(hub, connection)
    n = 0
    poll_messages = getattr(connector, "poll_messages", None)
    for _ in range(max_pages):
        if poll_messages is not None:
            # connectors that report cancellations and other changes as messages
            messages, next_cursor, more = await poll_messages(cursor)
            for msg in messages:
                async with hub.store.begin() as conn:
                    await apply_messages(hub, conn, connection, [msg], source=f"poll:{connection}")
                n += 1
        else:
            page = await connector.poll_orders(cursor)
            for order in page.orders:
                async with hub.store.begin() as conn:
                    await ingest_order(hub, conn, order)
                n += 1
            next_cursor, more = page.cursor, page.more
        if next_cursor and next_cursor != cursor:
            await set_cursor(hub, connection, next_cursor)
            cursor = next_cursor
        if not more:
            break
    return n


def snapshot_connections(hub: Hub) -> list[str]:
    """3PL/WMS connections that report their stock."""
    return [cid for cid, c in hub.connections.items() if Capability.INVENTORY_SNAPSHOT in c.capabilities]


async def snapshot_once(hub: Hub, connection: str) -> int:
    """Take the WMS/3PL's on-hand counts as the truth for its locations (through the ledger, cause
    ``count``); SKUs whose count went up re-allocate their backorders."""
    from hub.orders.service import inventory_counted, reallocate_backorders
    from hub.plugins import InventoryCounted, WmsConnector
    from hub.store import inventory as inv

    connector = hub.connector(connection)
    assert isinstance(connector, WmsConnector)
    counts = await connector.inventory_snapshot()
    # a count taken while parcels are between "released to the 3PL" and "shipment confirmed" cannot be
    # matched to the hub's view (the 3PL may already have taken them off): such (sku, location) pairs
    # keep the hub's own figure until nothing is in flight there, so no unit is ever counted out twice
    async with hub.store.connect() as conn:
        a = t.allocations
        in_flight = {
            (r.sku, r.location)
            for r in (
                await conn.execute(select(a.c.sku, a.c.location).where(a.c.status == "released").distinct())
            ).all()
        }
    skipped = [c for c in counts if (c[0], c[1]) in in_flight]
    counts = [c for c in counts if (c[0], c[1]) not in in_flight]
    if skipped:
        log.info(
            "snapshot: counts with parcels in flight kept for later",
            extra={"fields": {"connection": connection, "skipped": len(skipped)}},
        )
    async with hub.store.begin() as conn:
        before = {(lv.sku, lv.location): lv.on_hand for lv in await inv.levels(conn, {s for s, _, _ in counts})}
        await inventory_counted(hub, conn, InventoryCounted(counts=counts), ref=f"snapshot:{connection}")
    grown = sorted({sku for sku, loc, n in counts if n > before.get((sku, loc), 0)})
    if grown:
        await reallocate_backorders(hub, grown)
    return len(counts)
