"""Typed errors of the returns package (subclasses of :mod:`hub.errors`, so the API maps them to problem+json)."""

from __future__ import annotations

from hub.errors import Conflict, IllegalTransition, InputError


class IllegalReturnTransition(IllegalTransition):
    """A return status change the return state machine refuses (409); names both states."""

    title = "Illegal return status transition"

    def __init__(self, current: str, target: str, return_id: str | None = None) -> None:
        who = f"return {return_id}" if return_id else "return"
        Conflict.__init__(
            self,
            f"{who} cannot go from '{current}' to '{target}'",
            current=current,
            target=target,
            return_id=return_id,
        )
        self.current = current
        self.target = target


class ReturnQuantityExceeded(InputError):
    """A return asks for more units than were shipped and not yet returned (422)."""

    title = "Return exceeds what was shipped"


class ReturnNeedsApproval(Conflict):
    """A flagged return cannot be refunded automatically; an ops user must approve it (409)."""

    title = "Return needs ops approval"


class RefundExceedsPaid(InputError):
    """A refund asks for more units or money than is left to refund on the order (422)."""

    title = "Refund exceeds what is left to refund"
