"""Registers the EasyPost connector (entry point ``easypost`` in group ``orderhub.connectors``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.easypost import EasyPostConnector
from hub.plugins import hookimpl


@hookimpl
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    register(EasyPostConnector)
