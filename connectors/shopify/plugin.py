"""Registers the Shopify connector (entry point ``shopify`` in group ``orderhub.connectors``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.shopify import ShopifyConnector
from hub.plugins import hookimpl


@hookimpl
def orderhub_register_connectors(register: Callable[[type[Any]], None]) -> None:
    register(ShopifyConnector)
