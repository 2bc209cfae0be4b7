"""Returns and refunds: the pure decisions (no I/O) the store and API services call.

- :mod:`~hub.returns.lifecycle`: the return state machine and "never return more than was shipped"
- :mod:`~hub.returns.policy`: approve / reject / review with the reason
- :mod:`~hub.returns.fraud`: return fraud signals (a flagged return waits for ops)
- :mod:`~hub.returns.disposition`: restock, refurbish, dispose or return to vendor, by condition
- :mod:`~hub.returns.refunds`: exact refund amounts and the order's money trail

See docs/returns.md.
"""

from hub.returns.disposition import DEFAULT_DISPOSITIONS, default_disposition, restock_quantity
from hub.returns.errors import (
    IllegalReturnTransition,
    RefundExceedsPaid,
    ReturnNeedsApproval,
    ReturnQuantityExceeded,
)
from hub.returns.fraud import CustomerHistory, Flag, FlagCode, estimate_refund, receipt_flags, request_flags
from hub.returns.lifecycle import (
    RETURN_TRANSITIONS,
    Receipt,
    add_flags,
    approve,
    can_transition_return,
    check_returnable,
    close,
    consumed_quantity,
    mark_refunded,
    needs_ops_approval,
    receive,
    reject,
    returnable_quantities,
    set_dispositions,
    transition,
)
from hub.returns.policy import Decision, Outcome, decide
from hub.returns.refunds import (
    Dispute,
    DisputeStatus,
    FxConversion,
    LineToRefund,
    MoneyTrail,
    RefundCalculation,
    calculate_refund,
    line_paid,
    money_trail,
    refundable_quantities,
    shipping_paid,
)

__all__ = [
    "DEFAULT_DISPOSITIONS",
    "RETURN_TRANSITIONS",
    "CustomerHistory",
    "Decision",
    "Dispute",
    "DisputeStatus",
    "Flag",
    "FlagCode",
    "FxConversion",
    "IllegalReturnTransition",
    "LineToRefund",
    "MoneyTrail",
    "Outcome",
    "Receipt",
    "RefundCalculation",
    "RefundExceedsPaid",
    "ReturnNeedsApproval",
    "ReturnQuantityExceeded",
    "add_flags",
    "approve",
    "calculate_refund",
    "can_transition_return",
    "check_returnable",
    "close",
    "consumed_quantity",
    "decide",
    "default_disposition",
    "estimate_refund",
    "line_paid",
    "mark_refunded",
    "money_trail",
    "needs_ops_approval",
    "receipt_flags",
    "receive",
    "refundable_quantities",
    "reject",
    "request_flags",
    "restock_quantity",
    "returnable_quantities",
    "set_dispositions",
    "shipping_paid",
    "transition",
]
