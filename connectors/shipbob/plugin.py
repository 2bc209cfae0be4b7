"""Registers the ShipBob connector (entry point ``shipbob`` in group ``orderhub.connectors``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.shipbob import ShipBobConnector
from hub.plugins import hookimpl


@hookimpl
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    register(ShipBobConnector)
