"""Delivery promise: ship-by from a location's cut-off and handling days, deliver-by from transit days.

All times are UTC: ``Location.cutoff_hour`` is an hour of the day in UTC, weekends are Saturday and
Sunday in UTC, and promises are UTC datetimes. Holidays are not modelled. Pure, no I/O.

- An order that arrives on a weekday before the location's cut-off hour is *received* that day;
  otherwise it is received the next weekday.
- ``ship_by`` = the received day plus ``handling_days`` weekdays, at the cut-off hour.
- ``deliver_by`` = the ship-by day plus the carrier's transit days (weekdays) for the distance band
  (:class:`TransitTable`), at the end of that day (23:59:59 UTC).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from hub.allocation._atp import serves_channel
from hub.allocation._geo import Distance, distance
from hub.errors import InputError
from hub.model import Address, InventoryLevel, Location, Promise


@dataclass(frozen=True)
class TransitTable:
    """Carrier transit days by distance: the first band whose upper bound (km, exclusive) exceeds the
    distance; ``beyond`` past the last band; ``international_extra`` added when the address is in
    another country than the location."""

    bands: tuple[tuple[float, int], ...] = ((100.0, 1), (500.0, 2), (1500.0, 3))
    beyond: int = 5
    international_extra: int = 2
    unknown: int = 3  # no address to measure from

    def days(self, dist: Distance | None) -> int:
        """Transit weekdays for a distance (``None``: ``unknown``)."""
        if dist is None:
            return self.unknown
        base = next((d for limit, d in self.bands if dist.km < limit), self.beyond)
        return base + (self.international_extra if dist.international else 0)


DEFAULT_TRANSIT = TransitTable()


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise InputError(f"promise times must be timezone-aware (got naive {now.isoformat()}); use hub.clock.now()")
    return now.astimezone(UTC)


def add_weekdays(day: date, n: int) -> date:
    """``day`` moved forward by ``n`` weekdays (Saturday and Sunday skipped); n=0 rolls a weekend day to Monday."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def received_day(location: Location, now: datetime) -> date:
    """The weekday on which an order arriving at ``now`` counts as received at ``location``."""
    t = _aware(now)
    day = t.date()
    if day.weekday() >= 5 or t.hour >= location.cutoff_hour:
        day = add_weekdays(day + timedelta(days=1), 0)
    return day


def ship_by(location: Location, now: datetime) -> datetime:
    """When ``location`` ships an order that arrives at ``now`` (UTC, at the cut-off hour)."""
    day = add_weekdays(received_day(location, now), location.handling_days)
    return datetime.combine(day, time(location.cutoff_hour), tzinfo=UTC)


def deliver_by(
    location: Location, address: Address | None, shipped_by: datetime, transit: TransitTable = DEFAULT_TRANSIT
) -> datetime:
    """End of the day on which a parcel shipped by ``shipped_by`` arrives at ``address``."""
    day = add_weekdays(_aware(shipped_by).date(), transit.days(distance(location, address)))
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def promise(
    location: Location, address: Address | None, now: datetime, transit: TransitTable = DEFAULT_TRANSIT
) -> Promise:
    """The :class:`hub.model.Promise` of one shipment from ``location`` for an order arriving at ``now``."""
    sb = ship_by(location, now)
    return Promise(ship_by=sb, deliver_by=deliver_by(location, address, sb, transit))


def promise_for_locations(
    location_ids: Iterable[str],
    locations: Sequence[Location],
    address: Address | None,
    now: datetime,
    transit: TransitTable = DEFAULT_TRANSIT,
) -> Promise | None:
    """The order's promise when it ships from several locations: the latest ship-by and deliver-by
    (the order is complete when its last parcel arrives). ``None`` for no location."""
    by_id = {loc.id: loc for loc in locations}
    ps = [promise(by_id[i], address, now, transit) for i in dict.fromkeys(location_ids) if i in by_id]
    if not ps:
        return None
    return Promise(
        ship_by=max(p.ship_by for p in ps if p.ship_by), deliver_by=max(p.deliver_by for p in ps if p.deliver_by)
    )


@dataclass(frozen=True)
class AddressPromise:
    """What can be promised for ``quantity`` of ``sku`` to an address, from ``location``."""

    sku: str
    quantity: int
    location: str
    available: int
    ship_by: datetime
    deliver_by: datetime
    distance_km: float | None = None
    distance_approx: bool = False
    alternatives: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "location": self.location,
            "available": self.available,
            "ship_by": self.ship_by.isoformat(),
            "deliver_by": self.deliver_by.isoformat(),
            "distance_km": round(self.distance_km, 1) if self.distance_km is not None else None,
            "distance_approx": self.distance_approx,
        }


def promise_for_address(
    sku: str,
    quantity: int,
    address: Address,
    stock: Iterable[InventoryLevel],
    locations: Sequence[Location],
    now: datetime,
    *,
    channel: str | None = None,
    transit: TransitTable = DEFAULT_TRANSIT,
) -> AddressPromise | None:
    """Before an order exists: the best single location that ships to ``address`` and has ``quantity``
    of ``sku`` available (serving ``channel`` when given), with its ship-by and deliver-by.

    Best = earliest deliver-by, then shortest distance, then priority. ``None`` when no single location
    can ship the quantity.
    """
    if quantity <= 0:
        raise InputError(f"promise quantity must be positive (got {quantity} for {sku})", sku=sku)
    atp: dict[str, int] = {}
    for lv in stock:
        if lv.sku == sku:
            atp[lv.location] = atp.get(lv.location, 0) + max(0, lv.on_hand - lv.reserved - lv.safety_stock)
    options: list[tuple[tuple[datetime, float, int, str], AddressPromise]] = []
    for loc in locations:
        if atp.get(loc.id, 0) < quantity or not serves_channel(loc, channel):
            continue
        if loc.ships_to and address.country not in loc.ships_to:
            continue
        d = distance(loc, address)
        sb = ship_by(loc, now)
        db = deliver_by(loc, address, sb, transit)
        km = d.km if d else None
        ap = AddressPromise(sku, quantity, loc.id, atp[loc.id], sb, db, km, bool(d and d.approx))
        options.append(((db, km if km is not None else float("inf"), loc.priority, loc.id), ap))
    if not options:
        return None
    options.sort(key=lambda x: x[0])
    return replace(options[0][1], alternatives=[o[1].location for o in options[1:]])
