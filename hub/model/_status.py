"""The order status state machine."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import IllegalTransition


class OrderStatus(StrEnum):
    RECEIVED = "received"
    ON_HOLD = "on_hold"
    BACKORDERED = "backordered"
    PARTIALLY_ALLOCATED = "partially_allocated"
    ALLOCATED = "allocated"
    RELEASED = "released"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


S = OrderStatus
_OPEN_PRE_SHIP = {S.RECEIVED, S.ON_HOLD, S.BACKORDERED, S.PARTIALLY_ALLOCATED, S.ALLOCATED}

#: Legal transitions: from status -> the statuses it may move to.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.RECEIVED: frozenset({S.ON_HOLD, S.BACKORDERED, S.PARTIALLY_ALLOCATED, S.ALLOCATED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.RECEIVED, S.BACKORDERED, S.PARTIALLY_ALLOCATED, S.ALLOCATED, S.CANCELLED}),
    S.BACKORDERED: frozenset({S.ON_HOLD, S.PARTIALLY_ALLOCATED, S.ALLOCATED, S.CANCELLED}),
    S.PARTIALLY_ALLOCATED: frozenset(
        {S.ON_HOLD, S.BACKORDERED, S.ALLOCATED, S.RELEASED, S.PARTIALLY_SHIPPED, S.CANCELLED}
    ),
    S.ALLOCATED: frozenset(
        {S.ON_HOLD, S.BACKORDERED, S.PARTIALLY_ALLOCATED, S.RELEASED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}
    ),
    S.RELEASED: frozenset({S.PARTIALLY_ALLOCATED, S.BACKORDERED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_transition(current: OrderStatus | str, target: OrderStatus | str) -> bool:
    """True when the state machine allows ``current -> target`` (staying put is always allowed)."""
    cur, tgt = OrderStatus(current), OrderStatus(target)
    return cur == tgt or tgt in TRANSITIONS[cur]


def check_transition(current: OrderStatus | str, target: OrderStatus | str, order_id: str | None = None) -> OrderStatus:
    """Return ``target`` as an OrderStatus, or raise :class:`IllegalTransition` naming both states."""
    if not can_transition(current, target):
        raise IllegalTransition(str(OrderStatus(current)), str(OrderStatus(target)), order_id)
    return OrderStatus(target)
