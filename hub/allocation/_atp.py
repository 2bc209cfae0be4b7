"""Available-to-promise (ATP) per location and per sales channel."""

from __future__ import annotations

from collections.abc import Iterable

from hub.errors import InputError
from hub.model import InventoryLevel, Location


def _one_sku(levels: list[InventoryLevel]) -> None:
    skus = sorted({lv.sku for lv in levels})
    if len(skus) > 1:
        raise InputError(
            f"ATP is computed for one SKU at a time; got levels of {', '.join(skus)}: pass each SKU's levels separately",
            skus=skus,
        )


def atp_by_location(levels: Iterable[InventoryLevel]) -> dict[str, int]:
    """ATP of one SKU at each location: ``on_hand - reserved - safety_stock``, never below 0.

    Raises :class:`~hub.errors.InputError` when ``levels`` mix several SKUs.
    """
    lv = list(levels)
    _one_sku(lv)
    out: dict[str, int] = {}
    for level in lv:
        out[level.location] = out.get(level.location, 0) + max(0, level.on_hand - level.reserved - level.safety_stock)
    return out


def serves_channel(location: Location, channel_connection_id: str | None) -> bool:
    """True when ``location`` sells to that channel (``Location.channels`` empty: every channel)."""
    return not location.channels or channel_connection_id is None or channel_connection_id in location.channels


def atp_for_channel(
    levels: Iterable[InventoryLevel],
    locations: Iterable[Location],
    channel_connection_id: str,
    buffer: int = 0,
) -> int:
    """ATP of one SKU offered to one channel (a connection id).

    Sums the location ATP of the configured locations that serve the channel (a level at a location
    that is not in ``locations`` is not offered), then holds back ``buffer`` units
    (``[allocation].channel_buffer``); never below 0.
    """
    by_id = {loc.id: loc for loc in locations}
    total = sum(
        atp
        for loc_id, atp in atp_by_location(levels).items()
        if loc_id in by_id and serves_channel(by_id[loc_id], channel_connection_id)
    )
    return max(0, total - max(0, buffer))
