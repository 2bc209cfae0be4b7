"""Scenarios of ``orderhub sandbox``: one module each, registered here by name.

- ``steady``: orders at a moderate rate with mild faults (429s, duplicate, out-of-order and malformed webhooks)
- ``flash-sale``: thousands of orders on a few SKUs in seconds; stock lower than demand
- ``3pl-outage``: ShipBob answers 503 for a while; the backlog drains by itself when it recovers
- ``returns-wave``: after delivery, many returns received with conditions, restocks, refunds and credit notes
"""

from __future__ import annotations

from sandbox.scenarios._base import Driver, Scenario, SimSetup
from sandbox.scenarios.flash_sale import FlashSale
from sandbox.scenarios.returns_wave import ReturnsWave
from sandbox.scenarios.steady import Steady
from sandbox.scenarios.threepl_outage import ThreePlOutage

__all__ = ["SCENARIOS", "Driver", "Scenario", "SimSetup", "get_scenario", "names"]

SCENARIOS: dict[str, type[Scenario]] = {cls.name: cls for cls in (Steady, FlashSale, ThreePlOutage, ReturnsWave)}


def names() -> list[str]:
    """The scenario names, default first."""
    return list(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """A new instance of the scenario called ``name``; KeyError-free: an unknown name is an InputError."""
    from hub.errors import InputError

    try:
        return SCENARIOS[name]()
    except KeyError:
        raise InputError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}", field="scenario"
        ) from None
