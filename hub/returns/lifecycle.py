"""The return state machine and the "never return more than was shipped" rule. Pure: no I/O.

::

    requested ──> approved ──> received ──> dispositioned ──> refunded ──> closed
        │             │
        └─> rejected ─┴──────────────────────────────────────────────────> closed

``approved -> closed`` is an authorisation that expired with nothing received. Every function
returns a new :class:`~hub.model.Return`; the argument is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.errors import InputError
from hub.model import Condition, Disposition, Order, Return, ReturnLine, ReturnStatus
from hub.returns.errors import IllegalReturnTransition, ReturnNeedsApproval, ReturnQuantityExceeded

R = ReturnStatus

#: Legal transitions: from status -> the statuses it may move to.
RETURN_TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    R.REQUESTED: frozenset({R.APPROVED, R.REJECTED}),
    R.APPROVED: frozenset({R.RECEIVED, R.CLOSED}),
    R.REJECTED: frozenset({R.CLOSED}),
    R.RECEIVED: frozenset({R.DISPOSITIONED}),
    R.DISPOSITIONED: frozenset({R.REFUNDED}),
    R.REFUNDED: frozenset({R.CLOSED}),
    R.CLOSED: frozenset(),
}


def can_transition_return(current: ReturnStatus | str, target: ReturnStatus | str) -> bool:
    """True when the return state machine allows ``current -> target``."""
    return ReturnStatus(target) in RETURN_TRANSITIONS[ReturnStatus(current)]


def transition(ret: Return, target: ReturnStatus | str, now: datetime) -> Return:
    """A copy of ``ret`` in ``target`` status; raises :class:`IllegalReturnTransition` naming both states."""
    tgt = ReturnStatus(target)
    if not can_transition_return(ret.status, tgt):
        raise IllegalReturnTransition(str(ret.status), str(tgt), ret.id)
    return ret.model_copy(update={"status": tgt, "updated_at": now})


def approve(ret: Return, now: datetime, reason: str | None = None) -> Return:
    """requested -> approved, recording why (policy or ops)."""
    out = transition(ret, R.APPROVED, now)
    return out.model_copy(update={"decision_reason": reason or ret.decision_reason})


def reject(ret: Return, now: datetime, reason: str) -> Return:
    """requested -> rejected with the reason the customer is told."""
    out = transition(ret, R.REJECTED, now)
    return out.model_copy(update={"decision_reason": reason})


@dataclass(frozen=True)
class Receipt:
    """What the warehouse found for one returned line: its condition and the units that arrived.

    ``quantity`` defaults to the requested quantity (0 when the condition is ``missing``).
    """

    sku: str
    condition: Condition
    quantity: int | None = None
    line_no: int | None = None
    location: str | None = None


def _match(line: ReturnLine, r: Receipt) -> bool:
    if r.line_no is not None and line.line_no is not None:
        return r.line_no == line.line_no
    return r.sku == line.sku


def receive(ret: Return, receipts: Sequence[Receipt], now: datetime) -> Return:
    """approved -> received: sets each line's condition and received quantity.

    A requested line without a receipt is recorded as ``missing`` with 0 received. A receipt for a SKU
    that was not requested is refused here; report it with :func:`hub.returns.fraud.receipt_flags` first.
    """
    out = transition(ret, R.RECEIVED, now)
    used: set[int] = set()
    lines: list[ReturnLine] = []
    for line in ret.lines:
        idx = next((i for i, r in enumerate(receipts) if i not in used and _match(line, r)), None)
        if idx is None:
            lines.append(line.model_copy(update={"condition": Condition.MISSING, "received_quantity": 0}))
            continue
        used.add(idx)
        r = receipts[idx]
        qty = r.quantity if r.quantity is not None else (0 if r.condition is Condition.MISSING else line.quantity)
        if qty < 0:
            raise InputError(f"return {ret.id}: received quantity of {r.sku} is {qty}; it must be 0 or more")
        lines.append(
            line.model_copy(
                update={"condition": r.condition, "received_quantity": qty, "location": r.location or line.location}
            )
        )
    extra = [receipts[i].sku for i in range(len(receipts)) if i not in used]
    if extra:
        raise InputError(
            f"return {ret.id}: received SKU(s) {', '.join(extra)} that the return did not request; "
            "record them on a new return or flag the receipt for ops",
            return_id=ret.id,
        )
    return out.model_copy(update={"lines": lines})


def set_dispositions(ret: Return, dispositions: Sequence[Disposition | None], now: datetime) -> Return:
    """received -> dispositioned: one disposition per line, in line order (``None`` = nothing to handle)."""
    if len(dispositions) != len(ret.lines):
        raise InputError(
            f"return {ret.id} has {len(ret.lines)} line(s) but {len(dispositions)} disposition(s) were given",
            return_id=ret.id,
        )
    out = transition(ret, R.DISPOSITIONED, now)
    lines = [ln.model_copy(update={"disposition": d}) for ln, d in zip(ret.lines, dispositions, strict=True)]
    return out.model_copy(update={"lines": lines})


def add_flags(ret: Return, flags: Sequence[object], now: datetime) -> Return:
    """A copy with the fraud ``flags`` added (status unchanged; a flagged return waits for ops)."""
    new = [str(f) for f in flags if str(f) not in ret.flags]
    if not new:
        return ret
    return ret.model_copy(update={"flags": [*ret.flags, *new], "updated_at": now})


def needs_ops_approval(ret: Return) -> bool:
    """True when fraud flags stop the return from being refunded automatically."""
    return bool(ret.flags)


def mark_refunded(ret: Return, now: datetime, *, approved_by: str | None = None) -> Return:
    """dispositioned -> refunded. A flagged return needs ``approved_by`` (the ops user who approved it);
    without it :class:`ReturnNeedsApproval` is raised and the return stays where it is."""
    if ret.flags and not approved_by:
        raise ReturnNeedsApproval(
            f"return {ret.id} is flagged ({'; '.join(ret.flags)}); an ops user must approve the refund",
            return_id=ret.id,
            flags=list(ret.flags),
        )
    out = transition(ret, R.REFUNDED, now)
    if ret.flags and approved_by:
        note = f"refund approved by {approved_by} despite flags"
        reason = f"{ret.decision_reason}; {note}" if ret.decision_reason else note
        out = out.model_copy(update={"decision_reason": reason})
    return out


def close(ret: Return, now: datetime) -> Return:
    """refunded, rejected or approved (expired) -> closed."""
    return transition(ret, R.CLOSED, now)


# -- quantities ------------------------------------------------------------------------------


def consumed_quantity(line: ReturnLine, status: ReturnStatus) -> int:
    """Units of an order line that a return line takes out of what can still be returned.

    Rejected returns take nothing; once received, the received quantity counts; an approval that
    expired (closed with nothing received) takes nothing; an open request takes what it asks for.
    """
    if status is ReturnStatus.REJECTED:
        return 0
    if line.received_quantity is not None:
        return line.received_quantity
    if status in (ReturnStatus.REQUESTED, ReturnStatus.APPROVED):
        return line.quantity
    return 0


def returnable_quantities(
    order: Order, shipped: Mapping[int, int], previous_returns: Sequence[Return]
) -> dict[int, int]:
    """Per order line (``line_no``): units shipped and not yet returned (never below 0)."""
    out = {ln.line_no: shipped.get(ln.line_no, 0) for ln in order.lines}
    by_sku: dict[str, list[int]] = {}
    for ln in order.lines:
        by_sku.setdefault(ln.sku, []).append(ln.line_no)
    for ret in previous_returns:
        for rl in ret.lines:
            used = consumed_quantity(rl, ret.status)
            targets = [rl.line_no] if rl.line_no in out else by_sku.get(rl.sku, [])
            for no in targets:
                take = min(used, out[no])
                out[no] -= take
                used -= take
    return out


def check_returnable(
    order: Order,
    lines: Sequence[ReturnLine],
    shipped: Mapping[int, int],
    previous_returns: Sequence[Return] = (),
) -> list[ReturnLine]:
    """The requested lines, each tied to an order line (``line_no`` filled in; a SKU on several order
    lines is split over them in line order). Raises :class:`ReturnQuantityExceeded` naming the SKU,
    the units asked for and the units still returnable when a line asks for more than was shipped and
    not yet returned, or :class:`~hub.errors.InputError` for a SKU that is not on the order."""
    left = returnable_quantities(order, shipped, previous_returns)
    out: list[ReturnLine] = []
    for rl in lines:
        if rl.line_no is not None:
            if rl.line_no not in left:
                raise InputError(f"order {order.id} has no line {rl.line_no}", order_id=order.id)
            candidates = [rl.line_no]
        else:
            candidates = [ln.line_no for ln in order.lines if ln.sku == rl.sku]
            if not candidates:
                raise InputError(
                    f"order {order.id} has no line with SKU {rl.sku!r}; check the SKU", order_id=order.id, sku=rl.sku
                )
        available = sum(left[no] for no in candidates)
        if rl.quantity > available:
            raise ReturnQuantityExceeded(
                f"order {order.id}: return of {rl.quantity} x {rl.sku} exceeds the {available} unit(s) "
                "shipped and not yet returned",
                order_id=order.id,
                sku=rl.sku,
                requested=rl.quantity,
                returnable=available,
            )
        need = rl.quantity
        for no in candidates:
            take = min(need, left[no])
            if take:
                out.append(rl.model_copy(update={"line_no": no, "quantity": take}))
                left[no] -= take
                need -= take
    return out
