"""Every Orderhub hook, in one module. Plugins implement them with ``@hub.plugins.hookimpl``.

Hooks are few on purpose: behaviour lives on connector objects; hooks are for
registration and for policies (``firstresult``: the first plugin that answers decides,
a plugin returns ``None`` to let the next one, and finally the built-in default, decide).
Always called with keyword arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from hub.model import Order, ReturnLine

hookspec = pluggy.HookspecMarker("orderhub")


@hookspec
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    """Fires once when the plugin manager loads. Call ``register(ConnectorClass)`` for each connector
    the plugin provides. Returns nothing."""


@hookspec(firstresult=True)
def orderhub_rank_locations(order: Order, candidates: list[Any], config: Any) -> list[Any] | None:
    """Fires for every allocation, after the configured strategy scored ``candidates``
    (``hub.allocation.Candidate`` objects, best first). Return the candidates re-ordered (a plugin may drop
    some) to change the choice, or ``None`` to keep the strategy's order."""


@hookspec(firstresult=True)
def orderhub_screen_fraud(order: Order, context: dict[str, Any], config: Any) -> Any:
    """Fires when an order arrives, before allocation. ``context`` holds facts the hub gathered
    (``orders_by_email_today``...). Return a ``hub.holds.FraudVerdict`` (hold or pass, with the reason),
    or ``None`` to let the next plugin decide. The built-in default applies the ``[allocation]`` fraud rules."""


@hookspec(firstresult=True)
def orderhub_return_disposition(line: ReturnLine, order: Order, config: Any) -> Any:
    """Fires when a returned line is received with its condition. Return a ``hub.model.Disposition``
    (restock, refurbish, dispose, return_to_vendor) or ``None`` to let the next plugin decide.
    The built-in default decides by condition."""
