"""What happens to a returned unit, by the condition it came back in. Pure: no I/O.

| condition | disposition                                     |
| --------- | ----------------------------------------------- |
| new       | restock                                         |
| opened    | restock (pass ``opened=Disposition.REFURBISH``   |
|           | or answer the hook to inspect/repack it first)  |
| damaged   | dispose                                         |
| defective | return_to_vendor                                |
| missing   | nothing (``None``): nothing arrived to restock  |

This is the built-in default behind the ``orderhub_return_disposition`` hook (``hub.policies``); a plugin
that answers the hook first overrides it.
"""

from __future__ import annotations

from hub.errors import InputError
from hub.model import Condition, Disposition, ReturnLine

DEFAULT_DISPOSITIONS: dict[Condition, Disposition | None] = {
    Condition.NEW: Disposition.RESTOCK,
    Condition.OPENED: Disposition.RESTOCK,
    Condition.DAMAGED: Disposition.DISPOSE,
    Condition.DEFECTIVE: Disposition.RETURN_TO_VENDOR,
    Condition.MISSING: None,
}


def default_disposition(line: ReturnLine, *, opened: Disposition = Disposition.RESTOCK) -> Disposition | None:
    """The disposition of a received line by its condition (see the module table)."""
    if line.condition is None:
        raise InputError(
            f"returned line {line.sku} has no condition yet; receive it with a condition "
            "(new, opened, damaged, defective, missing) before deciding its disposition",
            sku=line.sku,
        )
    if line.condition is Condition.OPENED:
        return opened
    return DEFAULT_DISPOSITIONS[line.condition]


def restock_quantity(line: ReturnLine) -> int:
    """Units to add back to sellable stock for a dispositioned line (only ``restock`` does)."""
    if line.disposition is not Disposition.RESTOCK:
        return 0
    return line.received_quantity if line.received_quantity is not None else line.quantity
