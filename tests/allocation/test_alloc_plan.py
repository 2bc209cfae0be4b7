"""Allocation strategies and split policies on hand-made networks where the right answer is known."""

import json
from datetime import UTC, datetime
from typing import Any

from alloc_factories import BERLIN, HAMBURG, MUNICH, PARIS, POTSDAM, levels, loc, order

from hub.allocation import Candidate, plan_allocation
from hub.allocation import _plan as plan_module
from hub.config import AllocationConfig, HubConfig
from hub.model import Allocation, Decision, OrderStatus
from hub.plugins.manager import PluginManager, hookimpl

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
# the same network for most tests: Potsdam (near Berlin), Hamburg, Munich
NETWORK = [
    loc("potsdam", coords=POTSDAM, priority=30, shipment_cost="9.00"),
    loc("hamburg", coords=HAMBURG, priority=20, shipment_cost="5.00"),
    loc("munich", coords=MUNICH, priority=10, shipment_cost="1.00"),
]
EVERYWHERE = levels({("A", "potsdam"): 10, ("A", "hamburg"): 10, ("A", "munich"): 10})


def cfg(**kw: Any) -> AllocationConfig:
    return AllocationConfig(**kw)


def where(plan: Any) -> list[tuple[int, str, str, int]]:
    return [(a.line_no, a.sku, a.location, a.quantity) for a in plan.reservations]


def test_priority_strategy_picks_the_lowest_priority_number() -> None:
    plan = plan_allocation(order([("A", 2)]), EVERYWHERE, NETWORK, cfg(strategy="priority"))
    assert where(plan) == [(1, "A", "munich", 2)]
    assert plan.status is OrderStatus.ALLOCATED
    assert [c.location for c in plan.candidates] == ["munich", "hamburg", "potsdam"]


def test_nearest_strategy_picks_the_closest_location_by_great_circle_distance() -> None:
    plan = plan_allocation(order([("A", 2)]), EVERYWHERE, NETWORK, cfg(strategy="nearest"))
    assert where(plan) == [(1, "A", "potsdam", 2)]
    first = plan.candidates[0]
    assert 20 < first.distance_km < 30  # Berlin - Potsdam is about 25 km  # type: ignore[operator]
    assert not first.distance_approx


def test_nearest_without_coordinates_prefers_the_same_postal_area_then_country() -> None:
    network = [
        loc("paris", country="FR", postal_code="75001"),
        loc("munich", postal_code="80331"),
        loc("berlin-mitte", postal_code="10115"),
    ]
    stock = levels({("A", "paris"): 5, ("A", "munich"): 5, ("A", "berlin-mitte"): 5})
    ship_to = {"line1": "x", "city": "Berlin", "postal_code": "10178", "country": "DE"}
    plan = plan_allocation(order([("A", 1)], ship_to=ship_to), stock, network, cfg(strategy="nearest"))
    assert [c.location for c in plan.candidates] == ["berlin-mitte", "munich", "paris"]
    assert all(c.distance_approx for c in plan.candidates)
    assert plan.chosen == ["berlin-mitte"]


def test_lowest_cost_weighs_shipment_cost_and_distance() -> None:
    # munich: 1.00 + ~504 km * 0.001 = ~1.50; potsdam 9.00 + ~25 km * 0.001; hamburg 5.00 + ~255 km * 0.001
    plan = plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, cfg(strategy="lowest_cost"))
    assert plan.chosen == ["munich"]
    assert [c.location for c in plan.candidates] == ["munich", "hamburg", "potsdam"]
    # a high cost per km makes the nearest the cheapest
    plan = plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, cfg(strategy="lowest_cost", cost_per_km="0.1"))
    assert plan.chosen == ["potsdam"]


def test_fewest_shipments_and_nearest_disagree() -> None:
    # Potsdam (nearest) has only A, Hamburg only B; Munich (far) has both.
    stock = levels({("A", "potsdam"): 2, ("B", "hamburg"): 1, ("A", "munich"): 2, ("B", "munich"): 1})
    o = order([("A", 2), ("B", 1)])
    nearest = plan_allocation(o, stock, NETWORK, cfg(strategy="nearest"))
    fewest = plan_allocation(o, stock, NETWORK, cfg(strategy="fewest_shipments"))
    assert where(nearest) == [(1, "A", "potsdam", 2), (2, "B", "hamburg", 1)]
    assert where(fewest) == [(1, "A", "munich", 2), (2, "B", "munich", 1)]
    assert fewest.chosen == ["munich"] and "fewest shipments (1)" in fewest.why


def test_fewest_shipments_finds_the_minimum_cover_not_the_greedy_one() -> None:
    # greedy set cover takes "big" (4 units) first and then needs two more; the optimum is left + right.
    network = [loc(n) for n in ("big", "left", "right")]
    stock = levels(
        {
            ("A", "big"): 1,
            ("B", "big"): 1,
            ("C", "big"): 1,
            ("D", "big"): 1,
            ("A", "left"): 1,
            ("B", "left"): 1,
            ("E", "left"): 1,
            ("C", "right"): 1,
            ("D", "right"): 1,
            ("F", "right"): 1,
        }
    )
    o = order([(s, 1) for s in "ABCDEF"])
    plan = plan_allocation(o, stock, network, cfg(strategy="fewest_shipments"))
    assert sorted(plan.chosen) == ["left", "right"] and plan.complete


def test_fewest_shipments_on_a_large_network_uses_greedy_cover(monkeypatch: Any) -> None:
    monkeypatch.setattr(plan_module, "EXACT_SEARCH_MAX_CANDIDATES", 2)
    network = [loc(f"w{i}") for i in range(6)]
    stock = levels({("A", "w0"): 1, ("A", "w3"): 3, ("B", "w3"): 1, ("B", "w5"): 2})
    plan = plan_allocation(order([("A", 3), ("B", 2)]), stock, network, cfg(strategy="fewest_shipments"))
    assert plan.chosen == ["w3", "w5"] and plan.complete


def test_ship_complete_uses_a_single_location_that_covers_everything() -> None:
    # priority prefers munich, but only hamburg holds the whole order
    stock = levels({("A", "munich"): 2, ("A", "hamburg"): 2, ("B", "hamburg"): 1})
    plan = plan_allocation(order([("A", 2), ("B", 1)]), stock, NETWORK, cfg(split_policy="ship_complete"))
    assert plan.chosen == ["hamburg"] and plan.complete


def test_ship_complete_backorders_the_whole_order_when_no_location_covers_it() -> None:
    stock = levels({("A", "munich"): 2, ("B", "hamburg"): 1})
    plan = plan_allocation(order([("A", 2), ("B", 1)]), stock, NETWORK, cfg(split_policy="ship_complete"))
    assert plan.reservations == []
    assert plan.backordered == {1: 2, 2: 1}
    assert plan.status is OrderStatus.BACKORDERED
    assert "no single location covers" in plan.why


def test_allow_split_takes_from_locations_in_ranked_order() -> None:
    stock = levels({("A", "munich"): 1, ("A", "hamburg"): 1, ("A", "potsdam"): 5})
    plan = plan_allocation(order([("A", 4)]), stock, NETWORK, cfg(split_policy="allow"))
    assert where(plan) == [(1, "A", "hamburg", 1), (1, "A", "munich", 1), (1, "A", "potsdam", 2)]
    assert plan.chosen == ["munich", "hamburg", "potsdam"]


def test_max_splits_limits_the_number_of_locations_and_backorders_the_rest() -> None:
    stock = levels({("A", "munich"): 1, ("A", "hamburg"): 1, ("A", "potsdam"): 1})
    plan = plan_allocation(order([("A", 3)]), stock, NETWORK, cfg(split_policy="max_splits", max_splits=2))
    assert plan.chosen == ["munich", "hamburg"]
    assert plan.backordered == {1: 1}
    assert plan.status is OrderStatus.PARTIALLY_ALLOCATED


def test_click_and_collect_allocates_only_at_the_pickup_store() -> None:
    network = [*NETWORK, loc("store-berlin", kind="store", pickup=True, coords=BERLIN, priority=99)]
    stock = levels({**{("A", n.id): 10 for n in NETWORK}, ("A", "store-berlin"): 1})
    o = order([("A", 2)], delivery_method="pickup", pickup_location="store-berlin")
    plan = plan_allocation(o, stock, network, cfg(strategy="priority"))
    assert where(plan) == [(1, "A", "store-berlin", 1)]
    assert plan.backordered == {1: 1}
    assert plan.excluded["munich"] == "not the order's pickup location"


def test_click_and_collect_at_a_location_without_pickup_is_backordered() -> None:
    o = order([("A", 1)], delivery_method="pickup", pickup_location="munich")
    plan = plan_allocation(o, EVERYWHERE, NETWORK, cfg())
    assert plan.reservations == [] and plan.backordered == {1: 1}
    assert "pickup = false" in plan.excluded["munich"]


def test_daily_capacity_excludes_a_full_location() -> None:
    network = [loc("munich", coords=MUNICH, priority=1, daily_capacity=100), loc("hamburg", coords=HAMBURG)]
    stock = levels({("A", "munich"): 5, ("A", "hamburg"): 5})
    full = plan_allocation(order([("A", 1)]), stock, network, cfg(), capacity_used={"munich": 100})
    assert full.chosen == ["hamburg"]
    assert full.excluded["munich"] == "daily capacity reached (100/100 shipments today)"
    room = plan_allocation(order([("A", 1)]), stock, network, cfg(), capacity_used={"munich": 99})
    assert room.chosen == ["munich"]


def test_ships_to_restriction_excludes_locations_that_do_not_ship_to_the_country() -> None:
    network = [loc("munich", priority=1, ships_to=["DE", "AT"]), loc("paris", country="FR", coords=PARIS)]
    stock = levels({("A", "munich"): 5, ("A", "paris"): 5})
    to_fr = {"line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"}
    plan = plan_allocation(order([("A", 1)], ship_to=to_fr), stock, network, cfg())
    assert plan.chosen == ["paris"]
    assert "does not include FR" in plan.excluded["munich"]
    assert plan_allocation(order([("A", 1)]), stock, network, cfg()).chosen == ["munich"]


def test_locations_that_do_not_serve_the_orders_channel_are_excluded() -> None:
    network = [loc("munich", priority=1, channels=["amazon"]), loc("hamburg")]
    stock = levels({("A", "munich"): 5, ("A", "hamburg"): 5})
    plan = plan_allocation(order([("A", 1)]), stock, network, cfg())
    assert plan.chosen == ["hamburg"] and "channel 'shop'" in plan.excluded["munich"]


SUBS = [{"sku": "A", "substitutes": ["A2"]}]


def test_substitutes_are_not_used_when_the_order_does_not_allow_them() -> None:
    stock = levels({("A2", "munich"): 5})
    plan = plan_allocation(order([("A", 2)]), stock, NETWORK, cfg(substitutions=SUBS))
    assert plan.reservations == [] and plan.substitutions == []
    assert plan.backordered == {1: 2}


def test_substitutes_fill_what_the_original_cannot_when_allowed_and_are_recorded() -> None:
    stock = levels({("A", "munich"): 1, ("A2", "munich"): 5})
    o = order([("A", 3)], allow_substitution=True)
    plan = plan_allocation(o, stock, NETWORK, cfg(substitutions=SUBS))
    assert where(plan) == [(1, "A", "munich", 1), (1, "A2", "munich", 2)]
    assert [s.to_json() for s in plan.substitutions] == [
        {"line_no": 1, "sku": "A", "substitute": "A2", "location": "munich", "quantity": 2}
    ]
    assert plan.complete


def test_rank_hook_re_ranks_the_candidates() -> None:
    class PreferHamburg:
        @hookimpl
        def orderhub_rank_locations(self, order: Any, candidates: list[Candidate], config: Any) -> list[Candidate]:
            return sorted(candidates, key=lambda c: c.location != "hamburg")

    from hub import policies

    pm = PluginManager()
    pm.register(policies, name="orderhub.defaults")
    default = plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, cfg(), rank_hook=pm.hook.orderhub_rank_locations)
    assert default.chosen == ["munich"] and not default.reranked_by_hook
    pm.register(PreferHamburg())
    plan = plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, cfg(), rank_hook=pm.hook.orderhub_rank_locations)
    assert plan.chosen == ["hamburg"]
    assert plan.reranked_by_hook and "rank_locations hook" in plan.why


def test_rank_hook_may_drop_candidates() -> None:
    def hook(*, order: Any, candidates: list[Candidate], config: Any) -> list[str]:
        return [c.location for c in candidates if c.location != "munich"]

    plan = plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, cfg(), rank_hook=hook)
    assert plan.chosen == ["hamburg"]
    assert plan.excluded["munich"] == "dropped by the rank_locations hook"


def test_units_already_allocated_or_cancelled_are_not_planned_again() -> None:
    o = order([("A", 5)])
    o = o.model_copy(
        update={
            "lines": [o.lines[0].model_copy(update={"cancelled_quantity": 1})],
            "allocations": [Allocation(line_no=1, sku="A", location="hamburg", quantity=2)],
        }
    )
    plan = plan_allocation(o, EVERYWHERE, NETWORK, cfg())
    assert where(plan) == [(1, "A", "munich", 2)]
    assert plan.requested == 2


def test_explanation_is_a_json_serialisable_decision() -> None:
    stock = levels({("A", "munich"): 1, ("A", "hamburg"): 5})
    plan = plan_allocation(order([("A", 2)]), stock, NETWORK, cfg(strategy="priority"))
    decision = plan.decision(NOW)
    doc = json.loads(json.dumps(decision.to_json()))
    assert Decision.model_validate(doc) == decision
    details = doc["details"]
    assert details["strategy"] == "priority" and details["chosen"] == ["munich", "hamburg"]
    assert details["candidates"][0] == {
        "location": "munich",
        "score": 10.0,
        "distance_km": details["candidates"][0]["distance_km"],
        "distance_approx": False,
        "cost": details["candidates"][0]["cost"],
        "covers": 1,
        "complete": False,
        "priority": 10,
    }
    assert "munich has the best priority (10)" in details["why"]
    assert decision.summary == "allocated 2 of 2 unit(s) at munich, hamburg"


def test_hub_config_is_accepted_as_well_as_its_allocation_table() -> None:
    hub_cfg = HubConfig(allocation=cfg(strategy="nearest"))
    assert plan_allocation(order([("A", 1)]), EVERYWHERE, NETWORK, hub_cfg).chosen == ["potsdam"]


def test_click_and_collect_without_a_pickup_location_is_backordered_with_the_reason() -> None:
    plan = plan_allocation(order([("A", 1)], delivery_method="pickup"), EVERYWHERE, NETWORK, cfg())
    assert plan.backordered == {1: 1}
    assert plan.excluded["(pickup_location)"] == "the order is click & collect but names no pickup_location"


def test_an_order_with_nothing_open_plans_nothing() -> None:
    o = order([("A", 2)])
    o = o.model_copy(update={"lines": [o.lines[0].model_copy(update={"cancelled_quantity": 2})]})
    plan = plan_allocation(o, EVERYWHERE, NETWORK, cfg())
    assert plan.reservations == [] and plan.backordered == {} and plan.status is OrderStatus.ALLOCATED
    assert plan.decision(NOW).summary == "nothing open to allocate"
