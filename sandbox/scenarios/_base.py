"""What a scenario is: simulator settings, starting stock and a ``drive`` coroutine.

A scenario never starts anything itself; :mod:`sandbox.run` starts the hub and the simulators, seeds
the stock the scenario asks for, and hands the scenario a :class:`Driver` to place orders, inject
faults, use the API and wait for the system to settle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from sandbox.systems import Systems

__all__ = ["SKUS", "Driver", "Scenario", "SimSetup", "Stock", "STORE", "THREE_PL", "LOCATION_IDS"]

#: The shared catalog of the simulators (sandbox._common.DEFAULT_CATALOG).
SKUS: tuple[str, ...] = tuple(f"SB-{i:04d}" for i in range(1, 13))
#: The hub locations of the sandbox: two ShipBob fulfilment centers and one store.
THREE_PL: tuple[str, str] = ("shipbob-cicero", "shipbob-moreno")
STORE = "store-louisville"
LOCATION_IDS: tuple[str, ...] = (*THREE_PL, STORE)

#: Starting stock: sku -> location -> units.
Stock = dict[str, dict[str, int]]


@dataclass
class SimSetup:
    """Per-simulator settings overrides (field name -> value) and fault knobs, applied at start."""

    shopify: dict[str, Any] = field(default_factory=dict)
    amazon: dict[str, Any] = field(default_factory=dict)
    shipbob: dict[str, Any] = field(default_factory=dict)
    odoo: dict[str, Any] = field(default_factory=dict)
    easypost: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)


class Driver(Protocol):
    """What :mod:`sandbox.run` offers a scenario while it drives the system."""

    systems: Systems

    def place_shopify(self, lines: list[tuple[str, int]] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Place a Shopify order (its ``orders/create`` webhook goes to the hub)."""
        ...

    def place_amazon(self, lines: list[tuple[str, int]] | None = None) -> dict[str, Any]:
        """Create an Amazon order (the hub polls it)."""
        ...

    async def pace(self, count: int, per_second: float, place: Callable[[int], object], phase: str) -> None:
        """Call ``place(i)`` ``count`` times at ``per_second``, updating the progress display."""
        ...

    async def api(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Any:
        """Call the hub's API with the sandbox's ops token; raises SandboxError on another status."""
        ...

    async def settle(self, phase: str, max_wait: float | None = None) -> bool:
        """Wait until the hub's queues are empty and the simulators have nothing left to do."""
        ...

    async def wait_for(self, phase: str, check: Callable[[], Awaitable[bool]], max_wait: float = 60.0) -> bool:
        """Wait (with the progress display running) until ``check()`` is true."""
        ...

    def note(self, text: str) -> None:
        """A line for the report's notes."""
        ...

    def metric(self, name: str, value: Any) -> None:
        """A scenario figure for the report (e.g. the peak of a backlog)."""
        ...

    async def depth(self) -> dict[str, int]:
        """Hub queue depths: inbox, jobs, deliveries (pending or running)."""
        ...

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the hub's database (read-only helper for scenario figures)."""
        ...


class Scenario:
    """Base class: override the class attributes and the methods that the scenario changes."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: How many orders ``--orders`` defaults to for this scenario.
    default_orders: ClassVar[int] = 200

    def setup(self, orders: int) -> SimSetup:
        """Simulator settings and faults (default: quick timings, no faults)."""
        return SimSetup()

    def stock(self, orders: int) -> Stock:
        """Starting stock per SKU and location (default: enough for ``orders`` random orders)."""
        per_sku = max(10, orders * 4 // len(SKUS) + 5)
        return {
            sku: {THREE_PL[0]: per_sku // 2, THREE_PL[1]: per_sku // 3, STORE: per_sku - per_sku // 2 - per_sku // 3}
            for sku in SKUS
        }

    async def drive(self, run: Driver, orders: int) -> None:
        """Place the orders and do what the scenario is about."""
        raise NotImplementedError
