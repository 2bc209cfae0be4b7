"""Registers the Amazon connector (entry point ``amazon`` in group ``orderhub.connectors``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.amazon import AmazonConnector
from hub.plugins import hookimpl


@hookimpl
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    register(AmazonConnector)
