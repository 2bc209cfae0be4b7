"""Hypothesis properties of plan_allocation: never oversell, never lose a unit."""

from collections import Counter
from typing import Any

from alloc_factories import loc, order
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.allocation import open_need, plan_allocation
from hub.config import AllocationConfig
from hub.model import InventoryLevel, Location

SKUS = ["A", "B", "C"]
LOC_IDS = ["l0", "l1", "l2", "l3", "l4"]


@st.composite
def networks(draw: Any) -> list[Location]:
    n = draw(st.integers(1, len(LOC_IDS)))
    out = []
    for lid in LOC_IDS[:n]:
        coords = draw(st.none() | st.fixed_dictionaries({"latitude": st.floats(47, 55), "longitude": st.floats(5, 15)}))
        out.append(
            loc(
                lid,
                coords=coords,
                priority=draw(st.integers(0, 5)),
                ships_to=draw(st.sampled_from([[], ["DE"], ["FR"]])),
                daily_capacity=draw(st.none() | st.integers(0, 3)),
                shipment_cost=draw(st.sampled_from([None, "1.00", "4.50"])),
                pickup=draw(st.booleans()),
                postal_code=draw(st.sampled_from([None, "10115", "80331"])),
            )
        )
    return out


@st.composite
def stocks(draw: Any) -> list[InventoryLevel]:
    out = []
    for sku in [*SKUS, "A2"]:
        for lid in LOC_IDS:
            if draw(st.booleans()):
                on_hand = draw(st.integers(0, 6))
                out.append(
                    InventoryLevel(
                        sku=sku,
                        location=lid,
                        on_hand=on_hand,
                        reserved=draw(st.integers(0, on_hand)),
                        safety_stock=draw(st.integers(0, 2)),
                    )
                )
    return out


configs = st.builds(
    AllocationConfig,
    strategy=st.sampled_from(["priority", "nearest", "lowest_cost", "fewest_shipments"]),
    split_policy=st.sampled_from(["ship_complete", "allow", "max_splits"]),
    max_splits=st.integers(1, 3),
    substitutions=st.just([{"sku": "A", "substitutes": ["A2", "B"]}]),
)


@st.composite
def orders(draw: Any) -> Any:
    lines = draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 8)), min_size=1, max_size=4))
    pickup = draw(st.booleans())
    o = order(
        lines,
        allow_substitution=draw(st.booleans()),
        delivery_method="pickup" if pickup else "ship",
        pickup_location=draw(st.sampled_from(LOC_IDS)) if pickup else None,
        ship_to={"line1": "x", "city": "y", "postal_code": "10178", "country": draw(st.sampled_from(["DE", "FR"]))},
    )
    cancels = [draw(st.integers(0, ln.quantity)) for ln in o.lines]
    return o.model_copy(
        update={
            "lines": [ln.model_copy(update={"cancelled_quantity": c}) for ln, c in zip(o.lines, cancels, strict=True)]
        }
    )


@settings(max_examples=300, deadline=None)
@given(
    o=orders(),
    network=networks(),
    stock=stocks(),
    config=configs,
    used=st.dictionaries(st.sampled_from(LOC_IDS), st.integers(0, 3)),
)
def test_plans_never_oversell_and_never_lose_a_unit(
    o: Any, network: list[Location], stock: list[InventoryLevel], config: AllocationConfig, used: dict[str, int]
) -> None:
    plan = plan_allocation(o, stock, network, config, capacity_used=used)
    available = Counter[tuple[str, str]]()
    for lv in stock:
        available[(lv.sku, lv.location)] += lv.available
    reserved = Counter[tuple[str, str]]()
    for a in plan.reservations:
        assert a.quantity > 0
        reserved[(a.sku, a.location)] += a.quantity
    # never more than available at any location
    assert all(q <= available[key] for key, q in reserved.items())
    # every open unit is allocated or backordered, exactly once
    need = open_need(o)
    allocated = Counter[int]()
    for a in plan.reservations:
        allocated[a.line_no] += a.quantity
    for line_no, qty in need.items():
        assert allocated[line_no] + plan.backordered.get(line_no, 0) == qty
    assert set(allocated) | set(plan.backordered) <= set(need)
    assert all(q > 0 for q in plan.backordered.values())
    # policies hold
    locations_used = {a.location for a in plan.reservations}
    assert locations_used == set(plan.chosen)
    if config.split_policy == "ship_complete":
        assert not plan.reservations or (plan.complete and len(locations_used) == 1)
    if config.split_policy == "max_splits":
        assert len(locations_used) <= config.max_splits
    if o.delivery_method == "pickup":
        assert locations_used <= {o.pickup_location}
    by_id = {n.id: n for n in network}
    for lid in locations_used:
        n = by_id[lid]
        assert n.daily_capacity is None or used.get(lid, 0) < n.daily_capacity
        if o.delivery_method == "ship":
            assert not n.ships_to or o.shipping_address.country in n.ships_to
    if not o.allow_substitution:
        assert plan.substitutions == []
        skus = {ln.line_no: ln.sku for ln in o.lines}
        assert all(a.sku == skus[a.line_no] for a in plan.reservations)


@settings(max_examples=150, deadline=None)
@given(o=orders(), network=networks(), stock=stocks())
def test_fewest_shipments_never_uses_more_locations_than_another_complete_plan(
    o: Any, network: list[Location], stock: list[InventoryLevel]
) -> None:
    fewest = plan_allocation(o, stock, network, AllocationConfig(strategy="fewest_shipments"))
    for strategy in ("priority", "nearest", "lowest_cost"):
        other = plan_allocation(o, stock, network, AllocationConfig(strategy=strategy))  # type: ignore[arg-type]
        if other.complete:
            assert fewest.complete
            assert len(fewest.chosen) <= len(other.chosen)
