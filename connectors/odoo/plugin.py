"""Registers the Odoo connector (entry point ``odoo`` in the ``orderhub.connectors`` group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.odoo.connector import OdooConnector
from hub.plugins import hookimpl


@hookimpl
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    register(OdooConnector)
