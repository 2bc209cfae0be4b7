"""Stock changes and what follows them: ledger, ATP pushes to channels, backorder re-allocation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.model import InventoryChanged, InventoryLevel
from hub.plugins import Capability
from hub.store import inventory as inv
from hub.store import outbox
from hub.sync import jobs

if TYPE_CHECKING:
    from hub.runtime import Hub


def channel_connections(hub: Hub) -> list[str]:
    """Connections that take inventory pushes."""
    return [cid for cid, c in hub.connections.items() if Capability.PUSH_INVENTORY in c.capabilities]


async def stock_changed(
    hub: Hub, conn: AsyncConnection, skus: Iterable[str], *, cause: str, locations: Iterable[str] | None = None
) -> None:
    """After any change of on_hand/reserved: one coalesced push per (channel, sku), and
    ``inventory.changed`` events for changes of on_hand (receipts, adjustments, counts, returns)."""
    skus = sorted(set(skus))
    for cid in channel_connections(hub):
        for sku in skus:
            await jobs.enqueue(
                conn, cid, "push_inventory", sku, {}, coalesce=True, delay=hub.config.queue.inventory_push_delay_seconds
            )
    if cause in ("reservation", "release", "shipment"):
        return
    wanted = set(locations) if locations else None
    for lvl in await inv.levels(conn, skus):
        if wanted is None or lvl.location in wanted:
            await emit_level(conn, lvl, cause)


async def emit_level(conn: AsyncConnection, lvl: InventoryLevel, cause: str) -> None:
    await outbox.emit(
        conn,
        "inventory.changed",
        InventoryChanged(
            sku=lvl.sku,
            location=lvl.location,
            on_hand=lvl.on_hand,
            reserved=lvl.reserved,
            safety_stock=lvl.safety_stock,
            available=lvl.available,
            cause=cause,
        ),
        object_id=f"sku:{lvl.sku}",
    )


async def adjust(
    hub: Hub,
    sku: str,
    location: str,
    delta: int,
    *,
    reason: str | None,
    cause: str = "adjustment",
    ref: str | None = None,
) -> InventoryLevel:
    """Change on_hand through the ledger, then re-allocate waiting backorders of the SKU."""
    from hub.orders.service import reallocate_backorders

    hub.config.location(location)  # KeyError -> caller maps to a clear error
    async with hub.store.begin() as conn:
        await inv.adjust(conn, sku, location, delta, cause=cause, ref=ref, reason=reason)
        await stock_changed(hub, conn, [sku], cause=cause, locations=[location])
    if delta > 0:
        await reallocate_backorders(hub, [sku])
    async with hub.store.connect() as conn:
        return await inv.get_level(conn, sku, location)
