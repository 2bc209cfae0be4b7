"""Built-in policy plugin: the defaults behind the ``firstresult`` hooks.

Registered as the plugin ``orderhub.defaults`` with ``trylast`` so any other plugin answers first.
Each hook delegates to the module that owns the policy.
"""

from __future__ import annotations

from typing import Any

from hub.holds import default_fraud_screen
from hub.plugins.manager import hookimpl


@hookimpl(trylast=True)
def orderhub_rank_locations(order: Any, candidates: list[Any], config: Any) -> list[Any] | None:
    return None  # keep the configured strategy's order


@hookimpl(trylast=True)
def orderhub_screen_fraud(order: Any, context: dict[str, Any], config: Any) -> Any:
    """The ``[allocation]`` fraud rules (:func:`hub.holds.default_fraud_screen`)."""
    return default_fraud_screen(order, context, config)


@hookimpl(trylast=True)
def orderhub_return_disposition(line: Any, order: Any, config: Any) -> Any:
    """By condition (:func:`hub.returns.default_disposition`); ``None`` for a missing line (nothing to restock)."""
    from hub.returns.disposition import default_disposition

    return default_disposition(line)
