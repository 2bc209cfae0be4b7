"""Allocation: ATP, routing strategies, split policies, backorders. Pure functions, no I/O.

The service around them loads stock, calls :func:`plan_allocation`, reserves ``plan.reservations``
atomically (``hub.store.inventory.reserve_all``) and records ``plan.decision(now)`` on the order.
See ``docs/allocation.md``.
"""

from hub.allocation._atp import atp_by_location, atp_for_channel, serves_channel
from hub.allocation._backorders import (
    Backorder,
    ExpectedReceipt,
    backorder_queue_order,
    expected_promise,
    expected_promises,
    expired_backorders,
)
from hub.allocation._geo import APPROX_KM, Distance, distance, haversine_km
from hub.allocation._plan import (
    EXACT_SEARCH_MAX_CANDIDATES,
    AllocationPlan,
    Candidate,
    SubstitutionUse,
    open_need,
    plan_allocation,
)

__all__ = [
    "APPROX_KM",
    "EXACT_SEARCH_MAX_CANDIDATES",
    "AllocationPlan",
    "Backorder",
    "Candidate",
    "Distance",
    "ExpectedReceipt",
    "SubstitutionUse",
    "atp_by_location",
    "atp_for_channel",
    "backorder_queue_order",
    "distance",
    "expected_promise",
    "expected_promises",
    "expired_backorders",
    "haversine_km",
    "open_need",
    "plan_allocation",
    "serves_channel",
]
