"""The return policy: approve, reject or send to review, always with the reason. Pure: no I/O.

Rules, in order (``[returns]`` in ``orderhub.toml``, :class:`hub.config.ReturnsConfig`):

1. no delivery date known -> review (the window counts from delivery)
2. more than ``window_days`` whole days after delivery -> reject
3. a SKU in ``non_returnable_skus``, or tagged (order tags, or the SKU's product tags) with one of
   ``non_returnable_tags`` -> reject
4. a fraud signal (:mod:`hub.returns.fraud`) -> review, with the flags
5. every line's reason in ``auto_approve_reasons`` -> approve; otherwise -> review
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from hub.config import ReturnsConfig
from hub.model import Money, Order, Return, ReturnLine
from hub.returns.fraud import CustomerHistory, Flag, request_flags


class Outcome(StrEnum):
    """What the policy decided: approve, reject, or send to ops review."""

    APPROVE = "approve"
    REJECT = "reject"
    REVIEW = "review"


@dataclass(frozen=True)
class Decision:
    """The policy's answer with the reason a person reads (customer or ops) and any fraud flags."""

    outcome: Outcome
    reason: str
    flags: tuple[Flag, ...] = field(default_factory=tuple)


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def decide(
    order: Order,
    request: Return | Sequence[ReturnLine],
    delivered_at: datetime | None,
    now: datetime,
    config: ReturnsConfig,
    history: CustomerHistory | None = None,
    *,
    product_tags: Mapping[str, Sequence[str]] | None = None,
    refund_value: Money | None = None,
) -> Decision:
    """Decide a return request (see the module rules). ``product_tags`` maps SKU -> its product tags;
    ``refund_value`` overrides the estimate used by the refund-value check."""
    lines = list(request.lines) if isinstance(request, Return) else list(request)
    if delivered_at is None:
        return Decision(Outcome.REVIEW, "no delivery date is known for the order; ops must check the return window")
    days = (now - delivered_at).days
    if days > config.window_days:
        return Decision(
            Outcome.REJECT,
            f"returned {_days(days)} after delivery; the window is {_days(config.window_days)}",
        )
    blocked_tags = set(config.non_returnable_tags)
    for ln in lines:
        if ln.sku in config.non_returnable_skus:
            return Decision(Outcome.REJECT, f"SKU {ln.sku} is not returnable")
        tags = (set(order.tags) | set((product_tags or {}).get(ln.sku, ()))) & blocked_tags
        if tags:
            return Decision(
                Outcome.REJECT, f"SKU {ln.sku} is tagged {', '.join(sorted(tags))}, which is not returnable"
            )
    flags = request_flags(order, lines, history or CustomerHistory(), config, refund_value)
    if flags:
        return Decision(
            Outcome.REVIEW, "flagged for ops review: " + "; ".join(str(f) for f in flags), flags=tuple(flags)
        )
    other = sorted({ln.reason or "none given" for ln in lines if ln.reason not in config.auto_approve_reasons})
    if other:
        return Decision(
            Outcome.REVIEW,
            f"reason {', '.join(repr(r) for r in other)} is not auto-approved; ops must approve the return",
        )
    reasons = ", ".join(sorted({ln.reason or "" for ln in lines}))
    return Decision(
        Outcome.APPROVE,
        f"{reasons} is auto-approved; requested {_days(days)} after delivery, within the "
        f"{_days(config.window_days)} window",
    )
