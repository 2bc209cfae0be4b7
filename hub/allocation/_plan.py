"""Allocation and routing: which locations fulfil which units of an order. Pure, no I/O.

See ``docs/allocation.md`` for the strategies, split policies and the explanation format.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.allocation._atp import serves_channel
from hub.allocation._geo import distance
from hub.config import AllocationConfig, HubConfig
from hub.model import Allocation, AllocationStatus, Decision, InventoryLevel, Location, Order, OrderStatus

#: ``fewest_shipments`` searches every combination of candidate locations (those holding something the
#: order needs) when there are at most this many candidates and the search costs at most
#: ``EXACT_SEARCH_BUDGET`` (combinations x open lines); otherwise it uses greedy set cover.
EXACT_SEARCH_MAX_CANDIDATES = 12
EXACT_SEARCH_BUDGET = 20_000

RankHook = Callable[..., Any]
_ACTIVE = {AllocationStatus.RESERVED, AllocationStatus.RELEASED, AllocationStatus.SHIPPED}


@dataclass
class Candidate:
    """A location that could fulfil (part of) the order, as the strategy scored it.

    ``score``: lower is better (priority number, km, cost, or minus ``covers`` for fewest_shipments).
    ``covers``: open units of the order this location could ship on its own (substitutes included
    when the order allows them); ``complete``: it covers every open unit.
    """

    location: str
    score: float
    distance_km: float | None
    cost: Decimal | None
    covers: int
    complete: bool = False
    priority: int = 100
    distance_approx: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (cost as a decimal string, infinite scores as null)."""
        return {
            "location": self.location,
            "score": round(self.score, 3) if math.isfinite(self.score) else None,
            "distance_km": round(self.distance_km, 1) if self.distance_km is not None else None,
            "distance_approx": self.distance_approx,
            "cost": str(self.cost) if self.cost is not None else None,
            "covers": self.covers,
            "complete": self.complete,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class SubstitutionUse:
    """``quantity`` units of order line ``line_no`` (``sku``) are fulfilled with ``substitute`` at ``location``."""

    line_no: int
    sku: str
    substitute: str
    location: str
    quantity: int

    def to_json(self) -> dict[str, Any]:
        return {
            "line_no": self.line_no,
            "sku": self.sku,
            "substitute": self.substitute,
            "location": self.location,
            "quantity": self.quantity,
        }


@dataclass
class AllocationPlan:
    """The outcome of :func:`plan_allocation`.

    ``reservations`` are :class:`hub.model.Allocation` rows in status ``reserved`` (line_no, sku, location,
    quantity; the sku is the substitute's when a substitute is used); pass them to
    ``hub.store.inventory.reserve_all`` as ``Reservation(a.sku, a.location, a.quantity)`` and append them
    to ``Order.allocations``. ``backordered`` maps line_no to the units that could not be allocated.
    """

    order_id: str
    strategy: str
    split_policy: str
    delivery_method: str
    reservations: list[Allocation] = field(default_factory=list)
    backordered: dict[int, int] = field(default_factory=dict)
    substitutions: list[SubstitutionUse] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)
    why: str = ""
    reranked_by_hook: bool = False
    requested: int = 0

    @property
    def allocated_units(self) -> int:
        return sum(a.quantity for a in self.reservations)

    @property
    def backordered_units(self) -> int:
        return sum(self.backordered.values())

    @property
    def complete(self) -> bool:
        """True when nothing is backordered."""
        return self.backordered_units == 0

    @property
    def status(self) -> OrderStatus:
        """The order status this plan leads to: allocated, partially_allocated or backordered."""
        if self.backordered_units == 0:
            return OrderStatus.ALLOCATED
        return OrderStatus.PARTIALLY_ALLOCATED if self.reservations else OrderStatus.BACKORDERED

    def backordered_json(self) -> dict[str, int]:
        """``backordered`` keyed by line_no as a string, the shape of ``Order.backordered``."""
        return {str(k): v for k, v in sorted(self.backordered.items())}

    def explanation(self) -> dict[str, Any]:
        """JSON-ready explanation: the candidates with scores, exclusions and why the chosen ones won."""
        return {
            "strategy": self.strategy,
            "split_policy": self.split_policy,
            "delivery_method": self.delivery_method,
            "candidates": [c.to_json() for c in self.candidates],
            "excluded": dict(sorted(self.excluded.items())),
            "chosen": list(self.chosen),
            "why": self.why,
            "reranked_by_hook": self.reranked_by_hook,
            "reservations": [
                {"line_no": a.line_no, "sku": a.sku, "location": a.location, "quantity": a.quantity}
                for a in self.reservations
            ],
            "backordered": self.backordered_json(),
            "substitutions": [s.to_json() for s in self.substitutions],
        }

    def decision(self, at: datetime) -> Decision:
        """A :class:`hub.model.Decision` (kind ``allocation``) carrying :meth:`explanation` as details."""
        if self.requested == 0:
            summary = "nothing open to allocate"
        elif not self.reservations:
            summary = f"backordered all {self.backordered_units} unit(s)"
        else:
            summary = f"allocated {self.allocated_units} of {self.requested} unit(s) at {', '.join(self.chosen)}"
            if self.backordered_units:
                summary += f"; {self.backordered_units} backordered"
        return Decision(at=at, kind="allocation", summary=summary, details=self.explanation())


# --------------------------------------------------------------------------- internals

Need = dict[int, int]
Avail = dict[tuple[str, str], int]


def _allocation_config(config: HubConfig | AllocationConfig) -> AllocationConfig:
    return config.allocation if isinstance(config, HubConfig) else config


def open_need(order: Order) -> dict[int, int]:
    """Units still to allocate per line: ``open_quantity`` less active allocations of the line."""
    held: dict[int, int] = {}
    for a in order.allocations:
        if a.status in _ACTIVE:
            held[a.line_no] = held.get(a.line_no, 0) + a.quantity
    need: dict[int, int] = {}
    for ln in sorted(order.lines, key=lambda x: x.line_no):
        qty = ln.open_quantity - held.get(ln.line_no, 0)
        if qty > 0:
            need[ln.line_no] = need.get(ln.line_no, 0) + qty
    return need


@dataclass(frozen=True)
class _Supply:
    """What the eligible locations hold: ``avail[(sku, location)]``, the SKUs each line may use (ordered
    SKU first, then its substitutes) and, per location, the lines it holds something for."""

    avail: Avail
    skus: Mapping[int, Sequence[str]]
    lines_at: Mapping[str, Sequence[int]]

    @classmethod
    def of(cls, avail: Avail, skus: Mapping[int, Sequence[str]]) -> _Supply:
        by_sku: dict[str, list[int]] = {}
        for line_no, options in skus.items():
            for sku in options:
                by_sku.setdefault(sku, []).append(line_no)
        found: dict[str, set[int]] = {}
        for (sku, loc), q in avail.items():
            if q > 0 and sku in by_sku:
                found.setdefault(loc, set()).update(by_sku[sku])
        lines_at = {loc: sorted(lines) for loc, lines in found.items()}
        return cls(avail, skus, lines_at)


def _take(supply: _Supply, locs: Sequence[str], need: Need, used: Avail) -> list[tuple[str, int, str, int]]:
    """Take what ``locs`` still hold towards ``need``, as (location, line_no, sku, qty).

    What is taken is added to ``used`` and removed from ``need`` (both mutated). Original SKUs are taken
    from every location first (in the given order), substitutes only then.
    """
    taken: list[tuple[str, int, str, int]] = []
    for tier in (0, 1):
        for loc in locs:
            for line_no in supply.lines_at.get(loc, ()):
                want = need.get(line_no, 0)
                if want <= 0:
                    continue
                options = supply.skus[line_no]
                for sku in options[:1] if tier == 0 else options[1:]:
                    key = (sku, loc)
                    qty = min(want, supply.avail.get(key, 0) - used.get(key, 0))
                    if qty > 0:
                        want -= qty
                        used[key] = used.get(key, 0) + qty
                        taken.append((loc, line_no, sku, qty))
                need[line_no] = want
    return taken


def _covers(supply: _Supply, locs: Sequence[str], need: Need, used: Avail | None = None) -> int:
    """Units ``locs`` together would cover, after ``used`` (nothing is mutated)."""
    return sum(q for *_, q in _take(supply, locs, dict(need), dict(used or {})))


def _best_subset(supply: _Supply, ranked: Sequence[Candidate], limit: int, need: Need) -> list[str]:
    """Fewest locations covering the most units, at most ``limit`` of them; ties go to the better-ranked set."""
    pool = [c for c in ranked if c.covers > 0]
    total = sum(need.values())
    sizes = range(1, min(limit, len(pool)) + 1)
    cost = sum(math.comb(len(pool), k) for k in sizes) * max(1, len(need))
    if len(pool) <= EXACT_SEARCH_MAX_CANDIDATES and cost <= EXACT_SEARCH_BUDGET:
        # the least that can stay uncovered, with every candidate: stop at the first size reaching it
        floor = total - _covers(supply, [c.location for c in pool], need)
        best: tuple[int, int, tuple[int, ...]] | None = None
        best_set: list[str] = []
        for k in sizes:
            for combo in itertools.combinations(range(len(pool)), k):
                locs = [pool[i].location for i in combo]
                key = (total - _covers(supply, locs, need), k, combo)
                if best is None or key < best:
                    best, best_set = key, locs
            if best is not None and best[0] <= floor:
                break
        return best_set
    chosen: list[str] = []
    n: Need = dict(need)
    used: Avail = {}
    while len(chosen) < limit and sum(n.values()) > 0:
        gains = [
            (_covers(supply, [c.location], n, used), -i, c.location)
            for i, c in enumerate(pool)
            if c.location not in chosen
        ]
        if not gains:
            break
        gain, _, loc = max(gains)
        if gain == 0:
            break
        _take(supply, [loc], n, used)
        chosen.append(loc)
    return chosen


def _explain(plan: AllocationPlan, strategy: str, split: str, limit: int) -> str:
    if plan.requested == 0:
        return "every line is already allocated, shipped or cancelled"
    if not plan.candidates:
        return "no eligible location" + (": see excluded" if plan.excluded else "")
    if not plan.chosen:
        if split == "ship_complete":
            return "ship_complete: no single location covers every open unit, so the whole order is backordered"
        return "no candidate location holds any of the open units"
    by_id = {c.location: c for c in plan.candidates}
    first = by_id[plan.chosen[0]]
    basis = {
        "priority": f"the best priority ({first.priority})",
        "nearest": f"the shortest distance ({first.distance_km:.1f} km{', approximate' if first.distance_approx else ''})"
        if first.distance_km is not None
        else "no known distance (ties broken by priority)",
        "lowest_cost": f"the lowest shipment cost ({first.cost})",
        "fewest_shipments": f"the fewest shipments ({len(plan.chosen)})",
    }[strategy]
    if plan.delivery_method == "pickup":
        text = f"click & collect at {first.location}"
    elif strategy == "fewest_shipments":
        text = f"{', '.join(plan.chosen)}: {basis} covering the most units"
    else:
        text = f"{first.location} has {basis} among locations with stock"
        if plan.reranked_by_hook:
            text = f"{first.location} was ranked first by the rank_locations hook"
        if len(plan.chosen) > 1:
            text += f"; the rest comes from {', '.join(plan.chosen[1:])} in ranked order"
    if split == "max_splits":
        text += f" (at most {limit} location(s))"
    if plan.backordered_units:
        text += f"; {plan.backordered_units} unit(s) backordered"
    return text


def _eligible(
    order: Order, locations: Sequence[Location], used: Mapping[str, int], excluded: dict[str, str]
) -> list[Location]:
    """Locations that may fulfil the order; the others go into ``excluded`` with the reason."""
    address = order.shipping_address
    pickup = order.delivery_method == "pickup"
    eligible: list[Location] = []
    for loc in locations:
        why_not: str | None = None
        if pickup and loc.id != order.pickup_location:
            why_not = "not the order's pickup location"
        elif pickup and not loc.pickup:
            why_not = "does not offer click & collect (pickup = false)"
        elif not serves_channel(loc, order.connection):
            why_not = f"does not serve channel {order.connection!r}"
        elif not pickup and loc.ships_to and (address is None or address.country not in loc.ships_to):
            dest = address.country if address else "an order without a shipping address"
            why_not = f"ships_to {loc.ships_to} does not include {dest}"
        elif loc.daily_capacity is not None and used.get(loc.id, 0) >= loc.daily_capacity:
            why_not = f"daily capacity reached ({used.get(loc.id, 0)}/{loc.daily_capacity} shipments today)"
        if why_not:
            excluded[loc.id] = why_not
        else:
            eligible.append(loc)
    if pickup and not order.pickup_location:
        excluded["(pickup_location)"] = "the order is click & collect but names no pickup_location"
    elif pickup and order.pickup_location not in {loc.id for loc in locations}:
        excluded[str(order.pickup_location)] = "pickup location is not a configured location"
    return eligible


def _rerank(
    rank_hook: RankHook, order: Order, cands: list[Candidate], config: Any, plan: AllocationPlan
) -> list[Candidate]:
    """Apply the rank hook: its order wins; candidates it leaves out are excluded."""
    ranked = rank_hook(order=order, candidates=list(cands), config=config)
    if ranked is None:
        return cands
    by_id = {c.location: c for c in cands}
    new: list[Candidate] = []
    for r in ranked:
        c = by_id.get(r if isinstance(r, str) else str(getattr(r, "location", "")))
        if c is not None and c not in new:
            new.append(c)
    for c in cands:
        if c not in new:
            plan.excluded[c.location] = "dropped by the rank_locations hook"
    plan.reranked_by_hook = [c.location for c in new] != [c.location for c in cands]
    return new


def plan_allocation(
    order: Order,
    stock: Iterable[InventoryLevel],
    locations: Sequence[Location],
    config: HubConfig | AllocationConfig,
    *,
    capacity_used: Mapping[str, int] | None = None,
    rank_hook: RankHook | None = None,
) -> AllocationPlan:
    """Decide where the order's open units come from; whatever cannot be allocated is backordered.

    ``stock``: the inventory levels of the order's SKUs (and their substitutes); ``locations``: the
    configured network; ``config``: the hub config or its ``[allocation]`` table; ``capacity_used``:
    shipments already allocated today per location; ``rank_hook``: the ``orderhub_rank_locations``
    hook caller (``pm.hook.orderhub_rank_locations``), called as ``rank_hook(order=, candidates=, config=)``.
    Pure: the caller reserves ``plan.reservations`` atomically and records ``plan.decision(now)``.
    """
    cfg = _allocation_config(config)
    cap_used = capacity_used or {}
    split = cfg.split_policy
    strategy = cfg.strategy
    need = open_need(order)
    subs = {s.sku: list(s.substitutes) for s in cfg.substitutions} if order.allow_substitution else {}
    skus: dict[int, list[str]] = {}
    for ln in order.lines:
        if ln.line_no in need:
            skus[ln.line_no] = [ln.sku, *[s for s in subs.get(ln.sku, []) if s != ln.sku]]
    plan = AllocationPlan(
        order_id=order.id,
        strategy=strategy,
        split_policy=split,
        delivery_method=order.delivery_method,
        requested=sum(need.values()),
    )
    if not need:
        plan.why = _explain(plan, strategy, split, 0)
        return plan

    address = order.shipping_address
    pickup = order.delivery_method == "pickup"
    eligible = _eligible(order, locations, cap_used, plan.excluded)

    wanted = {s for opts in skus.values() for s in opts}
    ids = {loc.id for loc in eligible}
    avail: Avail = {}
    for lv in stock:
        if lv.sku in wanted and lv.location in ids:
            key = (lv.sku, lv.location)
            avail[key] = avail.get(key, 0) + max(0, lv.on_hand - lv.reserved - lv.safety_stock)

    supply = _Supply.of(avail, skus)

    # score ------------------------------------------------------------------------------
    total = plan.requested
    cands: list[Candidate] = []
    for loc in eligible:
        d = None if pickup else distance(loc, address)
        km = d.km if d else None
        cost = Decimal(loc.shipment_cost or "0") + (Decimal(str(round(km, 3))) * cfg.cost_per_km if km else Decimal(0))
        covers = _covers(supply, [loc.id], need)
        score = {
            "priority": float(loc.priority),
            "nearest": km if km is not None else math.inf,
            "lowest_cost": float(cost),
            "fewest_shipments": float(-covers),
        }[strategy]
        cands.append(
            Candidate(
                location=loc.id,
                score=score,
                distance_km=km,
                cost=cost.quantize(Decimal("0.0001")),
                covers=covers,
                complete=covers == total,
                priority=loc.priority,
                distance_approx=bool(d and d.approx),
            )
        )
    cands.sort(
        key=lambda c: (c.score, c.priority, c.distance_km if c.distance_km is not None else math.inf, c.location)
    )

    if rank_hook is not None and cands:
        cands = _rerank(rank_hook, order, cands, config, plan)
    plan.candidates = cands

    # choose -------------------------------------------------------------------------------
    limit = {"ship_complete": 1, "max_splits": cfg.max_splits, "allow": max(1, len(cands))}[split]
    if pickup:
        limit = 1
    chosen: list[str]
    if split == "ship_complete":
        chosen = next(([c.location] for c in cands if c.complete), [])
    elif strategy == "fewest_shipments":
        chosen = _best_subset(supply, cands, limit, need)
    else:
        chosen = []
        n: Need = dict(need)
        used: Avail = {}
        for c in cands:
            if len(chosen) >= limit or sum(n.values()) == 0:
                break
            if _take(supply, [c.location], n, used):
                chosen.append(c.location)

    # build -------------------------------------------------------------------------------
    order_skus = {ln.line_no: ln.sku for ln in order.lines}
    rem: Need = dict(need)
    merged: dict[tuple[int, str, str], int] = {}
    for loc_id, line_no, sku, qty in _take(supply, chosen, rem, {}):
        merged[(line_no, sku, loc_id)] = merged.get((line_no, sku, loc_id), 0) + qty
    for (line_no, sku, loc_id), qty in sorted(merged.items()):
        plan.reservations.append(Allocation(line_no=line_no, sku=sku, location=loc_id, quantity=qty))
        if sku != order_skus[line_no]:
            plan.substitutions.append(SubstitutionUse(line_no, order_skus[line_no], sku, loc_id, qty))
    plan.chosen = [loc for loc in chosen if any(a.location == loc for a in plan.reservations)]
    plan.backordered = {ln: q for ln, q in sorted(rem.items()) if q > 0}
    plan.why = _explain(plan, strategy, split, limit)
    return plan
