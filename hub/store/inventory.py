"""Inventory operations. Every change is a conditional UPDATE plus a ledger row.

Reservations never read-then-write: the UPDATE itself checks availability, so two
concurrent reservations can never promise the same unit, on PostgreSQL (row lock,
re-check of the WHERE clause) as on SQLite (one writer at a time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.clock import now
from hub.errors import Conflict, InputError, InsufficientStock
from hub.model import InventoryLevel, LedgerEntry
from hub.store import tables as t
from hub.store._any import DIALECTS, one_of_param
from hub.store._pending import Deferred, pending, write
from hub.store._upsert import insert_ignore

L = t.inventory_levels


@dataclass(frozen=True)
class Reservation:
    """``quantity`` of ``sku`` at ``location``."""

    sku: str
    location: str
    quantity: int


async def _ledger(
    conn: AsyncConnection,
    sku: str,
    location: str,
    *,
    d_on_hand: int = 0,
    d_reserved: int = 0,
    cause: str,
    ref: str | None,
    reason: str | None = None,
) -> None:
    row = {
        "sku": sku,
        "location": location,
        "delta_on_hand": d_on_hand,
        "delta_reserved": d_reserved,
        "cause": cause,
        "ref": ref,
        "reason": reason,
        "at": now(),
    }
    await write(conn, _LEDGER, row)


async def ensure_level(conn: AsyncConnection, sku: str, location: str) -> None:
    """Create the (sku, location) row at zero when missing."""
    await conn.execute(
        insert_ignore(conn, L, ["sku", "location"]).values(
            sku=sku, location=location, on_hand=0, reserved=0, safety_stock=0, updated_at=now()
        )
    )


async def _take(conn: AsyncConnection, sku: str, location: str, quantity: int) -> bool:
    """The conditional UPDATE of a reservation (no ledger row)."""
    if quantity <= 0:
        raise InputError(f"reservation quantity must be positive (got {quantity})", sku=sku)
    known = _known(conn)
    buf = pending(conn)
    if known is not None and buf is not None and not buf.flushing and (sku, location) in known.rows:
        # the row is locked by this transaction and known exactly: check in memory, write at the flush
        level = known.rows[(sku, location)]
        if level[0] - level[1] - level[2] < quantity:
            return False
        level[1] += quantity
        taken = buf.deferred("reservations", _Reservations)
        assert isinstance(taken, _Reservations)
        taken.quantities[(sku, location)] = taken.quantities.get((sku, location), 0) + quantity
        return True
    res = await conn.execute(_TAKE, {"s": sku, "l": location, "q": quantity, "ts": now()})
    if res.rowcount != 1:
        _forget(conn)  # the known levels proved wrong: read them again
        return False
    if known is not None and (sku, location) in known.rows:
        known.rows[(sku, location)][1] += quantity
    return True


class StockMoved(Conflict):
    """Reservations planned on levels read earlier in the transaction no longer fit: another
    transaction took the stock meanwhile. The transaction must roll back (its flush wrote part of
    them) and plan again on fresh levels. Deliberately not an InsufficientStock, which allocation
    catches to plan again inside the same transaction."""


class _Reservations(Deferred):
    """Reservations made against known levels: written at the flush by one conditional UPDATE, which
    the database checks against the current rows (a unit promised twice fails it: StockMoved, and
    the whole transaction rolls back). The rows are locked first, in (sku, location) byte order,
    the order every reservation takes them in, so two flushing transactions never deadlock; they
    are held only from the flush to the commit."""

    table = "inventory_levels"
    locks_shared_rows = True

    def __init__(self) -> None:
        self.quantities: dict[tuple[str, str], int] = {}

    def run(self, conn: Connection) -> None:
        items = sorted(self.quantities.items())
        if not items:
            return
        ts = now()
        if conn.dialect.name == "postgresql":
            params = {
                "lock": sorted({s for (s, _l), _q in items}),
                "skus": [s for (s, _l), _q in items],
                "locs": [loc for (_s, loc), _q in items],
                "qs": [q for _k, q in items],
                "ts": ts,
            }
            done = len(conn.execute(_TAKE_MANY, params).all())
        else:
            done = conn.execute(_TAKE, [{"s": s, "l": loc, "q": q, "ts": ts} for (s, loc), q in items]).rowcount
        if done != len(items):
            raise StockMoved(
                f"{len(items) - done} of {len(items)} reservations of this transaction no longer fit the stock "
                "(another transaction took it since the levels were read); nothing was reserved",
            )


@dataclass
class _Known:
    """Levels of SKUs as this transaction read them, plus its own reservations (see :func:`know_levels`)."""

    skus: set[str]
    rows: dict[tuple[str, str], list[int]]  # (sku, location) -> [on_hand, reserved, safety_stock]
    # the same rows by SKU, locations in order (the lists are shared: reservations update both views);
    # an order reads its own SKUs' levels without sorting the chunk's (it did, once per order)
    by_sku: dict[str, list[tuple[str, list[int]]]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_sku = {}
        for (sku, location), v in sorted(self.rows.items()):
            self.by_sku.setdefault(sku, []).append((location, v))


def _known(conn: AsyncConnection) -> _Known | None:
    buf = pending(conn)
    found: _Known | None = buf.facts.get("levels") if buf is not None else None
    return found


def _forget(conn: AsyncConnection) -> None:
    buf = pending(conn)
    if buf is not None:
        buf.facts.pop("levels", None)
        buf.watch.pop("levels", None)


async def know_levels(conn: AsyncConnection, skus: Iterable[str]) -> None:
    """Read every level of ``skus`` once (no lock) and keep them for this transaction (inside
    ``Store.begin``): :func:`levels` then answers from memory, kept up to date by the transaction's
    own reservations, which are checked in memory and written at the flush by one conditional
    UPDATE (:class:`StockMoved` if another transaction took the stock meanwhile). Forgotten as soon
    as anything else writes a level."""
    wanted = sorted(set(skus))
    if not wanted:
        return
    rows = (await conn.execute(_LEVELS[conn.dialect.name], {"skus": wanted})).all()
    buf = pending(conn)
    if buf is None:
        return
    known = _Known(set(wanted), {(r.sku, r.location): [r.on_hand, r.reserved, r.safety_stock] for r in rows})
    buf.remember("levels", known, table=L.name, kept_by=(_TAKE, _TAKE_MANY))


# hot statements, built once (SQLAlchemy statements are immutable; their cache key is memoised)
_TAKE = (
    update(L)
    .where(
        and_(
            L.c.sku == bindparam("s"),
            L.c.location == bindparam("l"),
            L.c.on_hand - L.c.reserved - L.c.safety_stock >= bindparam("q"),
        )
    )
    .values(reserved=L.c.reserved + bindparam("q"), updated_at=bindparam("ts"))
)
# PostgreSQL: the rows of the SKUs are locked first, in (sku, location) byte order (the CTE, which the
# one-time filter runs before the UPDATE writes any row), then the conditional UPDATE, which re-checks
# each row's latest version (READ COMMITTED): one statement, so the rows are held for one round trip
# less between the lock and the commit
_TAKE_MANY = text(
    "WITH locked AS MATERIALIZED (SELECT 1 FROM inventory_levels WHERE sku = ANY(CAST(:lock AS text[])) "
    'ORDER BY sku COLLATE "C", location COLLATE "C" FOR UPDATE) '
    "UPDATE inventory_levels AS l SET reserved = l.reserved + v.q, updated_at = :ts "
    "FROM unnest(CAST(:skus AS text[]), CAST(:locs AS text[]), CAST(:qs AS integer[])) AS v(sku, location, q) "
    "WHERE (SELECT count(*) FROM locked) >= 0 "
    "AND l.sku = v.sku AND l.location = v.location AND l.on_hand - l.reserved - l.safety_stock >= v.q "
    "RETURNING l.sku"
)
_LEVELS = {d: select(L).where(one_of_param(L.c.sku, "skus", d)).order_by(L.c.sku, L.c.location) for d in DIALECTS}
_LEDGER = insert(t.inventory_ledger)


async def reserve(conn: AsyncConnection, sku: str, location: str, quantity: int, ref: str | None) -> bool:
    """Reserve ``quantity`` if available (on_hand - reserved - safety_stock); False otherwise."""
    if not await _take(conn, sku, location, quantity):
        return False
    await _ledger(conn, sku, location, d_reserved=quantity, cause="reservation", ref=ref)
    return True


async def reserve_all(conn: AsyncConnection, plan: Sequence[Reservation], ref: str | None) -> None:
    """Reserve every part of ``plan`` or none of it.

    Parts are taken in (sku, location) order, so two plans never wait on each other's rows in
    opposite order (no deadlock). When a part is not available, the parts already taken are
    given back in the same transaction (their rows are still locked by it, so nobody saw them)
    and :class:`InsufficientStock` names the part that failed; ledger rows are written only
    once every part is taken.
    """
    parts = _merge(plan)
    taken: list[Reservation] = []
    for p in parts:
        if not await _take(conn, p.sku, p.location, p.quantity):
            for d in taken:
                await conn.execute(
                    update(L)
                    .where(and_(L.c.sku == d.sku, L.c.location == d.location))
                    .values(reserved=L.c.reserved - d.quantity)
                )
            raise InsufficientStock(
                f"cannot reserve {p.quantity} x {p.sku} at {p.location}: not enough available",
                sku=p.sku,
                location=p.location,
                quantity=p.quantity,
            )
        taken.append(p)
    for p in parts:
        await _ledger(conn, p.sku, p.location, d_reserved=p.quantity, cause="reservation", ref=ref)


def _merge(plan: Iterable[Reservation]) -> list[Reservation]:
    acc: dict[tuple[str, str], int] = {}
    for p in plan:
        acc[(p.sku, p.location)] = acc.get((p.sku, p.location), 0) + p.quantity
    return [Reservation(s, loc, q) for (s, loc), q in sorted(acc.items())]


async def release(
    conn: AsyncConnection, sku: str, location: str, quantity: int, ref: str | None, cause: str = "release"
) -> None:
    """Give back ``quantity`` reserved units (cancellation, re-routing)."""
    res = await conn.execute(
        update(L)
        .where(and_(L.c.sku == sku, L.c.location == location, L.c.reserved >= quantity))
        .values(reserved=L.c.reserved - quantity, updated_at=now())
    )
    if res.rowcount != 1:
        raise InsufficientStock(
            f"cannot release {quantity} x {sku} at {location}: fewer are reserved", sku=sku, location=location
        )
    await _ledger(conn, sku, location, d_reserved=-quantity, cause=cause, ref=ref)


async def ship(conn: AsyncConnection, sku: str, location: str, quantity: int, ref: str | None) -> None:
    """Goods left the building: on_hand and reserved go down together."""
    res = await conn.execute(
        update(L)
        .where(and_(L.c.sku == sku, L.c.location == location, L.c.reserved >= quantity, L.c.on_hand >= quantity))
        .values(on_hand=L.c.on_hand - quantity, reserved=L.c.reserved - quantity, updated_at=now())
    )
    if res.rowcount != 1:
        raise InsufficientStock(
            f"cannot ship {quantity} x {sku} from {location}: fewer are reserved", sku=sku, location=location
        )
    await _ledger(conn, sku, location, d_on_hand=-quantity, d_reserved=-quantity, cause="shipment", ref=ref)


async def adjust(
    conn: AsyncConnection,
    sku: str,
    location: str,
    delta: int,
    *,
    cause: str = "adjustment",
    ref: str | None = None,
    reason: str | None = None,
) -> InventoryLevel:
    """Add ``delta`` (may be negative) to on_hand. on_hand never goes below what is reserved."""
    await ensure_level(conn, sku, location)
    res = await conn.execute(
        update(L)
        .where(and_(L.c.sku == sku, L.c.location == location, L.c.on_hand + delta >= L.c.reserved))
        .values(on_hand=L.c.on_hand + delta, updated_at=now())
    )
    if res.rowcount != 1:
        lvl = await get_level(conn, sku, location)
        raise InsufficientStock(
            f"adjusting {sku} at {location} by {delta} would leave on_hand {lvl.on_hand + delta} "
            f"below the {lvl.reserved} reserved units",
            sku=sku,
            location=location,
            delta=delta,
        )
    await _ledger(conn, sku, location, d_on_hand=delta, cause=cause, ref=ref, reason=reason)
    return await get_level(conn, sku, location)


async def set_on_hand(
    conn: AsyncConnection, sku: str, location: str, on_hand: int, *, cause: str = "count", ref: str | None = None
) -> InventoryLevel:
    """Set on_hand to a counted value (a 3PL snapshot) through the ledger."""
    if on_hand < 0:
        raise InputError(f"on_hand cannot be negative (got {on_hand} for {sku} at {location})")
    await ensure_level(conn, sku, location)
    lvl = await get_level(conn, sku, location)
    delta = on_hand - lvl.on_hand
    if delta == 0:
        return lvl
    return await adjust(conn, sku, location, delta, cause=cause, ref=ref)


async def set_safety_stock(conn: AsyncConnection, sku: str, location: str, safety_stock: int) -> None:
    if safety_stock < 0:
        raise InputError("safety_stock cannot be negative")
    await ensure_level(conn, sku, location)
    await conn.execute(
        update(L)
        .where(and_(L.c.sku == sku, L.c.location == location))
        .values(safety_stock=safety_stock, updated_at=now())
    )


async def get_level(conn: AsyncConnection, sku: str, location: str) -> InventoryLevel:
    row = (await conn.execute(select(L).where(and_(L.c.sku == sku, L.c.location == location)))).first()
    if row is None:
        return InventoryLevel(sku=sku, location=location, on_hand=0, reserved=0, safety_stock=0)
    return InventoryLevel(
        sku=row.sku, location=row.location, on_hand=row.on_hand, reserved=row.reserved, safety_stock=row.safety_stock
    )


async def levels(conn: AsyncConnection, skus: Iterable[str]) -> list[InventoryLevel]:
    """Every level of the given SKUs, ordered by sku then location."""
    skus = list(skus)
    if not skus:
        return []
    known = _known(conn)
    if known is not None and known.skus.issuperset(skus):
        return [
            InventoryLevel(sku=s, location=loc, on_hand=v[0], reserved=v[1], safety_stock=v[2])
            for s in sorted(set(skus))
            for loc, v in known.by_sku.get(s, ())
        ]
    rows = (await conn.execute(_LEVELS[conn.dialect.name], {"skus": skus})).all()
    return [
        InventoryLevel(
            sku=r.sku, location=r.location, on_hand=r.on_hand, reserved=r.reserved, safety_stock=r.safety_stock
        )
        for r in rows
    ]


async def ledger(conn: AsyncConnection, sku: str, location: str | None = None, limit: int = 500) -> list[LedgerEntry]:
    q = select(t.inventory_ledger).where(t.inventory_ledger.c.sku == sku)
    if location:
        q = q.where(t.inventory_ledger.c.location == location)
    rows = (await conn.execute(q.order_by(t.inventory_ledger.c.id).limit(limit))).all()
    return [
        LedgerEntry(
            id=r.id,
            sku=r.sku,
            location=r.location,
            delta_on_hand=r.delta_on_hand,
            delta_reserved=r.delta_reserved,
            cause=r.cause,
            ref=r.ref,
            reason=r.reason,
            at=r.at,
        )
        for r in rows
    ]
